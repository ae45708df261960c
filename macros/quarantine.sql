{#-
    The quarantine steps every base model shares, after its own `checked` CTE (which holds
    the typed columns, the raw text as `<column>_raw`, and `row_issue`: the row's own problem
    or null).
-#}

{% macro cvm_quarantine_ctes(key, order_by, record_columns) %}
recorded as (

    -- Raw text only for rows with an issue: carrying it for every row costs a wide sort below.
    select
        *,
        case when row_issue is not null then {{ cvm_raw_record(record_columns, '_raw') }} end as raw_record
    from checked

),

duplicated_keys as (

    -- Keys with more than one copy among the rows without an issue. Only their rows need
    -- numbering: a window over every row sorted all of them (15 % of base_shop__order_items'
    -- time at 1M customers, where almost no key has a copy).
    select {{ key }} as duplicated_key
    from recorded
    where row_issue is null
    group by {{ key }}
    having count(*) > 1

),

deduplicated as (

    -- Every further copy of a key among the rows without an issue is a 'duplicate_key';
    -- `order_by` decides which copy is kept, so a rerun keeps the same one.
    select
        recorded.*,
        recorded.row_issue as quarantine_reason
    from recorded
    left join duplicated_keys
        on
            recorded.{{ key }} = duplicated_keys.duplicated_key
            and recorded.row_issue is null
    where duplicated_keys.duplicated_key is null

    union all

    select
        recorded.*,
        case
            when row_number() over (partition by recorded.{{ key }} order by {{ order_by }}) > 1
                then 'duplicate_key'
        end as quarantine_reason
    from recorded
    inner join duplicated_keys
        on recorded.{{ key }} = duplicated_keys.duplicated_key
    where recorded.row_issue is null

),
{% endmacro %}

{% macro cvm_quarantine_record(record_columns) -%}
    {#- Refused rows' raw text; duplicates (clean copies) are rendered from their typed values. -#}
    case
        when quarantine_reason is not null
            then coalesce(raw_record, {{ cvm_raw_record(record_columns) }})
    end
{%- endmacro %}

{% macro cvm_contract_tables() %}
    {#-
        The tables of the raw contract (the `shop` source), for models that ref one model per
        table. dbt records refs while parsing, before `graph` is filled, so the names are
        spelled out here once; at run time they are checked against the source YAML.
    -#}
    {% set names = [
        'customers', 'orders', 'credit_notes', 'order_items', 'products', 'complaints', 'surveys', 'contacts'
    ] %}
    {% if execute %}
        {% set declared = cvm_contract_keys().keys() | list %}
        {% if names | sort != declared | sort %}
            {{ exceptions.raise_compiler_error(
                "cvm_contract_tables() lists " ~ names | join(', ') ~ " but the shop source declares "
                ~ declared | join(', ') ~ "; list the same tables (macros/quarantine.sql).") }}
        {% endif %}
    {% endif %}
    {{ return(names) }}
{% endmacro %}

{% macro cvm_contract_key(table_name) %}
    {#- The key column of a contract table (`meta.key`); known at run time, not while parsing. -#}
    {{ return(cvm_contract_keys()[table_name] if execute else 'key_known_at_run_time') }}
{% endmacro %}

{% macro cvm_contract_keys() %}
    {#- Each table of the raw contract with its key column, from the source YAML. -#}
    {% set keys = {} %}
    {% for table in graph.sources.values() | selectattr('source_name', 'equalto', 'shop') %}
        {% do keys.update({table.name: table.meta.key}) %}
    {% endfor %}
    {{ return(keys) }}
{% endmacro %}
