{#- The as-of date and the start of the trailing lookback window, as SQL expressions. -#}

{% macro cvm_lookback_start_date() -%}
    {#- First day inside the lookback: the window is the `lookback_days` days ending on the as-of date. -#}
    cast({{ dbt.dateadd('day', 1 - (var('lookback_days') | int), cvm_as_of_date()) }} as date)
{%- endmacro %}
