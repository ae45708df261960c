{%- set record_columns = ['credit_note_id', 'order_id', 'customer_id', 'credited_at', 'amount'] -%}

with

source as (

    select * from {{ source('shop', 'credit_notes') }}

),

-- Only an accepted, completed order can be refunded by a credit note: a cancelled order was
-- never paid, and a returned one is refunded in full already (netting it again would count
-- the refund twice).
orders as (

    select
        order_id,
        customer_id,
        ordered_at,
        status,
        order_total
    from {{ ref('base_shop__orders') }}
    where quarantine_reason is null

),

parsed as (

    select
        {{ cvm_clean_text('credit_note_id') }} as credit_note_id,
        {{ cvm_clean_text('order_id') }} as order_id,
        {{ cvm_clean_text('customer_id') }} as customer_id,
        {{ cvm_parse_timestamp('credited_at') }} as credited_at,
        abs({{ cvm_parse_money('amount') }}) as amount,
        {{ cvm_keep_raw(record_columns) }}
    from source

),

checked as (

    select
        parsed.*,
        orders.customer_id as order_customer_id,
        orders.order_total,
        case
            when parsed.credit_note_id is null then 'null_key'
            when parsed.order_id is null then 'unmatched_credit_note'
            when
                {{ cvm_is_missing('parsed.credited_at', 'parsed.credited_at_raw') }}
                or {{ cvm_is_missing('parsed.amount', 'parsed.amount_raw') }}
                then 'missing_value'
            when {{ cvm_is_unparseable('parsed.credited_at', 'parsed.credited_at_raw') }} then 'unparseable_date'
            when {{ cvm_is_unparseable('parsed.amount', 'parsed.amount_raw') }} then 'unparseable_number'
            when parsed.credited_at >= {{ cvm_as_of_cutoff() }} then 'future_date'
            when orders.order_id is null then 'unknown_order'
            when parsed.customer_id != orders.customer_id then 'customer_mismatch'
            when parsed.credited_at < orders.ordered_at then 'credit_before_order'
            when orders.status != 'completed' then 'order_not_paid'
        end as row_issue
    from parsed
    left join orders
        on parsed.order_id = orders.order_id

),

{{ cvm_quarantine_ctes('credit_note_id', 'credited_at, order_id, amount, customer_id', record_columns) }}

-- Credits of one order, in the order they were issued: the one that takes them past the order's
-- total, and any after it, would refund more than was paid.
credited as (

    select
        *,
        sum(case when quarantine_reason is null then amount else 0 end) over (
            partition by order_id
            order by credited_at, credit_note_id
            rows between unbounded preceding and current row
        ) as credited_so_far
    from deduplicated

),

reasoned as (

    select
        credit_note_id,
        order_id,
        credited_at,
        amount,
        raw_record,
        coalesce(customer_id, order_customer_id) as customer_id,
        coalesce(
            quarantine_reason,
            case when credited_so_far > order_total then 'exceeds_order_total' end
        ) as quarantine_reason
    from credited

),

final as (

    select
        credit_note_id,
        order_id,
        customer_id,
        credited_at,
        amount,
        quarantine_reason,
        {{ cvm_quarantine_record(record_columns) }} as raw_record
    from reasoned

)

select * from final
