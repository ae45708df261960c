{#-
    A snapshot that compares only the reprocessed window (doc block `incremental_orders`).
    dbt's check strategy compares every source row with every current version, which at 10M
    orders costs more than the rest of a daily build's order work. `make build` has already
    compared the new staging with the stored order facts and found no difference before the
    reprocess date; it says so with var `source_unchanged_before_reprocess_date`. A snapshot
    whose `meta.compared_window_date` names its rows' date then compares only the rows from
    `cvm_reprocess_orders_from()` on, in the source and in its own current versions: the same
    new versions and deletion records, because before that date nothing changed. Without the
    var (a plain `dbt build`, a full refresh) it compares every row, as dbt does.
    Everything else stays dbt's: its staging query runs on the window's rows.
-#}

{% macro default__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- set window_date = (config.get('meta') or {}).get('compared_window_date') -%}
    {%- if window_date and cvm_source_unchanged_before_reprocess_date() -%}
        {%- set in_window = window_date ~ ' >= ' ~ cvm_reprocess_orders_from() -%}
        {%- set compared = cvm_compared_window(target_relation) -%}
        {%- do run_query(
            'create or replace view ' ~ compared ~ ' as select * from ' ~ target_relation
            ~ ' where ' ~ in_window) -%}
        {%- set source_sql = 'select * from (' ~ source_sql ~ ') as snapshot_source where ' ~ in_window -%}
        {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, compared)) }}
    {%- endif -%}
    {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}

{% macro cvm_compared_window(snapshot) -%}
    {#- The view of a snapshot's versions in the compared window, beside the snapshot. -#}
    {{ return(snapshot.incorporate(path={'identifier': snapshot.identifier ~ '__compared_window'})) }}
{%- endmacro %}

{% macro cvm_drop_compared_window() -%}
    {#- Post-hook of a windowed snapshot: the window's view goes once the merge is done. -#}
    {{ return('drop view if exists ' ~ cvm_compared_window(this)) }}
{%- endmacro %}
