{#-
    Parsing helpers for staging. Raw values arrive as text; a value that cannot be read becomes
    null, so staging can quarantine the row with a reason instead of failing the build. Built on
    dbt's cross-database `safe_cast` and `type_*` macros.

    Written for speed at tens of millions of rows: the common case (a clean value) takes one
    cast; trimming and the missing / unparseable tests only run on values that did not parse.
-#}

{% macro cvm_clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{% macro cvm_parse_number(column, type) -%}
    {#- Numeric casts accept surrounding blanks and give null for '' and junk. -#}
    {{ dbt.safe_cast(column, type) }}
{%- endmacro %}

{% macro cvm_parse_money(column) -%}
    {{ cvm_parse_number(column, 'decimal(18, 2)') }}
{%- endmacro %}

{% macro cvm_parse_integer(column) -%}
    {{ cvm_parse_number(column, dbt.type_bigint()) }}
{%- endmacro %}

{% macro cvm_parse_timestamp(column) -%}
    {#- Both '2024-05-01' and '2024-05-01 13:45:00'; trimmed only when the plain cast fails. -#}
    coalesce(
        {{ dbt.safe_cast(column, dbt.type_timestamp()) }},
        {{ dbt.safe_cast('trim(' ~ column ~ ')', dbt.type_timestamp()) }}
    )
{%- endmacro %}

{% macro cvm_parse_date(column) -%}
    cast({{ cvm_parse_timestamp(column) }} as date)
{%- endmacro %}

{% macro cvm_parse_as(column, parse_as) -%}
    {#- The parse for a contract column's `meta.parse_as` (the raw gate renders it too). -#}
    {%- if parse_as == 'timestamp' -%}
        {{ cvm_parse_timestamp(column) }}
    {%- elif parse_as == 'date' -%}
        {{ cvm_parse_date(column) }}
    {%- elif parse_as == 'boolean' -%}
        {{ cvm_parse_boolean(column) }}
    {%- else -%}
        {{ cvm_parse_number(column, parse_as) }}
    {%- endif -%}
{%- endmacro %}

{% macro cvm_is_missing(parsed, raw) -%}
    {#- Null or blank in the raw file. -#}
    case when {{ parsed }} is null then {{ cvm_clean_text(raw) }} is null else false end
{%- endmacro %}

{% macro cvm_is_unparseable(parsed, raw) -%}
    {#- Something was there, but it did not parse. -#}
    case when {{ parsed }} is null then {{ cvm_clean_text(raw) }} is not null else false end
{%- endmacro %}

{% macro cvm_keep_raw(columns) -%}
    {#- The raw text of `columns` as `<column>_raw`, for the checks and the quarantine record. -#}
    {%- for column in columns %}
        {{ column }} as {{ column }}_raw{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro cvm_raw_record(columns, suffix='') -%}
    {#- One readable text of a row for the quarantine: `order_id=7; status=shipped`. -#}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("'" ~ ('; ' if not loop.first else '') ~ column ~ "='") -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ suffix ~ " as " ~ dbt.type_string() ~ "), '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}

{% macro cvm_type_double() -%}
    {#- 64-bit float for ratios and averages (dbt.type_float is 32-bit on DuckDB). -#}
    {{ return(adapter.dispatch('cvm_type_double', 'customer_value_warehouse')()) }}
{%- endmacro %}

{% macro default__cvm_type_double() -%}
    double
{%- endmacro %}

{% macro cvm_parse_boolean(column) -%}
    {#- true / false (also 1 / 0, t / f, yes / no: whatever the engine's boolean cast reads). -#}
    {{ dbt.safe_cast('lower(' ~ cvm_clean_text(column) ~ ')', dbt.type_boolean()) }}
{%- endmacro %}
