{% snapshot order_snapshots %}
    {{
        config(
            unique_key='order_id',
            strategy='check',
            check_cols=['customer_id', 'ordered_at', 'status', 'order_total'],
            hard_deletes='new_record',
        )
    }}
    -- Every accepted source order as the builds saw it: a new version when the order changes
    -- (a return, a corrected total) and a deletion record when it disappears from the source,
    -- so an order deleted at the source is recorded here even after the marts drop it.
    select
        order_id,
        customer_id,
        ordered_at,
        status,
        order_total
    from {{ ref('stg_shop__orders') }}
{% endsnapshot %}
