-- Every (recency score, frequency-monetary score) cell from 1-5 x 1-5 maps to exactly one
-- segment: returns missing cells, cells mapped twice, and cells outside the grid.
with

grid as (

    select
        recency.score as recency_score,
        frequency_monetary.score as frequency_monetary_score
    from (values (1), (2), (3), (4), (5)) as recency (score)
    cross join (values (1), (2), (3), (4), (5)) as frequency_monetary (score)

),

mapped as (

    select
        recency_score,
        frequency_monetary_score,
        count(*) as n_segments
    from {{ ref('rfm_segments') }}
    group by recency_score, frequency_monetary_score

),

final as (

    select
        coalesce(grid.recency_score, mapped.recency_score) as recency_score,
        coalesce(grid.frequency_monetary_score, mapped.frequency_monetary_score) as frequency_monetary_score,
        coalesce(mapped.n_segments, 0) as n_segments
    from grid
    full outer join mapped
        on
            grid.recency_score = mapped.recency_score
            and grid.frequency_monetary_score = mapped.frequency_monetary_score
    where grid.recency_score is null or coalesce(mapped.n_segments, 0) != 1

)

select * from final
