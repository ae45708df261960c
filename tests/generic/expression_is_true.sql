{#-
    Rows where `expression` is not true: false and NULL both fail, because a check that passes
    on NULL passes whenever a column it reads is missing. On a column, the expression follows the
    column name (`expression: ">= 1"`), and `allow_null: true` lets rows whose column is null
    pass; a model-level expression spells out its NULL case itself. dbt_utils has this test
    (NULL passes there), but the package hub is out of reach here, so the project keeps its own.
-#}
{% test expression_is_true(model, expression, column_name=none, allow_null=false) %}
{%- if allow_null and column_name is none -%}
    {{ exceptions.raise_compiler_error(
        "expression_is_true on " ~ model ~ ": allow_null needs a column; "
        ~ "write the NULL case into a model-level expression instead"
    ) }}
{%- endif %}

select *
from {{ model }}
where
    {%- if allow_null %} {{ column_name }} is not null and{% endif %}
    not coalesce(({{ column_name ~ ' ' if column_name is not none else '' }}{{ expression }}), false)

{% endtest %}
