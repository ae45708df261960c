{#- The order facts and the monthly tier history are incremental (doc block `incremental_orders`):
    an incremental run deletes what it reprocesses (a pre-hook) and appends the rebuilt rows
    after the last row it kept. Deleting first, rather than merging on a key, also removes
    source rows deleted inside the reprocessed window. -#}

{% macro cvm_reprocess_orders_from() -%}
    {#- First order date an incremental run rebuilds: `incremental_lookback_days` before the
        as-of date, or the var `reprocess_orders_from` when it is earlier (make build sets it
        to the earliest order the source changed at; a user may set it to backfill). -#}
    {%- set lookback_days = var('incremental_lookback_days') | int -%}
    {%- set reprocess_from = var('reprocess_orders_from') -%}
    {%- if reprocess_from -%}
        {%- set valid = modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', reprocess_from | string) -%}
        {%- if not valid -%}
            {{ exceptions.raise_compiler_error(
                "var reprocess_orders_from must be a date YYYY-MM-DD, got '" ~ reprocess_from ~ "'") }}
        {%- endif -%}
    {%- endif -%}
    {%- set lookback_start = dbt.dateadd('day', -lookback_days, 'as_of_date') -%}
    (
        select
            {% if reprocess_from -%}
                least(cast({{ lookback_start }} as date), cast('{{ reprocess_from }}' as date))
            {%- else -%}
                cast({{ lookback_start }} as date)
            {%- endif %}
        from {{ ref('base_shop__as_of_date') }}
    )
{%- endmacro %}

{% macro cvm_delete_reprocessed_orders() -%}
    {#- Pre-hook of an incremental order fact: drop the rows the run rebuilds. -#}
    {%- if is_incremental() -%}
        delete from {{ this }} where order_date >= {{ cvm_reprocess_orders_from() }}
    {%- endif -%}
{%- endmacro %}

{% macro cvm_after_kept_rows(row_date='order_date') -%}
    {#- Filter of an incremental run's new rows: `row_date` (an expression on the rows read)
        after the last `order_date` the pre-hook kept; no filter on a first run or a full
        refresh. -#}
    {%- if is_incremental() -%}
        {{ row_date }} > coalesce((select max(order_date) from {{ this }}), cast('0001-01-01' as date))
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}

{% macro cvm_delete_reprocessed_tier_months() -%}
    {#- Pre-hook of the monthly tier history: drop the latest `tier_history_reprocess_months`
        stored months (the as-of month fills up; the month before it closes), the months of
        the reprocessed orders, and any month after the as-of month (an earlier as-of date);
        all of it when the value basis changed (tiers of two bases do not compare). -#}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            value_basis is distinct from (select value_basis from {{ ref('int_value_basis_chosen') }})
            or period_month >= (
                select
                    least(
                        cast({{ dbt.dateadd('month', 1 - (var('tier_history_reprocess_months') | int),
                            'max(period_month)') }} as date),
                        cast({{ dbt.date_trunc('month', cvm_reprocess_orders_from()) }} as date)
                    )
                from {{ this }}
            )
    {%- endif -%}
{%- endmacro %}
