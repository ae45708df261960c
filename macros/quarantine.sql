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

deduplicated as (

    -- Every further copy of a key among the rows without an issue is a 'duplicate_key';
    -- `order_by` decides which copy is kept, so a rerun keeps the same one.
    select
        *,
        coalesce(
            row_issue,
            case
                when row_number() over (partition by {{ key }}, row_issue order by {{ order_by }}) > 1
                    then 'duplicate_key'
            end
        ) as quarantine_reason
    from recorded

),
{% endmacro %}

{% macro cvm_quarantine_record(record_columns) -%}
    {#- Refused rows' raw text; duplicates (clean copies) are rendered from their typed values. -#}
    case
        when quarantine_reason is not null
            then coalesce(raw_record, {{ cvm_raw_record(record_columns) }})
    end
{%- endmacro %}
