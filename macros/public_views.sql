{% macro cvm_view_source(relation) -%}
    {#- What a public view selects from (doc block public_views). -#}
    {{ return(adapter.dispatch('cvm_view_source', 'customer_value_warehouse')(relation)) }}
{%- endmacro %}

{% macro default__cvm_view_source(relation) -%}
    {#- The relation without its database when it is this target's own, so the view still
        resolves when the file is attached under another name; a relation of another database
        (slim CI deferring an unmodified parent to production) keeps its database. -#}
    {{ return(relation.include(database=(relation.database != target.database))) }}
{%- endmacro %}

{% macro spark__cvm_view_source(relation) -%}
    {#- Spark names a relation by schema and table only. -#}
    {{ return(relation) }}
{%- endmacro %}
