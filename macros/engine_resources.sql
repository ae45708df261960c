{% macro cvm_engine_resources() %}
    {#- on-run-start: what the engine may use on this machine (README, "Memory and threads"). -#}
    {{ return(adapter.dispatch('cvm_engine_resources', 'customer_value_warehouse')()) }}
{% endmacro %}

{% macro default__cvm_engine_resources() %}
    {#- Other engines size themselves (cluster or session configuration). -#}
{% endmacro %}

{% macro duckdb__cvm_engine_resources() %}
    {#- DuckDB's memory_limit, threads and temp_directory from CVM_DUCKDB_MEMORY_LIMIT (e.g.
        12GiB), CVM_DUCKDB_THREADS and CVM_DUCKDB_TEMP_DIRECTORY; unset ones keep DuckDB's
        defaults (80% of RAM, one thread per core, <database>.tmp). Global settings: every node
        of the run shares them. `make build` sets the memory limit to 60% of RAM by default,
        leaving room for the Python models' pandas frames and dbt itself. -#}
    {%- set wanted = {
        'memory_limit': env_var('CVM_DUCKDB_MEMORY_LIMIT', ''),
        'threads': env_var('CVM_DUCKDB_THREADS', ''),
        'temp_directory': env_var('CVM_DUCKDB_TEMP_DIRECTORY', ''),
    } -%}
    {%- if execute -%}
        {%- for name, value in wanted.items() if value | trim -%}
            {%- do run_query("set global " ~ name ~ " = '" ~ (value | trim | replace("'", "''")) ~ "'") -%}
        {%- endfor -%}
        {%- set now = run_query(
            "select current_setting('memory_limit'), current_setting('threads'), "
            ~ "current_setting('temp_directory')"
        ).rows[0] -%}
        {{ log("DuckDB resources: memory_limit " ~ now[0] ~ ", threads " ~ now[1]
            ~ ", temp_directory " ~ (now[2] or "(default)"), info=True) }}
    {%- endif -%}
{% endmacro %}
