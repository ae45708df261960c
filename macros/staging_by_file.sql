{#-
    Staging by file (DuckDB; doc block `staging_by_file`). The base tables of the raw tables that
    grow by day (orders and their lines) are incremental: beside each, `<table>__raw_files`
    records the raw files it staged (path inside the raw directory, size, modification time,
    when), and a build parses only the files not recorded. The stored rows keep their verdicts,
    so every raw file is staged again (as on a full refresh) whenever a stored verdict could
    differ from what a full refresh would give:
    - a recorded file changed or is gone;
    - a new row's key is already stored (which copy is kept as the duplicate is decided across files);
    - the as-of cutoff moved across a stored row's date (`future_date` is judged against it);
    - a parent key a stored row refers to was accepted or refused since (`unknown_customer`,
      `unknown_order`).
    Checking these scans a few stored columns, against parsing and writing every row.
-#}

{% macro cvm_raw_rows_to_stage(source_relation) %}
    {#- What a base model parses: on an incremental run the rows of the files its pre-hook
        (cvm_stage_new_raw_files) chose, otherwise every raw row. -#}
    {{ return(cvm_rows_to_stage_relation(source_relation) if is_incremental() else source_relation) }}
{% endmacro %}

{% macro cvm_rows_to_stage_relation(source_relation) %}
    {#- The view of the raw rows to stage, beside the raw view; dropped after the run. -#}
    {{ return(api.Relation.create(
        database=source_relation.database, schema=source_relation.schema,
        identifier=source_relation.identifier ~ '__to_stage')) }}
{% endmacro %}

{% macro cvm_raw_files_relation(model_relation) %}
    {#- The record of the raw files a base model staged by file holds. -#}
    {{ return(api.Relation.create(
        database=model_relation.database, schema=model_relation.schema,
        identifier=model_relation.identifier ~ '__raw_files')) }}
{% endmacro %}

{% macro cvm_drop_rows_to_stage(table_name) %}
    {#- Post-hook: the pre-hook's view is of no use to readers of the warehouse. -#}
    {{ return('drop view if exists ' ~ cvm_rows_to_stage_relation(source('shop', table_name))
        if execute and is_incremental() else '') }}
{% endmacro %}

{% macro cvm_stage_new_raw_files(table_name, dated_by=none, parents=[]) %}
    {{ return(adapter.dispatch('cvm_stage_new_raw_files', 'customer_value_warehouse')(table_name, dated_by, parents)) }}
{% endmacro %}

{% macro default__cvm_stage_new_raw_files(table_name, dated_by, parents) %}
    {#- Engines whose SQL cannot list files (Spark) stage every raw file on every build. -#}
    {{ return('') }}
{% endmacro %}

{% macro duckdb__cvm_stage_new_raw_files(table_name, dated_by, parents) %}
    {#-
        Pre-hook of a base model staged by file: choose the files to parse, point the view
        cvm_raw_rows_to_stage reads at them, and record them (in the model's transaction: a
        failed run records nothing); on staging everything again, delete every stored row first.
        `dated_by`: the column judged `future_date` against the as-of cutoff; `parents`: dicts of
        `column`, `model` (a base model whose accepted keys the column must be among) and
        `reason` (the quarantine reason for a key that is not; the model's last check, so rows
        without an issue but that one are accepted or duplicates).
    -#}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set source_relation = source('shop', table_name) %}
    {% set raw_files = cvm_raw_files_relation(this) %}
    {% set listing = duckdb__cvm_listed_raw_files(table_name) %}
    {% set staged_at = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as timestamp)" %}
    {% set record_all = 'create or replace table ' ~ raw_files ~ ' as select *, ' ~ staged_at
        ~ ' as staged_at from (' ~ listing ~ ')' %}
    {% if not is_incremental() %}{{ return(record_all) }}{% endif %}
    {% set reasons = [] %}
    {% set new_files = [] %}
    {% if load_relation(raw_files) is none %}
        {% do reasons.append('no record of the raw files staged') %}
    {% else %}
        {% set files = run_query(cvm_compare_raw_files(listing, raw_files)) %}
        {% for row in files.rows %}
            {% if row[1] == 'new' %}{% do new_files.append(row[0]) %}{% endif %}
        {% endfor %}
        {% set changed = files.rows | selectattr(1, 'equalto', 'changed') | list | length %}
        {% if changed %}
            {% do reasons.append(changed ~ ' stored raw file(s) changed or gone') %}
        {% endif %}
    {% endif %}
    {% if not reasons %}
        {% set checks = cvm_restaging_checks(
            source_relation, cvm_contract_key(table_name), new_files, dated_by, parents) %}
        {% for check in checks %}
            {% set found = run_query(check.sql).columns[0].values()[0] %}
            {% if found > 0 %}{% do reasons.append(found ~ ' ' ~ check.what) %}{% endif %}
        {% endfor %}
    {% endif %}
    {% set to_stage = 'create or replace view ' ~ cvm_rows_to_stage_relation(source_relation)
        ~ ' as select * from ' ~ source_relation %}
    {% if reasons %}
        {{ log(this.identifier ~ ': every raw file is staged again (' ~ reasons | join('; ') ~ ')', info=True) }}
        {{ return([record_all, cvm_delete_where(this, 'true'), to_stage] | join(';\n')) }}
    {% endif %}
    {{ log(this.identifier ~ ': ' ~ new_files | length ~ ' new raw file(s) to stage, the stored ones kept', info=True) }}
    {{ return([
        'insert into ' ~ raw_files ~ ' select *, ' ~ staged_at ~ ' from (' ~ listing ~ ') as listed where '
            ~ (('raw_file in (' ~ cvm_sql_strings(new_files) ~ ')') if new_files else 'false'),
        to_stage ~ ' where ' ~ cvm_in_files(new_files)
    ] | join(';\n')) }}
{% endmacro %}

{% macro cvm_in_files(files) -%}
    {#- The raw rows of `files` (paths inside the raw directory): a literal list of the paths
        read, which DuckDB's file readers use to skip the other files. -#}
    {%- if files -%}
        {%- set paths = [] -%}
        {%- for file in files %}{% do paths.append(cvm_raw_dir() ~ '/' ~ file) %}{% endfor -%}
        raw_file_path in ({{ cvm_sql_strings(paths) }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{% macro cvm_sql_strings(values) %}
    {#- Text values as a comma-separated list of SQL string literals. -#}
    {% set literals = [] %}
    {% for value in values %}{% do literals.append(cvm_sql_string(value)) %}{% endfor %}
    {{ return(literals | join(', ')) }}
{% endmacro %}

{% macro duckdb__cvm_listed_raw_files(table_name) %}
    {#- The raw files of `table_name` now (what its raw view reads): the path inside the raw
        directory (so that a moved export is still the same files), size and modification time. -#}
    {% set source_node = graph.sources.values() | selectattr('source_name', 'equalto', 'shop')
        | selectattr('name', 'equalto', table_name) | first %}
    {% set path = duckdb__cvm_find_raw_file(cvm_raw_dir(), table_name, source_node.source_meta.file_formats) %}
    {% if path is none %}
        {{ return('select cast(null as varchar) as raw_file, cast(null as bigint) as raw_file_size, '
            ~ 'cast(null as timestamp) as raw_file_modified_at where false') }}
    {% endif %}
    {{ return('select substr(filename, ' ~ (cvm_raw_dir() | length + 2) ~ ') as raw_file, size as raw_file_size, '
        ~ 'cast(last_modified as timestamp) as raw_file_modified_at from read_blob(' ~ cvm_sql_string(path) ~ ')') }}
{% endmacro %}

{% macro cvm_compare_raw_files(listing, raw_files) %}
    {#- Each raw file listed now or recorded: 'new', 'changed' (another size or modification
        time, or gone) or 'kept'. -#}
    {% set comparison %}
        select
            coalesce(listed.raw_file, recorded.raw_file) as raw_file,
            case
                when recorded.raw_file is null then 'new'
                when
                    listed.raw_file is null
                    or listed.raw_file_size != recorded.raw_file_size
                    or listed.raw_file_modified_at != recorded.raw_file_modified_at
                    then 'changed'
                else 'kept'
            end as file_state
        from ({{ listing }}) as listed
        full outer join {{ raw_files }} as recorded
            on listed.raw_file = recorded.raw_file
        order by raw_file
    {% endset %}
    {{ return(comparison) }}
{% endmacro %}

{% macro cvm_restaging_checks(source_relation, key, new_files, dated_by, parents) %}
    {#- Counts of stored rows whose verdict a full refresh could change (see the top of this file),
        each a query of one row and one column, with what it counts. -#}
    {% set checks = [] %}
    {% set new_keys %}
        select distinct {{ cvm_clean_text(key) }} as new_key
        from {{ source_relation }}
        where {{ cvm_in_files(new_files) }}
    {% endset %}
    {% do checks.append({'what': 'new row(s) with a key already stored', 'sql':
        'select count(*) from (' ~ new_keys ~ ') as new_keys inner join ' ~ this
        ~ ' as stored on new_keys.new_key = stored.' ~ key}) %}
    {% if dated_by %}
        {#- Rows refused for a reason checked before the date keep it whatever the date. -#}
        {% set judged_before_dates = "'null_key', 'missing_value', 'unparseable_date', 'unparseable_number'" %}
        {% do checks.append({'what': 'stored row(s) on the other side of the new as-of cutoff', 'sql':
            'select count(*) from ' ~ this ~ ' where coalesce(quarantine_reason, \'\') not in ('
            ~ judged_before_dates ~ ') and (coalesce(quarantine_reason, \'\') = \'future_date\') != coalesce('
            ~ dated_by ~ ' >= ' ~ cvm_as_of_cutoff() ~ ', false)'}) %}
    {% endif %}
    {% for parent in parents %}
        {% set parent_relation = ref(parent.model) %}
        {% set accepted = 'select ' ~ parent.column ~ ' from ' ~ parent_relation ~ ' where quarantine_reason is null' %}
        {#- A parent staged by file and not staged in full since this table last was has only
            appended: the keys it accepted then it still accepts, and only refused rows need a look. -#}
        {% set parent_files = cvm_raw_files_relation(parent_relation) %}
        {% set parent_only_appended = false %}
        {% if load_relation(parent_files) is not none %}
            {% set parent_only_appended = run_query(
                'select (select min(staged_at) from ' ~ parent_files ~ ') <= (select max(staged_at) from '
                ~ cvm_raw_files_relation(this) ~ ')').columns[0].values()[0] %}
        {% endif %}
        {% set sql %}
            select count(*)
            from {{ this }} as stored
            where
                (stored.quarantine_reason = '{{ parent.reason }}' and stored.{{ parent.column }} in ({{ accepted }}))
                {% if not parent_only_appended -%}
                or (
                    coalesce(stored.quarantine_reason, 'duplicate_key') = 'duplicate_key'
                    and stored.{{ parent.column }} not in ({{ accepted }})
                )
                {%- endif %}
        {% endset %}
        {% do checks.append({'what': "stored row(s) whose " ~ parent.column ~ " was accepted or refused since", 'sql': sql}) %}
    {% endfor %}
    {{ return(checks) }}
{% endmacro %}
