"""Running expectation suites on pandas batches with Great Expectations 1.x, and reporting.

GX's SQL datasource cannot read DuckDB (its engine closes the connection before fetching), so
every gate reads with DuckDB and hands GX pandas frames: whole small tables, large ones in
batches. Each expectation carries its severity in ``meta``; a gate fails on a critical one.
Data Docs are written to a build directory, never to the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

THRESHOLDS_FILE = Path(__file__).resolve().parents[3] / "gx" / "thresholds.yml"
CRITICAL, WARNING = "critical", "warning"
SAMPLE_SIZE = 5


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.safe_load(handle)


@dataclass(frozen=True)
class Finding:
    """One expectation that did not hold on one batch."""

    subject: str  # the raw file or the mart
    expectation: str
    column: str | None
    severity: str
    detail: str
    samples: tuple[Any, ...] = ()

    def line(self) -> str:
        where = f"{self.subject}.{self.column}" if self.column else self.subject
        samples = f"; sample bad values: {list(self.samples)}" if self.samples else ""
        return f"[{self.severity}] {where}: {self.expectation} ({self.detail}){samples}"


@dataclass
class GateResult:
    gate: str
    findings: list[Finding] = field(default_factory=list)
    expectations_run: int = 0
    docs_index: Path | None = None

    @property
    def critical(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == CRITICAL]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def passed(self) -> bool:
        return not self.critical

    def report(self) -> str:
        status = "passed" if self.passed else "FAILED"
        lines = [
            f"{self.gate} gate {status}: {self.expectations_run} expectations, "
            f"{len(self.critical)} critical and {len(self.warnings)} warning findings"
        ]
        lines += [f"  {finding.line()}" for finding in self.findings]
        if self.docs_index is not None:
            lines.append(f"  Data Docs: {self.docs_index.as_uri()}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Batch:
    """A pandas frame to validate, with the expectations that apply to it."""

    subject: str
    frame: pd.DataFrame
    expectations: Sequence[Any]  # great_expectations.expectations.Expectation


class GxRunner:
    """An ephemeral GX context whose Data Docs site is ``docs_dir``."""

    def __init__(self, docs_dir: Path | None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self._gx = gx
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False),
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self.context.add_data_docs_site(
                site_name="cvm",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        self._source = self.context.data_sources.add_pandas("cvm")
        self._counter = 0

    def validate(self, gate: str, batches: Iterable[Batch], result: GateResult) -> GateResult:
        """Validate every batch (a suite and checkpoint per batch) and collect findings."""
        gx = self._gx
        for batch in batches:
            if not batch.expectations:
                continue
            self._counter += 1
            name = f"{gate}.{batch.subject}.{self._counter}"
            asset = self._source.add_dataframe_asset(name)
            definition = asset.add_batch_definition_whole_dataframe(name)
            suite = self.context.suites.add(gx.ExpectationSuite(name=name))
            for expectation in batch.expectations:
                suite.add_expectation(expectation)
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=definition, suite=suite)
            )
            actions = [gx.checkpoint.UpdateDataDocsAction(name="docs")] if self.docs_dir else []
            checkpoint = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[validation],
                    actions=actions,
                    result_format={
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": SAMPLE_SIZE,
                    },
                )
            )
            run = checkpoint.run(batch_parameters={"dataframe": batch.frame})
            for validation_result in run.run_results.values():
                for outcome in validation_result.results:
                    result.expectations_run += 1
                    if not outcome.success:
                        result.findings.append(finding(batch.subject, outcome))
        if self.docs_dir is not None:
            result.docs_index = self.docs_dir / "index.html"
        return result


def finding(subject: str, outcome: Any) -> Finding:
    config = outcome.expectation_config
    details = outcome.result or {}
    if outcome.exception_info and outcome.exception_info.get("raised_exception"):
        detail = f"error: {outcome.exception_info.get('exception_message')}"
    elif details.get("unexpected_count") is not None:
        detail = (
            f"{details['unexpected_count']:,} of {details.get('element_count', 0):,} values, "
            f"{details.get('unexpected_percent') or 0:.3f} %"
        )
    else:
        detail = f"observed {details.get('observed_value')!r}"
    kwargs = config.kwargs
    bounds = {k: kwargs[k] for k in ("min_value", "max_value", "value_set", "regex") if k in kwargs}
    if "mostly" in kwargs:
        bounds["mostly"] = kwargs["mostly"]
    if bounds:
        detail += f"; expected {bounds}"
    return Finding(
        subject=subject,
        expectation=config.type,
        column=kwargs.get("column"),
        severity=(config.meta or {}).get("severity", CRITICAL),
        detail=detail,
        samples=tuple(details.get("partial_unexpected_list") or ())[:SAMPLE_SIZE],
    )
