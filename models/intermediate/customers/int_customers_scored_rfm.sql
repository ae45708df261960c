-- RFM per customer with at least one completed purchase: recency over the lifetime,
-- frequency and monetary value over the lookback window, each scored 1-5 by rank so that
-- tied values share a score, and the named segment from the editable `rfm_segments` seed.
with

purchases as (

    select * from {{ ref('int_orders_aggregated_to_customers') }}
    where purchase_count_lifetime > 0

),

segments as (

    select * from {{ ref('rfm_segments') }}

),

measured as (

    select
        customer_id,
        {{ cvm_days_between('last_purchase_date', cvm_as_of_date()) }} as recency_days,
        purchase_count_lookback as frequency_lookback,
        net_revenue_lookback as monetary_lookback
    from purchases

),

ranked as (

    select
        *,
        count(*) over () as scored_customers,
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency_lookback) as frequency_rank,
        rank() over (order by monetary_lookback) as monetary_rank
    from measured

),

scored as (

    -- rank() gives ties the rank of the first of them, so a tie is never split across scores.
    -- Recency: fewer days is better, so it is ranked descending.
    select
        *,
        {{ cvm_rank_score('recency_rank', 'scored_customers') }} as recency_score,
        {{ cvm_rank_score('frequency_rank', 'scored_customers') }} as frequency_score,
        {{ cvm_rank_score('monetary_rank', 'scored_customers') }} as monetary_score
    from ranked

),

combined as (

    select
        *,
        cast(round((frequency_score + monetary_score) / 2.0) as integer) as frequency_monetary_score
    from scored

),

final as (

    select
        combined.customer_id,
        combined.recency_days,
        combined.frequency_lookback,
        combined.monetary_lookback,
        combined.recency_score,
        combined.frequency_score,
        combined.monetary_score,
        combined.frequency_monetary_score,
        {{ dbt.concat([
            'cast(combined.recency_score as ' ~ dbt.type_string() ~ ')',
            'cast(combined.frequency_score as ' ~ dbt.type_string() ~ ')',
            'cast(combined.monetary_score as ' ~ dbt.type_string() ~ ')',
        ]) }} as rfm_cell,
        segments.rfm_segment
    from combined
    left join segments
        on
            combined.recency_score = segments.recency_score
            and combined.frequency_monetary_score = segments.frequency_monetary_score

)

select * from final
