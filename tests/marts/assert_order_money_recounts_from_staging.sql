-- fct_orders' money, recounted from the accepted staging rows for every order: revenue is what
-- completed and returned orders were paid, the refund is what went back (a returned order all
-- of it, a completed order its credit notes), and net revenue is what is left. Written from
-- those meanings, not from the fact's CASE branches, and over the whole staging table, so an
-- incremental run that lost, doubled or kept a stale order fails here as well; so does a bare
-- `dbt build` after a source change older than its window (make build finds and rebuilds those).
with

credited as (

    select
        order_id,
        sum(amount) as credited_amount
    from {{ ref('stg_shop__credit_notes') }}
    group by order_id

),

expected as (

    select
        orders.order_id,
        case when orders.status in ('completed', 'returned') then orders.order_total else 0 end
            as revenue,
        case
            when orders.status = 'returned' then orders.order_total
            when orders.status = 'completed' then coalesce(credited.credited_amount, 0)
            else 0
        end as refund_amount
    from {{ ref('stg_shop__orders') }} as orders
    left join credited
        on orders.order_id = credited.order_id

),

final as (

    select
        expected.order_id as order_id_in_staging,
        facts.order_id as order_id_in_facts,
        expected.revenue as expected_revenue,
        facts.revenue,
        expected.refund_amount as expected_refund_amount,
        facts.refund_amount,
        facts.net_revenue,
        expected.revenue - expected.refund_amount as expected_net_revenue
    from expected
    full outer join {{ ref('fct_orders') }} as facts
        on expected.order_id = facts.order_id
    where
        expected.order_id is null
        or facts.order_id is null
        or facts.revenue is distinct from expected.revenue
        or facts.refund_amount is distinct from expected.refund_amount
        or facts.net_revenue is distinct from expected.revenue - expected.refund_amount

)

select * from final
