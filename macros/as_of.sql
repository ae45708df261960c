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

{% macro cvm_whole_months_between(first_date, second_date) -%}
    {#- Whole months from `first_date` to `second_date`: a month counts once its day of the month
        is reached again (31 Jan -> 28 Feb is 0; 29 Feb -> 28 Feb a year on is 11). From calendar
        fields, so every engine agrees (dbt.datediff's month differs between engines at month
        ends). -#}
    (
        (extract(year from {{ second_date }}) - extract(year from {{ first_date }})) * 12
        + extract(month from {{ second_date }}) - extract(month from {{ first_date }})
        - case when extract(day from {{ second_date }}) < extract(day from {{ first_date }}) then 1 else 0 end
    )
{%- endmacro %}

{% macro cvm_days_between(first_date, second_date) -%}
    {#- Days from `first_date` to `second_date`, a bigint on every engine (Spark's datediff is an int). -#}
    cast({{ dbt.datediff(first_date, second_date, 'day') | trim }} as {{ dbt.type_bigint() }})
{%- endmacro %}
