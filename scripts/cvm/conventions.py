"""`make conventions`: the project's house rules, checked on dbt's manifest (no warehouse needed).

Rules, for every model and snapshot (relations users read):
- it has a description, and every column declared in YAML has one;
- it has a primary-key test: `unique_combination_of_columns`, or `unique` and `not_null` (a test
  or a constraint) on one column; an intermediate table behind a public view has it on the view
  (the same rows: testing both would scan them twice);
- a model under models/marts/ has an enforced contract;
- its name says its layer: staging names start with stg_/base_, intermediate names with int_;
  a mart carries no other layer's prefix, since marts are named for what they hold (STYLE.md):
  fct_/dim_ for facts and dimensions, a plain name (customer_value) for a wide report mart;
- layers read downwards only: a staging model reads no intermediate model or mart, an
  intermediate model reads no mart.

Documented exceptions live in conventions_exceptions.yml at the repository root: one entry per
model and rule, each with a reason. An exception that no longer matches a violation is itself
reported, so the file cannot rot. Coverage (model and column documentation, key tests, any test)
is printed per layer; marts are held to 100% by the rules above.

    python -m cvm.conventions [--manifest target/manifest.json] [--exceptions FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cvm import PROJECT_DIR
from cvm.manifest import public_view

DEFAULT_MANIFEST = PROJECT_DIR / "target" / "manifest.json"
DEFAULT_EXCEPTIONS = PROJECT_DIR / "conventions_exceptions.yml"
# The prefixes a layer's names must carry; a mart may carry none of them.
PREFIXES = {"staging": ("stg_", "base_"), "intermediate": ("int_",)}
RULES = ("description", "column_descriptions", "primary_key_test", "contract", "naming", "layers")
# Layers read downwards only (STYLE.md): a model reads its own layer and those below it.
LAYER_ORDER = {"staging": 0, "intermediate": 1, "marts": 2}
LAYERS = ("staging", "intermediate", "marts", "snapshots")


@dataclass(frozen=True)
class Violation:
    model: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.model}: {self.rule}: {self.detail}"


def load_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def relations(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Models and snapshots of this project (not of installed packages)."""
    project = manifest["metadata"].get("project_name")
    return sorted(
        (
            n
            for n in manifest["nodes"].values()
            if n["resource_type"] in {"model", "snapshot"}
            and (project is None or n["package_name"] == project)
        ),
        key=lambda n: n["name"],
    )


def layer(node: dict[str, Any]) -> str:
    """staging / intermediate / marts from the folder under models/; snapshots apart."""
    if node["resource_type"] == "snapshot":
        return "snapshots"
    parts = Path(node["original_file_path"]).parts
    return parts[1] if len(parts) > 2 and parts[0] == "models" else "other"


def tests_by_node(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Generic and singular tests of each node (a test of two models counts for both)."""
    tests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for test in manifest["nodes"].values():
        if test["resource_type"] == "test":
            for node_id in set(test["depends_on"]["nodes"]):
                tests[node_id].append(test)
    return tests


def has_primary_key_test(node: dict[str, Any], tests: Iterable[dict[str, Any]]) -> bool:
    """A unique combination of columns, or one column both unique and not null."""
    unique: set[str] = set()
    not_null: set[str] = set()
    for test in tests:
        meta = test.get("test_metadata") or {}
        if test.get("attached_node") not in (None, node["unique_id"]):
            continue  # e.g. a relationships test attached to another model
        if meta.get("name") == "unique_combination_of_columns":
            return True
        column = test.get("column_name") or meta.get("kwargs", {}).get("column_name")
        if meta.get("name") == "unique" and column:
            unique.add(column.lower())
        if meta.get("name") == "not_null" and column:
            not_null.add(column.lower())
    for name, column in node["columns"].items():
        kinds = {c["type"] for c in column.get("constraints", [])}
        if "primary_key" in kinds:
            return True
        if "not_null" in kinds:
            not_null.add(name.lower())
    for constraint in node.get("constraints", []):
        if constraint["type"] == "primary_key":
            return True
    return bool(unique & not_null)


def tested_rows(
    node: dict[str, Any], tests: dict[str, list[dict[str, Any]]], manifest: dict[str, Any]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The node and its tests, and its public view and the view's (cvm.manifest.public_view):
    the view shows the table's rows, so a test on either tests them."""
    view = public_view(node, manifest)
    return [(n, tests[n["unique_id"]]) for n in (node, view) if n is not None]


def key_tested(
    node: dict[str, Any], tests: dict[str, list[dict[str, Any]]], manifest: dict[str, Any]
) -> bool:
    return any(has_primary_key_test(n, t) for n, t in tested_rows(node, tests, manifest))


def check(manifest: dict[str, Any]) -> list[Violation]:
    tests = tests_by_node(manifest)
    nodes = manifest["nodes"]
    violations = []
    for node in relations(manifest):
        name, node_layer = node["name"], layer(node)
        if not node["description"].strip():
            violations.append(Violation(name, "description", "the model has no description"))
        undocumented = sorted(c for c, col in node["columns"].items() if not col["description"])
        if undocumented:
            violations.append(
                Violation(name, "column_descriptions", "undocumented: " + ", ".join(undocumented))
            )
        if not key_tested(node, tests, manifest):
            violations.append(
                Violation(
                    name,
                    "primary_key_test",
                    "no unique_combination_of_columns, nor unique + not_null on one column",
                )
            )
        if node_layer == "marts" and not node["config"]["contract"]["enforced"]:
            violations.append(Violation(name, "contract", "a mart without an enforced contract"))
        naming = naming_problem(name, node_layer)
        if naming:
            violations.append(Violation(name, "naming", naming))
        above = layers_read_above(node, nodes)
        if above:
            violations.append(
                Violation(name, "layers", f"{node_layer} reads a layer above: {', '.join(above)}")
            )
    return violations


def layers_read_above(node: dict[str, Any], nodes: dict[str, Any]) -> list[str]:
    """The parents of ``node`` in a higher layer than its own, as `layer model` strings."""
    own = LAYER_ORDER.get(layer(node))
    if own is None:
        return []
    parents = (nodes[i] for i in node["depends_on"]["nodes"] if i in nodes)
    return sorted(
        f"{layer(parent)} {parent['name']}"
        for parent in parents
        if LAYER_ORDER.get(layer(parent), -1) > own
    )


def naming_problem(name: str, node_layer: str) -> str | None:
    """Why the name does not say its layer, or None: staging and intermediate names carry their
    layer's prefix, and a mart's name carries no other layer's (a reader takes an int_ name for
    an intermediate model, so an int_ mart misleads)."""
    own = PREFIXES.get(node_layer)
    if own and not name.startswith(own):
        return f"{node_layer} names start with {' or '.join(own)}"
    if node_layer == "marts":
        foreign = [p for prefixes in PREFIXES.values() for p in prefixes if name.startswith(p)]
        if foreign:
            return f"a mart named with the {foreign[0]} prefix of another layer"
    return None


def load_exceptions(path: Path) -> dict[tuple[str, str], str]:
    """{(model, rule): reason}; every entry needs a known rule and a reason."""
    if not path.exists():
        return {}
    entries = (yaml.safe_load(path.read_text()) or {}).get("exceptions") or []
    exceptions = {}
    for entry in entries:
        model, rule, reason = entry.get("model"), entry.get("rule"), entry.get("reason")
        if rule not in RULES or not model or not str(reason or "").strip():
            raise ValueError(f"{path.name}: needs model, rule (one of {RULES}), reason: {entry}")
        exceptions[(model, rule)] = reason
    return exceptions


def coverage(manifest: dict[str, Any]) -> list[tuple[str, int, float, float, float, float]]:
    """Per layer: models, % described, % of YAML columns described, % key-tested, % tested."""
    tests = tests_by_node(manifest)
    by_layer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in relations(manifest):
        by_layer[layer(node)].append(node)
    by_layer["all"] = relations(manifest)

    def pct(part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else 100.0

    rows = []
    for name in [*LAYERS, "other", "all"]:
        nodes = by_layer.get(name)
        if not nodes:
            continue
        columns = [c for n in nodes for c in n["columns"].values()]
        rows.append(
            (
                name,
                len(nodes),
                pct(sum(bool(n["description"].strip()) for n in nodes), len(nodes)),
                pct(sum(bool(c["description"].strip()) for c in columns), len(columns)),
                pct(sum(key_tested(n, tests, manifest) for n in nodes), len(nodes)),
                pct(
                    sum(any(t for _, t in tested_rows(n, tests, manifest)) for n in nodes),
                    len(nodes),
                ),
            )
        )
    return rows


def format_coverage(rows: Sequence[tuple[str, int, float, float, float, float]]) -> str:
    header = f"{'layer':<13}{'models':>7}{'doc %':>8}{'col doc %':>11}{'key test %':>12}"
    lines = [header + f"{'tested %':>10}"]
    for name, n, doc, col_doc, key, tested in rows:
        lines.append(f"{name:<13}{n:>7}{doc:>8.1f}{col_doc:>11.1f}{key:>12.1f}{tested:>10.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--exceptions", type=Path, default=DEFAULT_EXCEPTIONS)
    args = parser.parse_args(argv)

    manifest = load_manifest(args.manifest)
    exceptions = load_exceptions(args.exceptions)
    rows = coverage(manifest)
    print(format_coverage(rows))

    violations = check(manifest)
    found = {(v.model, v.rule) for v in violations}
    failing = [v for v in violations if (v.model, v.rule) not in exceptions]
    stale = sorted(key for key in exceptions if key not in found)
    print(f"\n{len(exceptions)} documented exception(s) in {args.exceptions.name}")
    if stale:
        print("Exceptions that no longer match a violation (remove them):", file=sys.stderr)
        for model, rule in stale:
            print(f"  {model}: {rule}", file=sys.stderr)
    if failing:
        print(f"Convention violations ({len(failing)}):", file=sys.stderr)
        for violation in failing:
            print(f"  {violation}", file=sys.stderr)
    below = [row for row in rows if row[0] == "marts" and min(row[2:5]) < 100.0]
    if below:
        print("Marts must be 100% documented and key-tested (no exceptions).", file=sys.stderr)
    if failing or stale or below:
        return 1
    print("Conventions: all models pass.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
