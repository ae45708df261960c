-- The migration matrix, recounted from the tier history with a plain self-join of each
-- customer-month to the next month (no window functions, unlike fct_tier_migrations): both
-- ways of counting must agree exactly, and every from-tier's probabilities must sum to 1.
-- Returns the disagreeing cells. On an incremental run, the cells into the months it wrote
-- (the earlier of the tier history's and the migrations'; macro cvm_written_rows).
{%- set database = ref('fct_customer_tier_months').database %}
{%- set kept_through = [
    cvm_kept_through('int_customer_months_tiered', database),
    cvm_kept_through('fct_tier_migrations', database),
] %}
{%- set into_written_months = 'true' if none in kept_through
    else "{0} > cast('" ~ kept_through | min ~ "' as date)" %}
with

history as (

    select * from {{ ref('fct_customer_tier_months') }}

),

-- Each month of the history and the next one (the history has a row for every customer in
-- every month from the first purchase on, so a customer's next row is in the next month).
month_steps as (

    select
        period_month,
        lead(period_month) over (order by period_month) as next_period_month
    from (select distinct period_month from history) as months

),

recount as (

    select
        history.period_month as from_period_month,
        history.value_tier as from_tier,
        moved.value_tier as to_tier,
        count(*) as customers
    from history
    inner join month_steps
        on
            history.period_month = month_steps.period_month
            and {{ into_written_months.format('month_steps.next_period_month') }}
    inner join history as moved
        on
            history.customer_id = moved.customer_id
            and month_steps.next_period_month = moved.period_month
    group by history.period_month, history.value_tier, moved.value_tier

),

matrix as (

    select * from {{ ref('tier_migration_matrix') }}
    where {{ into_written_months.format('to_period_month') }}

),

row_sums as (

    select
        from_period_month,
        from_tier,
        sum(transition_probability) as probability_sum
    from matrix
    group by from_period_month, from_tier

),

final as (

    select
        coalesce(matrix.from_period_month, recount.from_period_month) as from_period_month,
        coalesce(matrix.from_tier, recount.from_tier) as from_tier,
        coalesce(matrix.to_tier, recount.to_tier) as to_tier,
        matrix.customers as matrix_customers,
        recount.customers as recounted_customers,
        null as probability_sum
    from matrix
    full outer join recount
        on
            matrix.from_period_month = recount.from_period_month
            and matrix.from_tier = recount.from_tier
            and matrix.to_tier = recount.to_tier
    where matrix.customers is null or recount.customers is null or matrix.customers != recount.customers

    union all

    select
        from_period_month,
        from_tier,
        null as to_tier,
        null as matrix_customers,
        null as recounted_customers,
        probability_sum
    from row_sums
    where abs(probability_sum - 1) > 1e-9

)

select * from final
