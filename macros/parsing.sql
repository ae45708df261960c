{#-
    Parsing helpers for staging. Raw values arrive as text; each helper returns null when the
    text cannot be read, so staging can quarantine the row with a reason instead of failing.
    Built on dbt's cross-database `safe_cast` and `type_*` macros.
-#}

{% macro cvm_clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{% macro cvm_parse_timestamp(column) -%}
    {{ dbt.safe_cast(cvm_clean_text(column), dbt.type_timestamp()) }}
{%- endmacro %}

{% macro cvm_parse_date(column) -%}
    {#- Through timestamp, so both '2024-05-01' and '2024-05-01 13:45:00' are dates. -#}
    cast({{ cvm_parse_timestamp(column) }} as date)
{%- endmacro %}

{% macro cvm_parse_money(column) -%}
    {{ dbt.safe_cast(cvm_clean_text(column), 'decimal(18, 2)') }}
{%- endmacro %}

{% macro cvm_parse_integer(column) -%}
    {{ dbt.safe_cast(cvm_clean_text(column), dbt.type_bigint()) }}
{%- endmacro %}

{% macro cvm_is_unparseable(raw_column, parsed_column) -%}
    ({{ cvm_clean_text(raw_column) }} is not null and {{ parsed_column }} is null)
{%- endmacro %}

{% macro cvm_raw_record(columns) -%}
    {#- One readable text of a raw row for the quarantine, e.g. `order_id=7; status=shipped`. -#}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("'" ~ ('; ' if not loop.first else '') ~ column ~ "='") -%}
        {%- do parts.append("coalesce(" ~ column ~ ", '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{% macro cvm_as_of_date() -%}
    (select as_of_date from {{ ref('base_shop__as_of_date') }})
{%- endmacro %}

{% macro cvm_as_of_cutoff() -%}
    {#- First instant after the as-of day: anything at or after it is in the future. -#}
    (select as_of_cutoff_at from {{ ref('base_shop__as_of_date') }})
{%- endmacro %}
