{#- The order facts and the monthly tier history are incremental (doc block `incremental_orders`):
    an incremental run deletes what it reprocesses (a pre-hook) and appends the rebuilt rows
    after the last row it kept. Deleting first, rather than merging on a key, also removes
    source rows deleted inside the reprocessed window. -#}

{% macro cvm_reprocess_orders_from() -%}
    {#- First order date an incremental run rebuilds: `incremental_lookback_days` before the
        as-of date, or the var `reprocess_orders_from` when it is earlier (make build sets it
        to the earliest order the source changed at; a user may set it to backfill). -#}
    {%- set lookback_days = var('incremental_lookback_days') | int -%}
    {%- set reprocess_from = var('reprocess_orders_from') -%}
    {%- if reprocess_from -%}
        {%- set valid = modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', reprocess_from | string) -%}
        {%- if not valid -%}
            {{ exceptions.raise_compiler_error(
                "var reprocess_orders_from must be a date YYYY-MM-DD, got '" ~ reprocess_from ~ "'") }}
        {%- endif -%}
    {%- endif -%}
    {%- set lookback_start = dbt.dateadd('day', -lookback_days, 'as_of_date') -%}
    (
        select
            {% if reprocess_from -%}
                least(cast({{ lookback_start }} as date), cast('{{ reprocess_from }}' as date))
            {%- else -%}
                cast({{ lookback_start }} as date)
            {%- endif %}
        from {{ ref('base_shop__as_of_date') }}
    )
{%- endmacro %}

{% macro cvm_delete_reprocessed_orders() -%}
    {#- Pre-hook of an incremental order fact: drop the rows the run rebuilds. -#}
    {%- if is_incremental() -%}
        {{ cvm_delete_where(this, 'order_date >= ' ~ cvm_reprocess_orders_from()) }}
    {%- endif -%}
{%- endmacro %}

{% macro cvm_after_kept_rows(row_date='order_date') -%}
    {#- Filter of an incremental run's new rows: `row_date` (an expression on the rows read)
        after the last `order_date` the pre-hook kept; no filter on a first run or a full
        refresh. -#}
    {%- if is_incremental() -%}
        {{ row_date }} > coalesce((select max(order_date) from {{ this }}), cast('0001-01-01' as date))
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{% macro cvm_delete_reprocessed_tier_months(month_column='period_month') -%}
    {#- Pre-hook of the monthly tier history (and of the migrations between its months, whose
        `month_column` is the later month): drop the latest `tier_history_reprocess_months`
        stored months (the as-of month fills up; the month before it closes), the months of
        the reprocessed orders, and any month after the as-of month (an earlier as-of date);
        all of it when the value basis changed (tiers of two bases do not compare). -#}
    {%- if is_incremental() -%}
        {%- set condition -%}
            value_basis is distinct from (select value_basis from {{ ref('int_value_basis_chosen') }})
            or {{ month_column }} >= (
                select
                    least(
                        cast({{ dbt.dateadd('month', 1 - (var('tier_history_reprocess_months') | int),
                            'max(' ~ month_column ~ ')') }} as date),
                        cast({{ dbt.date_trunc('month', cvm_reprocess_orders_from()) }} as date)
                    )
                from {{ this }}
            )
        {%- endset %}
        {{ cvm_delete_where(this, condition) }}
    {%- endif -%}
{%- endmacro %}

{% macro cvm_delete_where(relation, condition) -%}
    {#- A pre-hook's delete of the rows of `relation` where `condition` holds. -#}
    {{ return(adapter.dispatch('cvm_delete_where', 'customer_value_warehouse')(relation, condition)) }}
{%- endmacro %}

{% macro default__cvm_delete_where(relation, condition) -%}
    {{ return('delete from ' ~ relation ~ ' where ' ~ condition) }}
{%- endmacro %}

{% macro databricks__cvm_delete_where(relation, condition) -%}
    {#- Delta tables delete like DuckDB's. -#}
    {{ return(default__cvm_delete_where(relation, condition)) }}
{%- endmacro %}

{% macro spark__cvm_delete_where(relation, condition) -%}
    {#- Parquet tables (the local Spark target) have no DELETE, and Spark does not overwrite a
        table it reads: the rows to keep go to a scratch table and back. A rewrite of the kept
        rows, where Delta would mark deleted files; run here, one statement at a time. -#}
    {%- set kept = relation.incorporate(path={'identifier': relation.identifier ~ '__kept'}) -%}
    {%- do run_query('drop table if exists ' ~ kept) -%}
    {%- do run_query('create table ' ~ kept ~ ' using parquet as select * from ' ~ relation
        ~ ' where not coalesce((' ~ condition ~ '), false)') -%}
    {%- do run_query('insert overwrite table ' ~ relation ~ ' select * from ' ~ kept) -%}
    {%- do run_query('drop table ' ~ kept) -%}
    {{ return('') }}
{%- endmacro %}
