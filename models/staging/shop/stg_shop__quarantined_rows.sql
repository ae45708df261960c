{#- Every raw row staging refused, from every file of the contract, with the reason. -#}
{%- set tables = cvm_contract_tables() -%}

with

{% for source_table in tables %}
    quarantined_{{ source_table }} as (

        select
            '{{ source_table }}' as source_table,
            {{ cvm_contract_key(source_table) }} as record_key,
            quarantine_reason,
            raw_record
        from {{ ref('base_shop__' ~ source_table) }}
        where quarantine_reason is not null

    ),

{% endfor -%}

unioned as (

    {% for source_table in tables %}
        select * from quarantined_{{ source_table }}
        {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select
        -- Exact duplicate rows share everything but their position among equals.
        {{ dbt.hash(dbt.concat([
            'source_table', "'|'", 'raw_record', "'|'",
            'cast(row_number() over (partition by source_table, raw_record order by quarantine_reason) as '
                ~ dbt.type_string() ~ ')'
        ])) }} as quarantined_row_id,
        source_table,
        record_key,
        quarantine_reason,
        raw_record
    from unioned

)

select * from final
