{#-
    Make every raw file of the contract (the `shop` source) readable as a relation in the
    `raw` schema, so staging reads `source()` like on any other engine and unit tests can mock
    it. Runs as an on-run-start hook.
-#}
{% macro register_raw_sources() %}
    {{ return(adapter.dispatch('register_raw_sources', 'customer_value_warehouse')()) }}
{% endmacro %}

{% macro default__register_raw_sources() %}
    {#- Engines that do not read files themselves: load the raw tables with your ingestion tool. -#}
    {{ return('select 1 as raw_sources_loaded_elsewhere') }}
{% endmacro %}

{% macro duckdb__register_raw_sources() %}
    {#-
        Each file becomes a view with exactly the contract's columns, all as text: typing is
        staging's job (so an unparseable value is quarantined, not a load error), and the view's
        shape does not depend on whether the export was CSV or Parquet. Extra columns are ignored.
        Missing optional files and columns read as empty / null. A missing required file or
        column stops the run with a message naming it. A file's view also names each row's file
        (`raw_file_path`), for staging by file to read only some (macros/staging_by_file.sql).
    -#}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_dir = cvm_raw_dir() %}
    {% set statements = [] %}
    {% set schemas = [] %}
    {% set tables = graph.sources.values() | selectattr('source_name', 'equalto', 'shop') | list %}
    {% for table in tables | sort(attribute='name') %}
        {% set relation = api.Relation.create(
            database=table.database, schema=table.schema, identifier=table.identifier) %}
        {% if table.schema not in schemas %}
            {% do schemas.append(table.schema) %}
            {% do statements.append('create schema if not exists ' ~ adapter.quote(table.schema)) %}
        {% endif %}
        {% set path = duckdb__cvm_find_raw_file(raw_dir, table.name, table.source_meta.file_formats) %}
        {% set is_required = table.meta.get('required', false) %}
        {% set columns = table.columns.values() | list %}
        {% if path is none %}
            {% if is_required %}
                {% do cvm_raise_missing_raw_file(table, raw_dir, 'make build') %}
            {% endif %}
            {% set select_list = [] %}
            {% for column in columns %}
                {% do select_list.append('cast(null as varchar) as ' ~ adapter.quote(column.name)) %}
            {% endfor %}
            {% do statements.append('create or replace view ' ~ relation ~ ' as select '
                ~ select_list | join(', ') ~ ' where false') %}
        {% else %}
            {% set reader = cvm_raw_file_reader(path, table.source_meta.readers) %}
            {% set found = run_query('describe select * from ' ~ reader).columns[0].values()
                | map('lower') | list %}
            {% set missing = [] %}
            {% set select_list = [] %}
            {% for column in columns %}
                {% if column.name in found %}
                    {% do select_list.append(
                        'cast(' ~ adapter.quote(column.name) ~ ' as varchar) as ' ~ adapter.quote(column.name)) %}
                {% else %}
                    {% if column.meta.get('required', false) %}{% do missing.append(column.name) %}{% endif %}
                    {% do select_list.append('cast(null as varchar) as ' ~ adapter.quote(column.name)) %}
                {% endif %}
            {% endfor %}
            {% if missing %}
                {{ exceptions.raise_compiler_error(
                    "Raw file '" ~ path ~ "' lacks required column(s) " ~ missing | join(', ')
                    ~ "; found: " ~ found | join(', ') ~ ". Rename the columns to the contract's names "
                    ~ "(see models/staging/shop/_shop__sources.yml).") }}
            {% endif %}
            {% do statements.append('create or replace view ' ~ relation ~ ' as select '
                ~ (select_list + ['cvm_raw_file as raw_file_path']) | join(', ')
                ~ ' from ' ~ reader) %}
        {% endif %}
    {% endfor %}
    {{ return(statements | join(';\n')) }}
{% endmacro %}

{% macro spark__register_raw_sources() %}
    {#-
        As on DuckDB: a view per table with exactly the contract's columns, all as text, over an
        external table on the file or directory (`meta.spark_readers`). Spark SQL cannot list
        files, so which input each table has comes from cvm.contract.find_raw_input, the rule
        the raw gate applies too, in CVM_RAW_INPUTS (JSON, set by `python -m cvm.spark_dbt`).
    -#}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set inputs = fromjson(env_var('CVM_RAW_INPUTS', 'null')) %}
    {% if inputs is none %}
        {{ exceptions.raise_compiler_error(
            "CVM_RAW_INPUTS is not set: run dbt on Spark through `python -m cvm.spark_dbt` "
            ~ "(make build-spark does), which finds the raw files of CVM_RAW_DIR.") }}
    {% endif %}
    {% set schemas = [] %}
    {% set tables = graph.sources.values() | selectattr('source_name', 'equalto', 'shop') | list %}
    {% for table in tables | sort(attribute='name') %}
        {% set relation = api.Relation.create(schema=table.schema, identifier=table.identifier) %}
        {% set file_relation = api.Relation.create(schema=table.schema, identifier=table.identifier ~ '__files') %}
        {% if table.schema not in schemas %}
            {% do schemas.append(table.schema) %}
            {% do run_query('create schema if not exists ' ~ table.schema) %}
        {% endif %}
        {% set raw = inputs.get(table.name) %}
        {% set columns = table.columns.values() | list %}
        {% do run_query('drop table if exists ' ~ file_relation) %}
        {% if raw is none %}
            {% if table.meta.get('required', false) %}
                {% do cvm_raise_missing_raw_file(table, var('raw_dir'), 'make build-spark') %}
            {% endif %}
            {% set found = [] %}
        {% else %}
            {% set reader = table.source_meta.spark_readers[raw.file_format]
                .replace('{path}', cvm_sql_string(raw.directory))
                .replace('{glob}', cvm_sql_string(raw.glob))
                .replace('{recursive}', cvm_sql_string(raw.recursive)) %}
            {% do run_query('create table ' ~ file_relation ~ ' using ' ~ reader) %}
            {% set found = adapter.get_columns_in_relation(file_relation) | map(attribute='name') | map('lower') | list %}
        {% endif %}
        {% set missing = [] %}
        {% set select_list = [] %}
        {% for column in columns %}
            {% if column.name in found %}
                {% do select_list.append('cast(' ~ adapter.quote(column.name) ~ ' as string) as ' ~ adapter.quote(column.name)) %}
            {% else %}
                {% if raw is not none and column.meta.get('required', false) %}{% do missing.append(column.name) %}{% endif %}
                {% do select_list.append('cast(null as string) as ' ~ adapter.quote(column.name)) %}
            {% endif %}
        {% endfor %}
        {% if missing %}
            {{ exceptions.raise_compiler_error(
                "Raw file '" ~ raw.name ~ "' lacks required column(s) " ~ missing | join(', ')
                ~ "; found: " ~ found | join(', ') ~ ". Rename the columns to the contract's names "
                ~ "(see models/staging/shop/_shop__sources.yml).") }}
        {% endif %}
        {#- One statement per call: Spark SQL runs no scripts. -#}
        {% do run_query('create or replace view ' ~ relation ~ ' as select ' ~ select_list | join(', ')
            ~ (' from ' ~ file_relation if raw is not none else ' where false')) %}
    {% endfor %}
    {{ return('') }}
{% endmacro %}

{% macro cvm_raise_missing_raw_file(table, raw_dir, command) %}
    {#- The raw hook's error for a required table without a file or directory. -#}
    {{ exceptions.raise_compiler_error(
        "Required raw file '" ~ table.name ~ "." ~ table.source_meta.file_formats
        | join("' or '" ~ table.name ~ ".") ~ "' (or a directory '" ~ table.name
        ~ "/' of such files) not found in CVM_RAW_DIR='" ~ raw_dir ~ "'. Set CVM_RAW_DIR to the "
        ~ "directory of your exports, or run `" ~ command ~ "` without it to use generated demo data.") }}
{% endmacro %}

{% macro duckdb__cvm_find_raw_file(raw_dir, name, file_formats) %}
    {#-
        What the reader reads for table `name`: the file `<name>.<format>`, or the glob of a
        directory `<name>/` of files of one format at any depth (dated files or hive-style
        partitions); none when neither exists. More than one is an error (cvm.contract's
        find_raw_input, which the raw gate runs before dbt, says the same in more words).
        DuckDB's own (glob); on Spark, cvm.spark_dbt passes find_raw_input's answer.
    -#}
    {% set found = [] %}
    {% for file_format in file_formats %}
        {% for candidate in [raw_dir ~ '/' ~ name ~ '.' ~ file_format,
                             raw_dir ~ '/' ~ name ~ '/**/*.' ~ file_format] %}
            {% set hits = run_query("select file from glob(" ~ cvm_sql_string(candidate) ~ ") limit 1") %}
            {% if hits.rows | length > 0 %}{% do found.append(candidate) %}{% endif %}
        {% endfor %}
    {% endfor %}
    {% if found | length > 1 %}
        {{ exceptions.raise_compiler_error(
            "Both " ~ found | join(' and ') ~ " exist; keep one so it is clear which to load.") }}
    {% endif %}
    {{ return(found[0] if found else none) }}
{% endmacro %}

{% macro cvm_raw_dir() %}
    {#- The raw directory (var raw_dir, CVM_RAW_DIR) without a trailing slash. -#}
    {% set raw_dir = var('raw_dir') | string %}
    {{ return(raw_dir[:-1] if raw_dir.endswith('/') else raw_dir) }}
{% endmacro %}

{% macro cvm_raw_file_reader(path, readers) %}
    {#- The contract's reader SQL for the file's format, `{path}` being the quoted path or glob,
        with each row's file in the column `cvm_raw_file` (not a name an export would use). -#}
    {{ return(readers[path.split('.')[-1]].replace(
        '{path}', cvm_sql_string(path) ~ ", filename = 'cvm_raw_file'")) }}
{% endmacro %}

{% macro cvm_sql_string(value) %}
    {{ return("'" ~ (value | string).replace("'", "''") ~ "'") }}
{% endmacro %}
