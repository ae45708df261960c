{#- The value tier rule (doc block value_tier), written once for the customer value mart and the
    monthly tier history: before the thresholds, New, Inactive and Unrated. -#}

{% macro cvm_value_tier(first_purchase_date, period_end_date, purchase_count, value, band_tier) -%}
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
