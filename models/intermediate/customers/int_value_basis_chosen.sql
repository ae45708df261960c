-- One row: what customer value is measured on (doc block value_basis), decided once for the
-- whole warehouse so that tiers, the tier history, predicted tiers and CLV compare like with
-- like. gross_margin needs the cost of goods; a shop that exports only customers and orders
-- has none, and its value is measured on net revenue instead.
{%- set setting = var('value_basis') | string %}
{%- if setting not in ['auto', 'gross_margin', 'revenue'] %}
    {{ exceptions.raise_compiler_error(
        "var value_basis must be auto, gross_margin or revenue, got '" ~ setting ~ "'") }}
{%- endif %}
{%- set min_coverage = var('value_basis_min_cost_coverage') | float %}

with

orders as (

    select * from {{ ref('int_orders_costed') }}

),

costs as (

    select
        sum(
            case when is_completed and order_date >= {{ cvm_lookback_start_date() }} then 1 else 0 end
        ) as purchases_lookback,
        sum(
            case
                when is_completed and order_date >= {{ cvm_lookback_start_date() }} and cost_of_goods is not null
                    then 1
                else 0
            end
        ) as purchases_with_cost_lookback,
        sum(case when is_completed and cost_of_goods is not null then 1 else 0 end) as purchases_with_cost
    from orders

),

measured as (

    select
        coalesce(purchases_lookback, 0) as purchases_lookback,
        coalesce(purchases_with_cost_lookback, 0) as purchases_with_cost_lookback,
        coalesce(purchases_with_cost, 0) > 0 as has_cost_data,
        cast(purchases_with_cost_lookback as {{ cvm_type_double() }})
        / nullif(purchases_lookback, 0) as cost_coverage_lookback
    from costs

),

-- Enough cost data for the gross margin under auto: the coverage in the lookback, or any cost
-- at all when the lookback holds no purchase.
judged as (

    select
        *,
        coalesce(cost_coverage_lookback >= {{ min_coverage }}, has_cost_data) as has_enough_cost_data
    from measured

),

final as (

    select
        purchases_lookback,
        purchases_with_cost_lookback,
        cost_coverage_lookback,
        has_cost_data,
        {% if setting == 'auto' -%}
            case
                when has_enough_cost_data then 'gross_margin'
                else 'revenue'
            end
        {%- else -%}
            '{{ setting }}'
        {%- endif %} as value_basis,
        {% if setting == 'auto' -%}
            case
                when not has_cost_data
                    then 'auto: no completed purchase has a known cost of goods (no order lines or no unit costs)'
                when has_enough_cost_data
                    then 'auto: the cost of goods is known for enough of the completed purchases in the lookback window'
                else 'auto: the cost of goods is unknown for too many of the completed purchases in the lookback window'
            end
        {%- else -%}
            'set by var value_basis'
        {%- endif %} as value_basis_reason
    from judged

)

select * from final
