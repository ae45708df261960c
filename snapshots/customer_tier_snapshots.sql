{% snapshot customer_tier_snapshots %}
    {{
        config(
            unique_key='customer_id',
            strategy='check',
            check_cols=[
                'value_tier', 'predicted_value_tier', 'rfm_segment', 'gross_margin_lookback',
                'purchase_count_lifetime', 'last_purchase_date',
            ],
            hard_deletes='new_record',
        )
    }}
    -- What the warehouse said about each customer's tier and key values, kept as SCD2 history:
    -- a new version whenever one of check_cols changes, and a deletion record when a customer
    -- disappears from the mart. Values that move every day (recency) are not checked.
    select
        customer_id,
        as_of_date,
        value_tier,
        predicted_value_tier,
        rfm_segment,
        gross_margin_lookback,
        purchase_count_lifetime,
        last_purchase_date
    from {{ ref('customer_value') }}
{% endsnapshot %}
