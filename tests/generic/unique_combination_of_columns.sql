{#-
    Rows whose combination of `columns` is not unique, or has a null in a column outside
    `allow_null_in`: the key test of a multi-column grain (a key with a hole is no key).
    `written_after` ({table, column}; macro cvm_written_rows): on an incremental run, only the
    keys of the rows it wrote, each counted over every row.
-#}
{% test unique_combination_of_columns(model, columns, allow_null_in=[], written_after=none) %}
{%- set required = columns | reject('in', allow_null_in) | list %}
{%- set written = cvm_written_rows(written_after, model.database) if written_after else 'true' %}

with

checked as (

    select {{ columns | join(', ') }}
    from {{ model }}
    {%- if written != 'true' %}
    where {{ written }} or ({{ columns | join(', ') }}) in (
        select ({{ columns | join(', ') }}) from {{ model }}
        where {{ written }}
    )
    {%- endif %}

)

select
    {{ columns | join(', ') }},
    count(*) as n_rows
from checked
group by {{ columns | join(', ') }}
having
    count(*) > 1
    {%- for column in required %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
