{#-
    Rows where `expression` is not true; on a column, the expression follows the column name
    (`expression: ">= 1"`). dbt_utils has this test, but the package hub is out of reach here,
    so the project keeps its own.
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ column_name ~ ' ' if column_name is not none else '' }}{{ expression }})

{% endtest %}
