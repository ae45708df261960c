{#- The order facts and the monthly tier history are incremental (doc block `incremental_orders`):
    an incremental run deletes what it reprocesses (a pre-hook) and appends the rebuilt rows
    after the last row it kept. Deleting first, rather than merging on a key, also removes
    source rows deleted inside the reprocessed window. -#}

{% macro cvm_reprocess_orders_from() -%}
    {#- First order date an incremental run rebuilds: `incremental_lookback_days` before the
        as-of date, or the var `reprocess_orders_from` when it is earlier (make build sets it
        to the earliest order the source changed at; a user may set it to backfill). -#}
    {%- set lookback_days = var('incremental_lookback_days') | int -%}
    {%- set reprocess_from = cvm_date_var('reprocess_orders_from') -%}
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

{% macro cvm_source_unchanged_before_reprocess_date() -%}
    {#- Whether the caller compared the source with the stored facts and found nothing changed
        before the reprocess date (var `source_unchanged_before_reprocess_date`, which make build
        sets after its comparison): the reprocessed window then needs no safety margin. -#}
    {{ return((var('source_unchanged_before_reprocess_date') | string | lower) == 'true') }}
{%- endmacro %}

{% macro cvm_date_var(name) -%}
    {#- A var holding a date YYYY-MM-DD, or '' when unset; anything else is an error. -#}
    {%- set value = var(name) | string -%}
    {%- if value and not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value) -%}
        {{ exceptions.raise_compiler_error(
            "var " ~ name ~ " must be a date YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{% macro cvm_delete_reprocessed_orders() -%}
    {#- Pre-hook of an incremental order fact: drop the rows the run rebuilds. -#}
    {%- if is_incremental() -%}
        {{ return(cvm_delete_recording_kept_rows('order_date >= ' ~ cvm_reprocess_orders_from(), 'order_date')) }}
    {%- endif -%}
{%- endmacro %}

{% macro cvm_after_kept_rows(row_date='order_date', kept_column='order_date') -%}
    {#- Filter of an incremental run's new rows: `row_date` (an expression on the rows read)
        after the last `kept_column` the pre-hook kept; no filter on a first run or a full
        refresh. -#}
    {%- if is_incremental() -%}
        {{ row_date }} > coalesce((select max({{ kept_column }}) from {{ this }}), cast('0001-01-01' as date))
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{#- Data tests on the rows a run wrote. Each pre-hook above records, after its delete, the last
    date it kept (`<table>__kept_rows` in intermediate, with dbt's invocation id): the run wrote
    exactly the rows after it (it appends only those, macro cvm_after_kept_rows). A key test
    given `written_after` checks only the keys of those rows, against every row (a new row may
    repeat a kept key); the kept rows passed the same test when they were written. A full
    refresh, a first build, `dbt test` on its own and Spark (no record) test every row. -#}

{% macro cvm_record_kept_rows(kept_column) -%}
    {#- The end of an incremental pre-hook (after its delete): record the last `kept_column` kept. -#}
    {{ return(adapter.dispatch('cvm_record_kept_rows', 'customer_value_warehouse')(kept_column)) }}
{%- endmacro %}

{% macro default__cvm_record_kept_rows(kept_column) -%}
    {#- Not recorded: the tests check every row (Spark's Parquet tables, where a record would be
        one more table rewrite per run). -#}
    {{ return('') }}
{%- endmacro %}

{% macro duckdb__cvm_record_kept_rows(kept_column) -%}
    {{ return('create or replace table ' ~ cvm_kept_rows_relation(this.identifier, this.database)
        ~ ' as select max(' ~ kept_column ~ ') as kept_through, ' ~ cvm_sql_string(invocation_id)
        ~ ' as invocation_id from ' ~ this) }}
{%- endmacro %}

{% macro cvm_delete_recording_kept_rows(condition, kept_column) -%}
    {#- An incremental pre-hook: delete the rows of `this` where `condition` holds, then record the
        last `kept_column` kept. Either statement may be empty (Spark's delete runs its own). -#}
    {{ return([cvm_delete_where(this, condition), cvm_record_kept_rows(kept_column)] | select | join(';\n')) }}
{%- endmacro %}

{% macro cvm_kept_rows_relation(table_name, database) -%}
    {{ return(api.Relation.create(database=database, schema=generate_schema_name('intermediate', none),
        identifier=table_name ~ '__kept_rows', type='table')) }}
{%- endmacro %}

{% macro cvm_kept_through(table_name, database) -%}
    {#- The last date the incremental table `table_name` kept in this dbt invocation, as
        YYYY-MM-DD; none when it wrote every row (or did not run incrementally in it). -#}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {{ return(adapter.dispatch('cvm_kept_through', 'customer_value_warehouse')(table_name, database)) }}
{%- endmacro %}

{% macro default__cvm_kept_through(table_name, database) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro duckdb__cvm_kept_through(table_name, database) -%}
    {#- The catalog, not dbt's relation cache: the hooks create the record unseen by the cache. -#}
    {%- set record = cvm_kept_rows_relation(table_name, database) -%}
    {%- set found = run_query("select count(*) from information_schema.tables where table_catalog = "
        ~ cvm_sql_string(record.database) ~ " and table_schema = " ~ cvm_sql_string(record.schema)
        ~ " and table_name = " ~ cvm_sql_string(record.identifier)).columns[0].values()[0] -%}
    {%- if not found -%}{{ return(none) }}{%- endif -%}
    {%- set rows = run_query('select cast(kept_through as varchar) from ' ~ record
        ~ ' where invocation_id = ' ~ cvm_sql_string(invocation_id)).rows -%}
    {{ return(rows[0][0] if rows else none) }}
{%- endmacro %}

{% macro cvm_written_rows(written_after, database) -%}
    {#- A condition on the rows an incremental table wrote in this invocation: `written_after`
        is {table: <incremental table>, column: <its date column on the tested model>}; `true`
        when it wrote every row. -#}
    {%- set kept_through = cvm_kept_through(written_after['table'], database) -%}
    {%- if kept_through is none -%}{{ return('true') }}{%- endif -%}
    {{ return(written_after['column'] ~ " > cast('" ~ kept_through ~ "' as date)") }}
{%- endmacro %}

{% macro cvm_delete_customers_of_rewritten_rows(facts, last_date_column) -%}
    {#- Pre-hook of an incremental per-customer aggregate of the incremental fact `facts` (a ref
        dated by order_date): drop the customers the facts' run touched, to be aggregated again
        from all their rows. Those with a stored `last_date_column` after the date the facts
        kept (their aggregate held rows the run rewrote or deleted) and those with rows after it
        now; every customer when the facts wrote every row (or did not run in this invocation:
        no record, macro cvm_kept_through). -#}
    {%- if not is_incremental() -%}{{ return('') }}{%- endif -%}
    {%- set kept_through = cvm_kept_through(facts.identifier, facts.database) -%}
    {%- if kept_through is none -%}{{ return(cvm_delete_where(this, 'true')) }}{%- endif -%}
    {%- set kept = "cast('" ~ kept_through ~ "' as date)" -%}
    {{ return(cvm_delete_where(this, last_date_column ~ ' > ' ~ kept ~ ' or customer_id in (select customer_id from '
        ~ facts ~ ' where order_date > ' ~ kept ~ ')')) }}
{%- endmacro %}

{% macro cvm_delete_reprocessed_tier_months(month_column='period_month') -%}
    {#- Pre-hook of the monthly tier history (and of the migrations between its months, whose
        `month_column` is the later month): the months cvm_delete_reprocessed_months drops, or
        all of them when the tier rules changed since the table was built (macro
        cvm_tier_rules: tiers under two sets of rules do not compare). -#}
    {%- if is_incremental() and cvm_tier_rules_changed() -%}
        {{ return(cvm_delete_recording_kept_rows('true', month_column)) }}
    {%- endif -%}
    {{ return(cvm_delete_reprocessed_months(month_column)) }}
{%- endmacro %}

{% macro cvm_delete_reprocessed_months(month_column) -%}
    {#- Pre-hook of a monthly incremental table (the monthly blocks of the tier history, and
        through the macro above the tier tables): drop the latest `tier_history_reprocess_months`
        stored months (the as-of month fills up; the month before it closes), the months of the
        reprocessed orders and from the var `reprocess_tier_months_from` (make build sets it to
        the earliest month whose complaint compensation changed: complaints change the monthly
        tables, not the order facts), and any month after the as-of month (an earlier as-of
        date). When make build found the source unchanged before the reprocess dates, only the
        latest stored month is dropped besides those: nothing late can hide in the months before
        it, and each month kept is a month of every customer not recomputed. -#}
    {%- if is_incremental() -%}
        {%- set tier_months_from = cvm_date_var('reprocess_tier_months_from') -%}
        {%- set latest_months = 1 if cvm_source_unchanged_before_reprocess_date()
            else var('tier_history_reprocess_months') | int -%}
        {%- set condition -%}
            {{ month_column }} >= (
                select
                    least(
                        cast({{ dbt.dateadd('month', 1 - latest_months, 'max(' ~ month_column ~ ')') }} as date),
                        cast({{ dbt.date_trunc('month', cvm_reprocess_orders_from()) }} as date)
                        {%- if tier_months_from %},
                        cast({{ dbt.date_trunc('month', "cast('" ~ tier_months_from ~ "' as date)") }} as date)
                        {%- endif %}
                    )
                from {{ this }}
            )
        {%- endset %}
        {{ return(cvm_delete_recording_kept_rows(condition, month_column)) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{% macro cvm_tier_rules() -%}
    {#- Everything besides the orders that decides a month's tier, as one line of text: the
        value basis, whether costs are known at all, the tier bands (seed value_tiers) and the
        vars of the tier rule. An incremental run keeps stored months only while this is what
        they were computed with; a change of any of it rebuilds the history in full. -#}
    {%- set basis = run_query('select value_basis, has_cost_data from ' ~ ref('int_value_basis_chosen')) -%}
    {%- set bands = run_query('select value_tier, tier_rank, lower_value from '
        ~ ref('int_value_tier_bands') ~ ' order by tier_rank') -%}
    {%- set parts = [
        'value_basis=' ~ basis.rows[0][0],
        'has_cost_data=' ~ basis.rows[0][1],
        'tier_window_months=' ~ var('tier_window_months'),
        'new_customer_days=' ~ var('new_customer_days'),
    ] -%}
    {%- for band in bands.rows -%}
        {%- do parts.append(band[0] ~ '(rank ' ~ band[1] ~ ') from ' ~ band[2]) -%}
    {%- endfor -%}
    {{ return(parts | join('; ')) }}
{%- endmacro %}

{% macro cvm_tier_rules_relation() -%}
    {#- Where a tier table's rules are recorded: in the table's own database (slim CI may read
        the bands from production's), in intermediate beside the bands, so that marts hold only
        marts. -#}
    {%- set bands = ref('int_value_tier_bands') -%}
    {{ return(api.Relation.create(database=this.database, schema=bands.schema,
        identifier=this.identifier ~ '__tier_rules', type='table')) }}
{%- endmacro %}

{% macro cvm_tier_rules_changed() -%}
    {#- Whether the tier rules differ from those the stored table was built with (none recorded:
        a table built before the rules were recorded, so they are unknown). -#}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set record = cvm_tier_rules_relation() -%}
    {%- set recorded_in = adapter.get_relation(
        database=record.database, schema=record.schema, identifier=record.identifier) -%}
    {%- set recorded = run_query('select tier_rules from ' ~ recorded_in).rows[0][0]
        if recorded_in is not none else none -%}
    {%- set current = cvm_tier_rules() -%}
    {%- if recorded != current -%}
        {%- do log("The tier rules changed since " ~ this.identifier ~ " was built: it is rebuilt in full."
            ~ " Before: " ~ (recorded or 'not recorded') ~ ". Now: " ~ current ~ ".", info=true) -%}
    {%- endif -%}
    {{ return(recorded != current) }}
{%- endmacro %}

{% macro cvm_record_tier_rules() -%}
    {#- Post-hook of the tier tables: record the rules they now hold (macro cvm_tier_rules). -#}
    {%- if execute -%}
        {%- set relation = cvm_tier_rules_relation() -%}
        {%- do adapter.create_schema(relation) -%}
        {%- do adapter.drop_relation(relation) -%}
        {%- do run_query(cvm_create_table_as(relation,
            'select ' ~ cvm_sql_string(cvm_tier_rules()) ~ ' as tier_rules')) -%}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}

{% macro cvm_create_table_as(relation, sql) -%}
    {#- A plain `create table as` for a hook's own table (dbt's create_table_as would apply the
        calling model's contract to it). -#}
    {{ return(adapter.dispatch('cvm_create_table_as', 'customer_value_warehouse')(relation, sql)) }}
{%- endmacro %}

{% macro default__cvm_create_table_as(relation, sql) -%}
    {{ return('create table ' ~ relation ~ ' as ' ~ sql) }}
{%- endmacro %}

{% macro spark__cvm_create_table_as(relation, sql) -%}
    {#- In the table format of the models (Parquet locally, Delta on Databricks). -#}
    {{ return('create table ' ~ relation ~ ' using ' ~ config.get('file_format') ~ ' as ' ~ sql) }}
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
