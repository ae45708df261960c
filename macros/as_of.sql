{#- The as-of date (decided once, in base_shop__as_of_date) and the windows that end on it. -#}

{% macro cvm_as_of_date() -%}
    (select as_of_date from {{ ref('base_shop__as_of_date') }})
{%- endmacro %}

{% macro cvm_as_of_cutoff() -%}
    {#- First instant after the as-of day: anything at or after it is in the future. -#}
    (select as_of_cutoff_at from {{ ref('base_shop__as_of_date') }})
{%- endmacro %}

{% macro cvm_lookback_start_date() -%}
    {#- First day inside the lookback: the window is the `lookback_days` days ending on the as-of date. -#}
    cast({{ dbt.dateadd('day', 1 - (var('lookback_days') | int), cvm_as_of_date()) }} as date)
{%- endmacro %}
