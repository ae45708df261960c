-- The lost customers summarised by lapse reason: how many, what they were worth, how they felt.
with

lost as (

    select * from {{ ref('lost_customers') }}

),

final as (

    select
        lapse_reason,
        count(*) as lost_customers,
        cast(count(*) as {{ cvm_type_double() }}) / sum(count(*)) over () as share_of_lost_customers,
        cast(sum(net_revenue_lifetime) as decimal(18, 2)) as net_revenue_lifetime,
        cast(avg(net_revenue_lifetime) as decimal(18, 2)) as avg_net_revenue_lifetime,
        avg(last_nps_score_before_lapse) as avg_last_nps_score,
        avg(recency_days) as avg_recency_days
    from lost
    group by lapse_reason

)

select * from final
