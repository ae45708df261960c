{% macro cvm_nps_class(score) -%}
    {#- The one definition of an NPS answer's class: promoter 9-10, passive 7-8, detractor 0-6. -#}
    case
        when {{ score }} >= 9 then 'promoter'
        when {{ score }} >= 7 then 'passive'
        when {{ score }} >= 0 then 'detractor'
    end
{%- endmacro %}
