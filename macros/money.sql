{% macro cvm_money_per(amount, divisor) -%}
    {#- `amount` / `divisor` in whole cents, rounded half up; null when the divisor is 0. Alike
        on every engine, which plain division is not: DuckDB divides decimals as doubles, Spark
        as decimals, and each rounds a double to a decimal its own way (65.585 -> 65.58 or
        65.59). Cents as integers, then one division whose floor is exact for any money amount. -#}
    cast(
        cast(
            floor(
                (2 * cast({{ amount }} * 100 as {{ dbt.type_bigint() }}) + nullif({{ divisor }}, 0))
                / (2 * nullif({{ divisor }}, 0))
            ) as decimal(18, 0)
        ) * 0.01 as decimal(18, 2)
    )
{%- endmacro %}

{% macro cvm_money_from_double(expression) -%}
    {#- A double amount in whole cents, rounded half up, alike on every engine: to 6 decimals
        first, which absorbs the last-bit differences of each engine's own double arithmetic
        (percentile_cont interpolates its own way on each) and the ways each casts a double
        to a decimal, then to cents from that exact decimal. -#}
    cast(cast(round({{ expression }}, 6) as decimal(24, 6)) as decimal(18, 2))
{%- endmacro %}
