"""Running expectation suites on pandas batches with Great Expectations 1.x, and reporting.

GX's SQL datasource cannot read DuckDB (its engine closes the connection before fetching), so
every gate reads with DuckDB and hands GX pandas frames: whole small tables, large ones in
batches. Each expectation carries its severity in ``meta``; a gate fails on a critical one.
Data Docs are written to a build directory, never to the repository.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from cvm import PROJECT_DIR

THRESHOLDS_FILE = PROJECT_DIR / "gx" / "thresholds.yml"
CRITICAL, WARNING = "critical", "warning"
SAMPLE_SIZE = 5


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.safe_load(handle)


def import_gx() -> Any:
    """great_expectations, imported without the warning its optional pyspark support prints
    on every run under pandas 3 (GX does not use Spark here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        import great_expectations as gx
        import great_expectations.expectations  # the gates import their expectation classes
    return gx


def readable(value: Any, unit: str | None = None) -> str:
    """A number or date as people read it: shares as percentages, counts with separators."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (pd.Timestamp, dt.date)):
        return str(value)[:10]
    if isinstance(value, (int, float)) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if unit == "share":
            return f"{number:.2%}"
        if isinstance(number, int) or float(number).is_integer():
            return f"{int(number):,}"
        return f"{number:,.4g}"
    return repr(value)


def expected_range(bounds: dict[str, Any], unit: str | None) -> str:
    low, high = bounds.get("min_value"), bounds.get("max_value")
    if low is not None and high is not None:
        return f"between {readable(low, unit)} and {readable(high, unit)}"
    if low is not None:
        return f"at least {readable(low, unit)}"
    if high is not None:
        return f"at most {readable(high, unit)}"
    if "value_set" in bounds:
        return f"exactly {sorted(bounds['value_set'])}"
    if "column_set" in bounds:
        return f"the columns {list(bounds['column_set'])}"
    return ""


@dataclass(frozen=True)
class Finding:
    """One expectation that did not hold on one batch, and what the user can do about it."""

    subject: str  # the raw file or the mart
    expectation: str
    column: str | None
    severity: str
    detail: str
    samples: tuple[Any, ...] = ()
    hint: str = ""

    def line(self) -> str:
        where = f"{self.subject}.{self.column}" if self.column else self.subject
        samples = f"; sample bad values: {list(self.samples)}" if self.samples else ""
        hint = f" What to do: {self.hint}" if self.hint else ""
        return f"[{self.severity}] {where}: {self.expectation} ({self.detail}){samples}.{hint}"


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
        gx = import_gx()
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
        # The validation results and suites validated since the Data Docs were last written
        # (None: nothing validated since).
        self._pages: list[Any] | None = None

    def validate(
        self, gate: str, batches: Iterable[Batch], result: GateResult, *, write_docs: bool = True
    ) -> GateResult:
        """Validate every batch (a suite and checkpoint per batch), collect findings, then
        (unless ``write_docs`` is false: a gate validating in parts calls write_docs at its
        end) write the batches' pages and the index of the Data Docs site once."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
        )

        gx = self._gx
        if self._pages is None:
            self._pages = []
        pages = self._pages
        for batch in batches:
            if not batch.expectations:
                continue
            self._counter += 1
            # GX stores each name as a path of its Data Docs site: no separators in it (a raw
            # table's directory is a subject like "orders/ (31 .csv files)").
            subject = re.sub(r"[^A-Za-z0-9_.-]+", "_", batch.subject).strip("_")
            name = f"{gate}.{subject}.{self._counter}"
            asset = self._source.add_dataframe_asset(name)
            definition = asset.add_batch_definition_whole_dataframe(name)
            suite = self.context.suites.add(gx.ExpectationSuite(name=name))
            for expectation in batch.expectations:
                suite.add_expectation(expectation)
            validation = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=definition, suite=suite)
            )
            checkpoint = self.context.checkpoints.add(
                gx.Checkpoint(
                    name=name,
                    validation_definitions=[validation],
                    result_format={
                        "result_format": "SUMMARY",
                        "partial_unexpected_count": SAMPLE_SIZE,
                    },
                )
            )
            run = checkpoint.run(batch_parameters={"dataframe": batch.frame})
            pages += [*run.run_results, ExpectationSuiteIdentifier(name=name)]
            for validation_result in run.run_results.values():
                for outcome in validation_result.results:
                    result.expectations_run += 1
                    if not outcome.success:
                        result.findings.append(finding(batch.subject, outcome))
        if write_docs:
            self.write_docs(result)
        return result

    def write_docs(self, result: GateResult) -> None:
        """Write the pages validated since the last call and the site's index, once: GX's
        own action and every write render the whole site again (per file, the raw gate took
        11.6 s at 1M customers; with one write, 9.5 s)."""
        if self.docs_dir is not None and self._pages is not None:
            self.context.build_data_docs(site_names=["cvm"], resource_identifiers=self._pages)
            result.docs_index = self.docs_dir / "index.html"
        self._pages = None


def finding(subject: str, outcome: Any) -> Finding:
    """A failed GX outcome in words: the observed value against the expected range when the
    batch is one row of facts (a share, a count), else how many rows broke the rule."""
    config = outcome.expectation_config
    details = outcome.result or {}
    meta = config.meta or {}
    unit = meta.get("unit")
    kwargs = config.kwargs
    expected = expected_range(kwargs, unit)
    samples: tuple[Any, ...] = tuple(details.get("partial_unexpected_list") or ())[:SAMPLE_SIZE]
    if outcome.exception_info and outcome.exception_info.get("raised_exception"):
        detail = f"error: {outcome.exception_info.get('exception_message')}"
    elif details.get("unexpected_count") is not None and details.get("element_count") == 1:
        observed = samples[0] if samples else None
        detail = f"observed {readable(observed, unit)}; expected {expected}"
        samples = ()
    elif details.get("unexpected_count") is not None:
        detail = (
            f"{details['unexpected_count']:,} of {details.get('element_count', 0):,} rows; "
            f"expected {expected}"
        )
    else:
        detail = f"observed {readable(details.get('observed_value'), unit)}; expected {expected}"
    return Finding(
        subject=subject,
        expectation=config.type,
        column=kwargs.get("column"),
        severity=meta.get("severity", CRITICAL),
        detail=detail,
        samples=samples,
        hint=meta.get("hint", ""),
    )
