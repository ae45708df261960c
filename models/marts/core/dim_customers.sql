-- Public view of int_customers_cohorted (customers with their first order): the rows are stored
-- once, below the marts, so that intermediate models can read them too (layers flow one way; doc
-- block public_views). The contract in the YAML fixes the columns and their types.
{{ config(materialized='view') }}

select * from {{ cvm_view_source(ref('int_customers_cohorted')) }}  -- noqa: AM04
