"""What the project's Python reads from dbt's manifest about how models relate."""

from __future__ import annotations

from typing import Any


def public_view(node: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The public view over an intermediate table (macro cvm_view_source, doc block
    public_views), or None: a view with an enforced contract that selects every column of
    ``node`` and nothing else. Its contract and column docs are the table's too."""
    for child_id in manifest.get("child_map", {}).get(node["unique_id"], []):
        child = manifest["nodes"].get(child_id, {})
        if (
            child.get("config", {}).get("materialized") == "view"
            and child["config"].get("contract", {}).get("enforced")
            and child["depends_on"]["nodes"] == [node["unique_id"]]
            and any(m.endswith(".cvm_view_source") for m in child["depends_on"]["macros"])
        ):
            return child
    return None
