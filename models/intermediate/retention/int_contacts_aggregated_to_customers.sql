-- One row per customer with contact history: how often they were contacted, when last, and the
-- channel they respond on (most responses; ties: the most recent response, then the name).
with

contacts as (

    select * from {{ ref('stg_shop__contacts') }}

),

channel_responses as (

    select
        customer_id,
        channel,
        count(*) as response_count,
        max(sent_at) as last_response_at
    from contacts
    where responded and channel is not null
    group by customer_id, channel

),

ranked_channels as (

    select
        customer_id,
        channel,
        row_number() over (
            partition by customer_id
            order by response_count desc, last_response_at desc, channel asc
        ) as channel_rank
    from channel_responses

),

per_customer as (

    select
        customer_id,
        sum(case when not is_holdout then 1 else 0 end) as sent_contact_count,
        sum(case when is_holdout then 1 else 0 end) as holdout_contact_count,
        sum(case when responded then 1 else 0 end) as response_count,
        -- Holdout contacts were never sent: they do not make a customer "contacted recently".
        max(case when not is_holdout then sent_at end) as last_contacted_at
    from contacts
    group by customer_id

),

final as (

    select
        per_customer.customer_id,
        per_customer.sent_contact_count,
        per_customer.holdout_contact_count,
        per_customer.response_count,
        per_customer.last_contacted_at,
        ranked_channels.channel as preferred_contact_channel
    from per_customer
    left join ranked_channels
        on
            per_customer.customer_id = ranked_channels.customer_id
            and ranked_channels.channel_rank = 1

)

select * from final
