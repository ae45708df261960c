{% macro cvm_view_source(relation) -%}
    {#- What a public view selects from (doc block public_views): the relation without its
        database when it is this target's own, so the view still resolves when the file is
        attached under another name; a relation of another database (slim CI deferring an
        unmodified parent to production) keeps its database. -#}
    {{ relation.include(database=(relation.database != target.database)) }}
{%- endmacro %}
