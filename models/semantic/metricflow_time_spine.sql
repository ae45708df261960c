-- One row per day from var time_spine_start to the as-of date: MetricFlow's time spine, which
-- cumulative and period-over-period metrics join to.
with

as_of as (

    select * from {{ ref('base_shop__as_of_date') }}

),

day_numbers as (

    -- 100 years of days; the as-of date ends the spine.
    {{ dbt.generate_series(36600) }}

),

days as (

    select
        cast(
            {{ dbt.dateadd('day', 'generated_number - 1', "cast('" ~ var('time_spine_start') ~ "' as date)") }}
            as date
        ) as date_day
    from day_numbers

),

final as (

    select days.date_day
    from days
    cross join as_of
    where days.date_day <= as_of.as_of_date

)

select * from final
