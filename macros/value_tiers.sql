{#- The value rules (doc blocks value_basis, value_tier), written once for the customer value
    mart and the monthly tier history. -#}

{% macro cvm_known_where_costed(amount, purchases_without_cost, value_basis='value_basis') -%}
    {#- A margin or cost only where costs are known: never in a shop without cost data
        (`value_basis`: the int_value_basis_chosen row), and not when a purchase in the window
        has no known cost (never overstated). -#}
    case when {{ value_basis }}.has_cost_data and {{ purchases_without_cost }} = 0 then {{ amount }} end
{%- endmacro %}

{% macro cvm_value_on_basis(value_basis, gross_margin, net_revenue, compensation) -%}
    {#- What tiers measure: the gross margin on the gross_margin basis, net revenue minus
        complaint compensation on the revenue basis. -#}
    case when {{ value_basis }} = 'gross_margin' then {{ gross_margin }} else {{ net_revenue }} - {{ compensation }} end
{%- endmacro %}

{% macro cvm_value_tier(first_purchase_date, period_end_date, purchase_count, value, band_tier) -%}
    {#- Before the thresholds: New, Inactive and Unrated. -#}
    case
        when {{ first_purchase_date }} is null then null
        when
            {{ first_purchase_date }}
            > {{ dbt.dateadd('day', -(var('new_customer_days') | int), period_end_date) }}
            then 'New'
        when {{ purchase_count }} = 0 then 'Inactive'
        when {{ value }} is null then 'Unrated'
        else {{ band_tier }}
    end
{%- endmacro %}

{% macro cvm_in_tier_band(value, bands) -%}
    {#- Join condition: `value` falls in the band [lower_value, upper_value) of `bands`. -#}
    {{ value }} >= {{ bands }}.lower_value
    and ({{ value }} < {{ bands }}.upper_value or {{ bands }}.upper_value is null)
{%- endmacro %}
