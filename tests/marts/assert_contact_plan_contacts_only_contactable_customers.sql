-- The contact plan never contacts a customer who is not to be contacted (doc block
-- do_not_contact) or whose recommendation returns nothing; fails with one row per such contact.
with

plan as (

    select * from {{ ref('contact_plan') }}

),

actions as (

    select * from {{ ref('next_best_actions') }}

),

final as (

    select
        plan.customer_id,
        actions.do_not_contact_reason,
        actions.priority_score
    from plan
    inner join actions
        on plan.customer_id = actions.customer_id
    where actions.is_do_not_contact or actions.priority_score <= 0

)

select * from final
