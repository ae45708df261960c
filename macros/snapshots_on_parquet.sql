{#-
    Snapshots on the local Spark target, whose tables are Parquet (dbt_project.yml, file_format).
    dbt-spark snapshots only Delta, Iceberg or Hudi tables, which can MERGE. For Parquet, dbt's
    own snapshot materialization runs with a merge done as a rewrite: the same SCD2 history
    (check strategy, hard-delete records), a full rewrite of the snapshot table per run where
    Delta would merge. Delta, Iceberg and Hudi tables (Databricks) keep the adapter's merge.
    Two dbt-spark macros dbt's materialization calls are replaced too (below).
-#}

{% materialization snapshot, adapter='spark' %}
    {%- if (config.get('file_format') or 'parquet') in ['delta', 'iceberg', 'hudi'] -%}
        {{ return(dbt_spark.materialization_snapshot_spark()) }}
    {%- else -%}
        {{ return(dbt.materialization_snapshot_default()) }}
    {%- endif -%}
{% endmaterialization %}

{% macro spark__snapshot_merge_sql(target, source, insert_cols) -%}
    {%- if (config.get('file_format') or 'parquet') in ['delta', 'iceberg', 'hudi'] -%}
        {{ return(dbt_spark.spark__snapshot_merge_sql(target, source, insert_cols)) }}
    {%- endif -%}
    {#- What MERGE would do (dbt's default__snapshot_merge_sql): a current row with an update
        or delete in the staging rows gets its dbt_valid_to; staging inserts are added. Spark
        does not overwrite a table it reads, so the result goes through a scratch table; the
        statements run here, one at a time, and the last is returned for the materialization. -#}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {%- set rewritten = target.incorporate(path={'identifier': target.identifier ~ '__rewritten'}) -%}
    {%- set inserted = insert_cols | map('replace', '`', '') | map('lower') | list -%}
    {%- set select_list = [] -%}
    {%- set insert_list = [] -%}
    {%- for column in adapter.get_columns_in_relation(target) -%}
        {%- if column.name | lower == columns.dbt_valid_to | lower -%}
            {%- do select_list.append('case when changes.' ~ columns.dbt_scd_id ~ ' is not null then changes.'
                ~ columns.dbt_valid_to ~ ' else current_rows.' ~ columns.dbt_valid_to ~ ' end as ' ~ column.quoted) -%}
        {%- else -%}
            {%- do select_list.append('current_rows.' ~ column.quoted) -%}
        {%- endif -%}
        {#- Staging rows in the snapshot's column order and types (a staging null is untyped). -#}
        {%- set value = column.quoted if column.name | lower in inserted else 'null' -%}
        {%- do insert_list.append('cast(' ~ value ~ ' as ' ~ column.data_type ~ ') as ' ~ column.quoted) -%}
    {%- endfor -%}
    {%- set is_current = 'current_rows.' ~ columns.dbt_valid_to ~ ' is null' -%}
    {%- if config.get('dbt_valid_to_current') -%}
        {%- set is_current = '(' ~ is_current ~ ' or current_rows.' ~ columns.dbt_valid_to ~ ' = '
            ~ config.get('dbt_valid_to_current') ~ ')' -%}
    {%- endif -%}
    {%- do run_query('drop table if exists ' ~ rewritten) -%}
    {%- do run_query(
        'create table ' ~ rewritten ~ ' using parquet as '
        ~ 'select ' ~ select_list | join(', ') ~ ' from ' ~ target ~ ' as current_rows '
        ~ 'left join (select ' ~ columns.dbt_scd_id ~ ', ' ~ columns.dbt_valid_to ~ ' from ' ~ source
        ~ " where dbt_change_type in ('update', 'delete')) as changes"
        ~ ' on changes.' ~ columns.dbt_scd_id ~ ' = current_rows.' ~ columns.dbt_scd_id ~ ' and ' ~ is_current
        ~ ' union all select ' ~ insert_list | join(', ') ~ ' from ' ~ source
        ~ " where dbt_change_type = 'insert' and " ~ columns.dbt_scd_id ~ ' not in (select '
        ~ columns.dbt_scd_id ~ ' from ' ~ target ~ ')') -%}
    {%- do run_query('insert overwrite table ' ~ target ~ ' select * from ' ~ rewritten) -%}
    drop table {{ rewritten }}
{%- endmacro %}

{% macro spark__get_or_create_relation(database, schema, identifier, type) -%}
    {#- dbt's snapshot materialization names the relation with the node's database, which a
        Spark node does not have (Spark names tables by schema and name). -#}
    {{ return(dbt.default__get_or_create_relation(none, schema, identifier, type)) }}
{%- endmacro %}

{% macro spark__get_columns_in_relation(relation) -%}
    {#- dbt's columns (name, data type), as on every other engine. dbt-spark's macro returns the
        raw rows of `describe extended` instead, so dbt's snapshot found none of the stored
        columns by name and wrote its hard-delete records with every source column null. -#}
    {{ return(adapter.get_columns_in_relation(relation)) }}
{%- endmacro %}
