{#- The one place the analysis date is decided; everything else reads it from here. -#}
{%- set configured = var('as_of_date') | string | trim -%}
{%- if configured and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', configured) -%}
    {{ exceptions.raise_compiler_error(
        "CVM_AS_OF_DATE (var as_of_date) must be a date written YYYY-MM-DD, got '" ~ configured ~ "'.") }}
{%- endif -%}
{%- if configured -%}
    {#- Raises a clear ValueError for impossible dates such as 2024-02-30. -#}
    {%- do modules.datetime.datetime.strptime(configured, '%Y-%m-%d') -%}
{%- endif -%}

with

source as (

    select ordered_at from {{ source('shop', 'orders') }}

),

order_dates as (

    select {{ cvm_parse_date('ordered_at') }} as order_date
    from source

),

last_order as (

    select max(order_date) as last_order_date
    from order_dates
    -- A typo such as 2062 for 2026 must not move "today" into the future.
    where order_date <= cast({{ dbt.current_timestamp() }} as date)

),

as_of as (

    select
        {% if configured -%}
            cast('{{ configured }}' as date) as as_of_date,
            'CVM_AS_OF_DATE' as as_of_date_source
        {%- else -%}
            coalesce(last_order_date, cast({{ dbt.current_timestamp() }} as date)) as as_of_date,
            case
                when last_order_date is null then 'build_date'
                else 'last_order_date'
            end as as_of_date_source
        {%- endif %}
    from last_order

),

final as (

    select
        as_of_date,
        as_of_date_source,
        cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as {{ dbt.type_timestamp() }}) as as_of_cutoff_at
    from as_of

)

select * from final
