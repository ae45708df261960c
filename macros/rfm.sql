{% macro cvm_rank_score(rank_column, count_column) -%}
    {#-
        A 1-5 score from a rank among `count_column` rows: 1 + floor(5 * (rank - 1) / (n - 1)),
        capped at 5, i.e. fifths by rank. Computed from integers (not percent_rank * 5) so a
        rank that falls exactly on a boundary is never pushed below it by floating point.
    -#}
    cast(least(
        5,
        1 + floor(5.0 * ({{ rank_column }} - 1) / coalesce(nullif({{ count_column }} - 1, 0), 1))
    ) as integer)
{%- endmacro %}
