{#-
    dbt.safe_cast promises null for a value that does not convert, but dbt-duckdb 1.11 falls
    back to a plain `cast`, which raises. DuckDB has `try_cast`; the project's dispatch config
    (dbt_project.yml) makes dbt.safe_cast use this implementation on DuckDB.
-#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
