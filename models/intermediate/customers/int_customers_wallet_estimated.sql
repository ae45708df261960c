-- Share of wallet, estimated two ways (see the `share_of_wallet` doc block):
-- modelled, the "realistic wallet" of Rosset, Perlich et al. (IBM): a high quantile of the
-- window spend of lookalike customers, floored at the customer's own spend; and reported,
-- from the customer's latest survey answer.
{%- set min_lookalikes = var('wallet_min_lookalikes') | int %}

{#- Interpolated between doubles on every engine (DuckDB keeps a decimal's scale, Spark does not). -#}
{%- set spend_quantile = 'percentile_cont(' ~ var('wallet_quantile') ~ ') within group (order by cast('
    ~ 'own_spend_lookback as ' ~ cvm_type_double() ~ '))' %}

with

customers as (

    select * from {{ ref('int_customers_cohorted') }}

),

tenure as (

    select * from {{ ref('int_customers_tenured') }}

),

purchases as (

    select * from {{ ref('int_orders_aggregated_to_customers') }}

),

surveys as (

    select * from {{ ref('int_surveys_aggregated_to_customers') }}

),

spend as (

    select
        customers.customer_id,
        customers.country,
        customers.acquisition_channel,
        tenure.tenure_band,
        surveys.latest_reported_share_of_wallet_pct,
        coalesce(purchases.net_revenue_lookback, 0) as own_spend_lookback
    from customers
    left join tenure
        on customers.customer_id = tenure.customer_id
    left join purchases
        on customers.customer_id = purchases.customer_id
    left join surveys
        on customers.customer_id = surveys.customer_id

),

-- Lookalikes are customers who spent in the window; the finest group with enough of them wins.
spenders as (

    select * from spend
    where own_spend_lookback > 0

),

by_lookalikes as (

    select
        country,
        acquisition_channel,
        tenure_band,
        count(*) as lookalike_customers,
        {{ spend_quantile }} as spend_quantile
    from spenders
    group by country, acquisition_channel, tenure_band

),

by_country as (

    select
        country,
        count(*) as lookalike_customers,
        {{ spend_quantile }} as spend_quantile
    from spenders
    group by country

),

overall as (

    select
        count(*) as lookalike_customers,
        {{ spend_quantile }} as spend_quantile
    from spenders

),

matched as (

    select
        spend.*,
        case
            when by_lookalikes.lookalike_customers >= {{ min_lookalikes }} then 'country, channel, tenure band'
            when by_country.lookalike_customers >= {{ min_lookalikes }} then 'country'
            else 'all customers'
        end as lookalike_group,
        case
            when by_lookalikes.lookalike_customers >= {{ min_lookalikes }} then by_lookalikes.lookalike_customers
            when by_country.lookalike_customers >= {{ min_lookalikes }} then by_country.lookalike_customers
            else overall.lookalike_customers
        end as lookalike_customers,
        case
            when by_lookalikes.lookalike_customers >= {{ min_lookalikes }} then by_lookalikes.spend_quantile
            when by_country.lookalike_customers >= {{ min_lookalikes }} then by_country.spend_quantile
            else overall.spend_quantile
        end as lookalike_spend_quantile
    from spend
    cross join overall
    left join by_lookalikes
        on
            spend.country = by_lookalikes.country
            and spend.acquisition_channel = by_lookalikes.acquisition_channel
            and spend.tenure_band = by_lookalikes.tenure_band
    left join by_country
        on spend.country = by_country.country

),

walleted as (

    select
        *,
        -- The floor: nobody's wallet is smaller than what they already spend with us.
        case
            when lookalike_spend_quantile > own_spend_lookback then lookalike_spend_quantile
            else own_spend_lookback
        end as wallet_modelled,
        case
            when latest_reported_share_of_wallet_pct > 0
                then cast(own_spend_lookback as {{ cvm_type_double() }}) * 100 / latest_reported_share_of_wallet_pct
        end as wallet_reported
    from matched

),

final as (

    select
        customer_id,
        cast(own_spend_lookback as decimal(18, 2)) as own_spend_lookback,
        lookalike_group,
        lookalike_customers,
        {{ cvm_money_from_double('wallet_modelled') }} as wallet_modelled,
        cast(own_spend_lookback / nullif(wallet_modelled, 0) as {{ cvm_type_double() }}) as share_of_wallet_modelled,
        -- From the rounded wallet, so the headroom is exact on every engine.
        cast(
            {{ cvm_money_from_double('wallet_modelled') }}
            - cast(own_spend_lookback as decimal(18, 2)) as decimal(18, 2)
        ) as wallet_headroom_modelled,
        {{ cvm_money_from_double('wallet_reported') }} as wallet_reported,
        cast(latest_reported_share_of_wallet_pct as {{ cvm_type_double() }}) / 100 as share_of_wallet_reported,
        {{ cvm_money_from_double('wallet_reported - own_spend_lookback') }} as wallet_headroom_reported
    from walleted

)

select * from final
