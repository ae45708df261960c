{#- Every raw row staging refused, from every file, with the reason. -#}
{%- set keys = {
    'customers': 'customer_id',
    'orders': 'order_id',
    'credit_notes': 'credit_note_id',
    'order_items': 'order_item_id',
    'products': 'product_id',
    'complaints': 'complaint_id',
    'surveys': 'response_id',
    'contacts': 'contact_id',
} -%}

with

{% for source_table, key in keys.items() %}
    quarantined_{{ source_table }} as (

        select
            '{{ source_table }}' as source_table,
            {{ key }} as record_key,
            quarantine_reason,
            raw_record
        from {{ ref('base_shop__' ~ source_table) }}
        where quarantine_reason is not null

    ),

{% endfor -%}

unioned as (

    {% for source_table in keys %}
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
