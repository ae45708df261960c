{#-
    The quarantine reason of a checked staging row: its own issue (`row_issue`), or
    'duplicate_key' for every further copy of a key among the rows without an issue. Which copy
    is kept is decided by `order_by`, so a rerun keeps the same one.
-#}
{% macro cvm_quarantine_reason(key, order_by) -%}
    coalesce(
        row_issue,
        case
            when row_number() over (
                partition by {{ key }}, row_issue
                order by {{ order_by }}
            ) > 1 then 'duplicate_key'
        end
    )
{%- endmacro %}
