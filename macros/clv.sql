{% macro cvm_gamma_gamma_expected_spend(x, m, p, q, v) -%}
    {#- Gamma-Gamma conditional expected spend per transaction, E[M | x, m] (FHL note 025 eq. 5):
        p (v + x m) / (p x + q - 1); the population mean p v / (q - 1) when x = 0. The same
        formula as cvm.clv.gamma_gamma.conditional_expected_spend, which a test checks. -#}
    ({{ p }} * ({{ v }} + {{ x }} * coalesce({{ m }}, 0)) / ({{ p }} * {{ x }} + {{ q }} - 1))
{%- endmacro %}
