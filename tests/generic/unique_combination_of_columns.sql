{#-
    Rows whose combination of `columns` is not unique, or has a null in a column outside
    `allow_null_in`: the key test of a multi-column grain (a key with a hole is no key).
-#}
{% test unique_combination_of_columns(model, columns, allow_null_in=[]) %}
{%- set required = columns | reject('in', allow_null_in) | list %}

select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having
    count(*) > 1
    {%- for column in required %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
