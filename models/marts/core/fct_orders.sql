-- Public view of int_orders_costed (the incremental order facts): the rows are stored once, below
-- the marts, so that intermediate models can read them too (layers flow one way; doc block
-- public_views). The contract in the YAML fixes the columns and their types.
{{ config(materialized='view') }}

select * from {{ cvm_view_source(ref('int_orders_costed')) }}  -- noqa: AM04
