-- One row per customer: when to contact (a window ending on the expected next purchase date,
-- doc block contact_timing) and on which channel.
with

customers as (

    select * from {{ ref('int_customers_valued') }}

),

contacts as (

    select * from {{ ref('int_contacts_aggregated_to_customers') }}

),

timed as (

    -- The contact_timing doc block: the customer's own rhythm, else the BG/NBD rate if alive.
    select
        customers.customer_id,
        case
            when customers.avg_days_between_purchases is not null
                then cast({{ dbt.dateadd(
                    'day',
                    'cast(round(least(customers.avg_days_between_purchases, 730)) as ' ~ dbt.type_int() ~ ')',
                    'customers.last_purchase_date'
                ) }} as date)
            when customers.expected_purchases_365d > 0 and customers.p_alive > 0
                then cast({{ dbt.dateadd(
                    'day',
                    'cast(round(least(365 * customers.p_alive / customers.expected_purchases_365d, 730)) as '
                        ~ dbt.type_int() ~ ')',
                    'customers.as_of_date'
                ) }} as date)
        end as expected_next_purchase_date
    from customers

),

windowed as (

    select
        timed.customer_id,
        timed.expected_next_purchase_date,
        case
            when timed.expected_next_purchase_date is not null
                then greatest(
                    cast({{ dbt.dateadd('day', 1, 'customers.as_of_date') }} as date),
                    cast({{ dbt.dateadd(
                        'day', -(var('contact_lead_days') | int), 'timed.expected_next_purchase_date'
                    ) }} as date)
                )
        end as contact_window_start_date
    from timed
    inner join customers
        on timed.customer_id = customers.customer_id

),

final as (

    select
        customers.customer_id,
        coalesce(contacts.preferred_contact_channel, customers.acquisition_channel) as preferred_channel,
        case
            when contacts.preferred_contact_channel is not null then 'contact_history'
            when customers.acquisition_channel is not null then 'acquisition_channel'
        end as preferred_channel_source,
        windowed.expected_next_purchase_date,
        windowed.contact_window_start_date,
        cast({{ dbt.dateadd('day', var('contact_lead_days') | int, 'windowed.contact_window_start_date') }} as date)
            as contact_window_end_date
    from customers
    inner join windowed
        on customers.customer_id = windowed.customer_id
    left join contacts
        on customers.customer_id = contacts.customer_id

)

select * from final
