-- Who must not be contacted, recounted for every customer from the facts (doc block
-- do_not_contact), the first reason that applies: an unprofitable lookback (customer_value's
-- flag), a complaint still open on the as-of date (fct_complaints), or a contact sent, not held
-- out, within var recently_contacted_days (fct_contacts). Such a customer gets no_action and no
-- companion. next_best_actions must agree, reason by reason and customer by customer.
with

open_complaints as (

    select distinct customer_id
    from {{ ref('fct_complaints') }}
    where resolved_at is null

),

recently_contacted as (

    select distinct customer_id
    from {{ ref('fct_contacts') }}
    where
        is_sent
        and sent_date > {{ dbt.dateadd('day', -(var('recently_contacted_days') | int), cvm_as_of_date()) }}

),

expected as (

    select
        customers.customer_id,
        case
            when customers.is_unprofitable_lookback then 'unprofitable'
            when open_complaints.customer_id is not null then 'open_complaint'
            when recently_contacted.customer_id is not null then 'contacted_recently'
        end as do_not_contact_reason
    from {{ ref('customer_value') }} as customers
    left join open_complaints
        on customers.customer_id = open_complaints.customer_id
    left join recently_contacted
        on customers.customer_id = recently_contacted.customer_id

),

final as (

    select
        expected.customer_id as customer_id_recounted,
        actions.customer_id as customer_id_in_actions,
        expected.do_not_contact_reason as expected_reason,
        actions.do_not_contact_reason,
        actions.is_do_not_contact,
        actions.primary_strategy,
        actions.companion_strategy_1
    from expected
    full outer join {{ ref('next_best_actions') }} as actions
        on expected.customer_id = actions.customer_id
    where
        expected.customer_id is null
        or actions.customer_id is null
        or actions.do_not_contact_reason is distinct from expected.do_not_contact_reason
        or actions.is_do_not_contact is distinct from (expected.do_not_contact_reason is not null)
        or (
            expected.do_not_contact_reason is not null
            and (actions.primary_strategy != 'no_action' or actions.companion_strategy_1 is not null)
        )

)

select * from final
