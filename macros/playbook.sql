{#- Small text helpers for the retention playbook's plain-word reasons. -#}

{% macro cvm_percent_text(expression) -%}
    {#- 0.2249 -> '22' (a share as a whole percent, as text). -#}
    cast(cast(round({{ expression }} * 100) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro cvm_any_uses(column, relations) -%}
    {#- True when any of the chosen strategies' playbook rows sets the threshold `column`. -#}
    (
        {%- for relation in relations %}
            {{ relation }}.{{ column }} is not null{{ ' or' if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}
