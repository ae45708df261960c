{% snapshot order_snapshots %}
    {{
        config(
            unique_key='order_id',
            strategy='check',
            check_cols=['customer_id', 'ordered_at', 'status', 'order_total'],
            hard_deletes='new_record',
            meta={'compared_window_date': 'cast(ordered_at as date)'},
            post_hook="{{ cvm_drop_compared_window() }}",
        )
    }}
    -- depends_on: {{ ref('base_shop__as_of_date') }}
    -- Every accepted source order as the builds saw it: a new version when the order changes
    -- (a return, a corrected total) and a deletion record when it disappears from the source,
    -- so an order deleted at the source is recorded here even after the marts drop it.
    -- make build compares only the reprocessed orders (macros/snapshot_compared_window.sql).
    select
        order_id,
        customer_id,
        ordered_at,
        status,
        order_total
    from {{ ref('stg_shop__orders') }}
{% endsnapshot %}
