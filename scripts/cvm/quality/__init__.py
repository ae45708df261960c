"""Great Expectations gates: the raw files before dbt runs, the marts before publishing.

Thresholds and severities live in ``gx/thresholds.yml``; see the README's data-quality section.
"""

from cvm.quality.runner import GateResult, GxRunner, load_thresholds

__all__ = ["GateResult", "GxRunner", "load_thresholds"]
