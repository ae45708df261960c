-- For every raw file: raw rows = accepted rows + quarantined rows. Fails with one row per file
-- where staging lost or invented rows (e.g. a join that fans out or drops).
{%- set tables = cvm_contract_tables() %}

with

raw_counts as (

    {% for table in tables %}
        select
            '{{ table }}' as source_table,
            count(*) as raw_rows
        from {{ source('shop', table) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

accepted_counts as (

    {% for table in tables %}
        select
            '{{ table }}' as source_table,
            count(*) as accepted_rows
        from {{ ref('stg_shop__' ~ table) }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

quarantined_counts as (

    select
        source_table,
        count(*) as quarantined_rows
    from {{ ref('stg_shop__quarantined_rows') }}
    group by source_table

),

final as (

    select
        raw_counts.source_table,
        raw_counts.raw_rows,
        accepted_counts.accepted_rows,
        coalesce(quarantined_counts.quarantined_rows, 0) as quarantined_rows
    from raw_counts
    inner join accepted_counts
        on raw_counts.source_table = accepted_counts.source_table
    left join quarantined_counts
        on raw_counts.source_table = quarantined_counts.source_table
    where raw_counts.raw_rows != accepted_counts.accepted_rows + coalesce(quarantined_counts.quarantined_rows, 0)

)

select * from final
