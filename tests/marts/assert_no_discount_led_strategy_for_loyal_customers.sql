-- Loyal, price-insensitive customers are rewarded with recognition and service, never with a
-- price cut: fails with one row per such customer whose recommendation includes a discount-led
-- strategy (primary or companion).
with

actions as (

    select * from {{ ref('next_best_actions') }}

),

playbook as (

    select * from {{ ref('strategy_playbook') }}

),

final as (

    select
        actions.customer_id,
        actions.strategy_combination
    from actions
    inner join playbook
        on playbook.strategy in (
            actions.primary_strategy, actions.companion_strategy_1, actions.companion_strategy_2
        )
    where actions.is_loyal_price_insensitive and playbook.is_discount_led

)

select * from final
