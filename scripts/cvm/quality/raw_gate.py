"""The raw gate: Great Expectations on the raw files, before dbt runs.

Staging quarantines bad *rows* one by one; this gate stops a build whose *files* are bad as a
whole: a required file or column missing, too many nulls, unparseable values, duplicate keys
or unknown statuses, values out of range, dates beyond the as-of date, or an order volume far
outside its recent band (a half-loaded export). Everything about the files (which files and
columns, which are required, the keys, how a file is found and read, how a value parses) comes
from the raw contract (:mod:`cvm.contract`), as the dbt hook and staging read it. PII columns
(``meta.pii``) are never read, so they never reach a Data Docs page.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cvm import contract
from cvm.quality.runner import CRITICAL, SAMPLE_SIZE, Batch, Finding, GateResult, GxRunner

CONTRACT = contract.SOURCES_FILE.relative_to(contract.PROJECT_DIR)  # as the hints name it
HINTS = {  # what the user can do about each kind of finding
    "required_file_present": (
        "put the file in CVM_RAW_DIR under this name (the README's 'Your own data' maps common "
        "export shapes to the contract)"
    ),
    "columns": f"rename the export's columns to the contract's names ({CONTRACT})",
    "readable_file": "export the file again (CSV in UTF-8, or Parquet)",
    "row_count": "the file has a header and no rows: export it again, or leave the file out",
    "repeated_header_rows": (
        "several exports were concatenated with their headers; remove the repeated header lines"
    ),
    "unique_key_rate": (
        "ids must be unique within a file; this many repeats suggests a wrong id column or an "
        "export appended to itself (staging keeps one copy of each and quarantines the rest)"
    ),
    "latest": (
        "the export holds dates after today: check the date format and time zone, or the "
        "as-of date (CVM_AS_OF_DATE)"
    ),
    "rows_per_day": (
        "the latest days look half-loaded: export again, or set CVM_AS_OF_DATE to the last "
        "complete day"
    ),
    "null": "fill in the column or leave such rows out; staging quarantines rows without it",
    "unparseable timestamps": (
        "write dates as YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (e.g. with python -m cvm.importers, "
        "or a cast in your export query)"
    ),
    "unparseable numbers": (
        "write numbers with a dot for decimals and no thousands separators or currency signs"
    ),
    "out of range": "check the unit (cents or currency units?) and the values shown",
    "not allowed": "map the export's values to the contract's",
}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def as_text(name: str) -> str:
    """A column as staging sees it: text (the hook casts every column; Parquet keeps types)."""
    return f"cast({quote(name)} as varchar)"


def run_raw_gate(
    raw_dir: Path,
    as_of: dt.date | None,
    thresholds: dict[str, Any],
    runner: GxRunner,
    raw_contract: contract.Contract | None = None,
) -> GateResult:
    """Validate every raw file of the contract. ``as_of`` (CVM_AS_OF_DATE) ends the daily-volume
    window (without it, the last day with rows does); dates may not pass the later of the
    as-of date and today by more than the tolerance."""
    settings = thresholds["raw"]
    result = GateResult("raw")
    raw_contract = raw_contract or contract.load()
    with duckdb.connect() as con:
        for table in raw_contract.tables:
            name = table.name
            try:
                raw = raw_contract.find_raw_input(raw_dir, name)
            except contract.AmbiguousRawFile as error:
                result.findings.append(unreadable(name, str(error)))
                continue
            if raw is None:
                if table.required:
                    names = " or ".join(f"{name}.{f}" for f in raw_contract.file_formats)
                    names += f" (or a directory {name}/ of such files)"
                    result.findings.append(
                        Finding(
                            name,
                            "required_file_present",
                            None,
                            CRITICAL,
                            f"no {names} in {raw_dir}",
                            hint=HINTS["required_file_present"],
                        )
                    )
                continue
            config = settings["tables"].get(name, {})
            first_new = len(result.findings)
            try:  # sniffing the dialect reads the file too: an encoding error surfaces there
                problems = {f.relative_to(raw_dir).as_posix(): file_problem(f) for f in raw.files}
                problems = {file: problem for file, problem in problems.items() if problem}
                result.findings += [unreadable(f, problem) for f, problem in problems.items()]
                if problems:
                    continue
                reader = raw_contract.reader_sql(raw)
                batches, checks = table_batches(con, raw, reader, table, config, settings, as_of)
                runner.validate("raw", batches, result, write_docs=False)
                with_samples(con, reader, checks, result, first_new)
            except duckdb.Error as error:  # e.g. not UTF-8, a corrupt Parquet footer
                message = " ".join(str(error).split())[:300]
                result.findings.append(unreadable(raw.name, f"unreadable: {message}"))
    runner.write_docs(result)  # one site for all the files
    return result


def unreadable(name: str, problem: str) -> Finding:
    """A finding about a file (``orders.csv``, ``orders/2026-06-30.csv``) or a table's input."""
    return Finding(name, "readable_file", None, CRITICAL, problem, hint=HINTS["readable_file"])


def file_problem(path: Path) -> str | None:
    """What makes a file unusable before reading it: empty, or a CSV cut off (no final line
    break, or a last line with fewer fields than the header, which DuckDB would read as a file
    of one column). The dialect is DuckDB's own detection, as the reader's; null padding lets
    it see past the short last line."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    if path.suffix != ".csv":
        return None
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
        handle.seek(max(0, size - 65536))
        tail_bytes = handle.read()
    if not tail_bytes.endswith(b"\n"):
        return (
            "truncated: the file does not end with a line break, so the export was probably cut "
            "off mid-line (if it is complete, end it with a line break)"
        )
    tail = tail_bytes.decode("utf-8", errors="replace").splitlines()
    last = next((line for line in reversed(tail) if line.strip()), "")
    if last == header:
        return None  # a header without rows: judged by the row count
    dialect = csv_dialect(path)
    fields = lambda line: next(csv.reader([line], **dialect))  # noqa: E731
    expected, found = len(fields(header)), len(fields(last))
    if found < expected:
        return (
            f"truncated: the last line has {found} of the header's {expected} fields "
            f"({last[:60]!r}); the export was cut off"
        )
    return None


def csv_dialect(path: Path) -> dict[str, Any]:
    """DuckDB's sniffed delimiter and quote of a CSV, as arguments of :func:`csv.reader`."""
    delimiter, quote_char = duckdb.execute(
        f"select delimiter, quote from sniff_csv({contract.sql_string(str(path))}, "
        "null_padding = true)"
    ).fetchone()
    if quote_char in ("", "(empty)"):
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE}
    return {"delimiter": delimiter, "quotechar": quote_char}


def table_batches(
    con: duckdb.DuckDBPyConnection,
    raw: contract.RawInput,
    reader: str,
    table: contract.Table,
    config: dict[str, Any],
    settings: dict[str, Any],
    as_of: dt.date | None,
) -> tuple[list[Batch], list[RowCheck]]:
    """One pass of DuckDB over the file (or the directory's files) computes every table-level
    fact and the share of rows breaking each row-level rule; GX judges them (row data never
    goes through pandas)."""
    import great_expectations.expectations as gxe

    name = raw.name
    found = {
        row[0].lower(): row[0] for row in con.execute(f"describe select * from {reader}").fetchall()
    }
    readable = [c for c in table.columns if c.name in found and not c.pii]
    columns = [c.name for c in readable]
    required = [c.name for c in table.columns if c.required]
    timestamps = [c.name for c in readable if c.is_timestamp]

    # Table-level facts, aggregated in DuckDB: key uniqueness and the latest dates.
    facts_sql = ["count(*) as row_count"]
    key = table.key
    if key in columns:
        facts_sql.append(
            f"count(distinct {quote(found[key])}) / nullif(count({quote(found[key])}), 0)"
            " as unique_key_rate"
        )
    for column in timestamps:
        if column in columns:
            facts_sql.append(
                f"max({contract.parse_sql(as_text(found[column]), 'date')})"
                f" as {quote('latest_' + column)}"
            )
    if raw.file_format == "csv" and columns:
        # Concatenated exports repeat the header inside the file.
        same_as_header = " and ".join(f"{quote(found[c])} = '{found[c]}'" for c in columns)
        facts_sql.append(f"count(*) filter (where {same_as_header}) as repeated_header_rows")
    missing = [c for c in required if c not in found]
    if missing:
        columns_found = pd.DataFrame({c: [] for c in found.values()})
        expectation = gxe.ExpectTableColumnsToMatchSet(
            column_set=required,
            exact_match=False,
            meta={"severity": CRITICAL, "hint": HINTS["columns"]},
        )
        return [Batch(name, columns_found, [expectation])], []
    checks = row_checks(config, readable, found)
    facts_sql += [
        f"count(*) filter (where {c.violation}) as {quote(c.share_column)}" for c in checks
    ]
    facts = con.execute(f"select {', '.join(facts_sql)} from {reader}").df()
    rows = int(facts["row_count"].iloc[0])
    chance = settings["share_max_chance"]
    checks = [replace(c, tolerated=tolerated_share(c.max_share, rows, chance)) for c in checks]
    for check in checks:
        facts[check.share_column] = facts[check.share_column] / max(rows, 1)
    table_expectations: list[Any] = [
        gxe.ExpectColumnValuesToBeBetween(
            column=check.share_column,
            max_value=check.tolerated,
            meta={"severity": check.severity, "unit": "share", "hint": check.hint},
        )
        for check in checks
    ]
    if table.required:
        table_expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="row_count",
                min_value=1,
                meta={"severity": CRITICAL, "hint": HINTS["row_count"]},
            )
        )
    if raw.file_format == "csv" and "repeated_header_rows" in facts:
        repeated = settings["repeated_header_rows"]
        table_expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="repeated_header_rows",
                max_value=0,
                meta={"severity": repeated["severity"], "hint": HINTS["repeated_header_rows"]},
            )
        )
    unique = config.get("min_unique_key_rate")
    if unique and "unique_key_rate" in facts:
        table_expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column="unique_key_rate",
                min_value=1 - tolerated_share(1 - unique["value"], rows, chance),
                meta={
                    "severity": unique["severity"],
                    "unit": "share",
                    "hint": HINTS["unique_key_rate"],
                },
            )
        )
    # Rows after a past as-of date are deliberate (analysing as of then; staging sets them
    # aside): only dates after today, or after a future as-of date, are errors.
    reference = max(as_of or dt.date.today(), dt.date.today())
    limit = reference + dt.timedelta(days=settings["future_tolerance_days"])
    for column in timestamps:
        if f"latest_{column}" in facts and facts[f"latest_{column}"].notna().all():
            table_expectations.append(
                gxe.ExpectColumnMaxToBeBetween(
                    column=f"latest_{column}",
                    max_value=pd.Timestamp(limit),
                    meta={"severity": CRITICAL, "hint": HINTS["latest"]},
                )
            )
    facts = facts.astype({c: "datetime64[us]" for c in facts if c.startswith("latest_")})
    batches = [Batch(name, facts, table_expectations)]
    volume = config.get("daily_volume")
    if volume and volume["date_column"] in columns:
        batches += volume_batch(con, name, reader, found[volume["date_column"]], volume, as_of)
    return batches, checks


def tolerated_share(share: float, rows: int, max_chance: float) -> float:
    """The largest share of a file's ``rows`` breaking a rule that a file whose rows break it
    at the threshold ``share`` still shows with a chance above ``max_chance`` (the binomial
    upper tail), never below ``share``. One dirty row among a small shop's eight orders is
    staging's to quarantine, not a broken file; at a million rows this adds about three
    standard deviations (0.100 % -> 0.110 %)."""
    from scipy.stats import binom

    if rows <= 0 or share <= 0 or share >= 1:
        return share
    return max(share, float(binom.isf(max_chance, rows, share)) / rows)


@dataclass(frozen=True)
class RowCheck:
    """A row-level rule of one column: rows that break it, as a share of all rows."""

    column: str
    label: str  # e.g. "unparseable": the frame column is "<column> <label> share"
    violation: str  # SQL condition on the raw text column
    max_share: float  # the thresholds file's
    severity: str

    hint: str = ""
    tolerated: float | None = None  # table_batches: max_share and chance at the file's size

    @property
    def share_column(self) -> str:
        return f"{self.column} {self.label} share"


def row_checks(
    config: dict[str, Any], readable: list[contract.Column], found: dict[str, str]
) -> list[RowCheck]:
    """The row-level rules of the thresholds file, as SQL over the raw text columns."""
    columns = [c.name for c in readable]
    checks = []
    nulls = config.get("max_null_rate")
    for column in nulls["columns"] if nulls else []:
        if column in columns:
            checks.append(
                RowCheck(
                    column,
                    "null",
                    f"{quote(found[column])} is null",
                    nulls["value"],
                    nulls["severity"],
                    HINTS["null"],
                )
            )
    # Unparseable exactly when staging cannot parse it: the gate runs staging's own SQL.
    # Booleans are left to staging (a wrong flag quarantines one row, it does not break a file).
    parse = config.get("max_unparseable_rate")
    for column in readable if parse else []:
        if column.parse_as and column.parse_as != "boolean":
            kind = "timestamps" if column.is_timestamp else "numbers"
            checks.append(
                RowCheck(
                    column.name,
                    "unparseable",
                    contract.unparseable_sql(as_text(found[column.name]), column.parse_as),
                    parse["value"],
                    parse["severity"],
                    HINTS[f"unparseable {kind}"],
                )
            )
    for column, bounds in config.get("ranges", {}).items():
        if column in columns:
            number = f"try_cast({quote(found[column])} as double)"
            checks.append(
                RowCheck(
                    column,
                    "out of range",
                    f"{number} not between {bounds.get('min', '-inf')} and "
                    f"{bounds.get('max', 'inf')}",
                    1 - bounds.get("mostly", 0.999),
                    bounds["severity"],
                    HINTS["out of range"],
                )
            )
    for column, allowed in config.get("allowed_values", {}).items():
        if column in columns:
            values = ", ".join(f"'{v}'" for v in allowed["values"])
            checks.append(
                RowCheck(
                    column,
                    "not allowed",
                    f"lower(trim(cast({quote(found[column])} as varchar))) not in ({values})",
                    allowed["max_other_rate"],
                    allowed["severity"],
                    f"{HINTS['not allowed']}: {', '.join(allowed['values'])}",
                )
            )
    return checks


def with_samples(
    con: duckdb.DuckDBPyConnection,
    reader: str,
    checks: list[RowCheck],
    result: GateResult,
    first_new: int,
) -> None:
    """Sample bad values (from DuckDB) for the row checks that failed since ``first_new``."""
    by_column = {check.share_column: check for check in checks}
    for i in range(first_new, len(result.findings)):
        check = by_column.get(result.findings[i].column or "")
        if check is not None:
            bad, rows = con.execute(
                f"select count(*) filter (where {check.violation}), count(*) from {reader}"
            ).fetchone()
            samples = con.execute(
                f"select distinct cast({quote(check.column)} as varchar) from {reader} "
                f"where {check.violation} limit {SAMPLE_SIZE}"
            ).fetchall()
            tolerated = check.tolerated
            assert tolerated is not None  # table_batches sets it for the file's size
            chance = (
                f" (the threshold {check.max_share:.2%} and what chance adds in {rows:,} rows)"
                if tolerated > check.max_share
                else ""
            )
            result.findings[i] = replace(
                result.findings[i],
                detail=(
                    f"{bad:,} of {rows:,} rows, {bad / rows:.2%}; expected at most "
                    f"{tolerated:.2%}{chance}"
                ),
                samples=tuple(sample for (sample,) in samples),
            )


def volume_batch(
    con: duckdb.DuckDBPyConnection,
    name: str,
    reader: str,
    date_column: str,
    volume: dict[str, Any],
    as_of: dt.date | None,
) -> list[Batch]:
    """Rows in the latest days up to the as-of date (else the last day with rows) against the
    daily rate of the ``history_days`` before them; a day without rows counts 0.

    For each stretch of the latest j days (j = 1..recent_days), the rows S_j are compared with
    the expected E_j = j x the history's mean per day. A stretch is out of line when S_j is
    below ``min_ratio`` x E_j (above ``max_ratio`` x E_j) AND so far below (above) that a Poisson
    count with mean E_j would be there with probability under ``max_chance``: at a million
    orders a day the ratio decides (a half-loaded last day), at five a day chance does (a day
    without orders is normal, three at the end are not). The most improbable stretch is judged.
    """
    import great_expectations.expectations as gxe
    from scipy.stats import poisson

    daily = con.execute(
        f"""
        with days as (
            select {contract.parse_sql(as_text(date_column), "date")} as day
            from {reader}
        )
        select day, count(*) as row_count from days
        where day <= ? group by day order by day
        """,
        [as_of or dt.date.today()],
    ).df()
    if daily.empty:
        return []
    last = pd.Timestamp(as_of) if as_of else daily["day"].max()
    recent_start = last - pd.Timedelta(days=volume["recent_days"] - 1)
    history_start = recent_start - pd.Timedelta(days=volume["history_days"])
    every_day = pd.DataFrame({"day": pd.date_range(history_start, last, freq="D").date})
    daily = every_day.merge(daily.assign(day=daily["day"].dt.date), how="left").fillna(0)
    history = daily[daily["day"] < recent_start.date()]["row_count"]
    if (history > 0).sum() < volume["history_days"] // 2:
        return []  # too little history to learn a rate from
    rate = float(history.mean())
    latest_first = daily["row_count"].to_numpy()[::-1][: volume["recent_days"]]
    stretches = []
    for days, rows in enumerate(latest_first.cumsum(), start=1):
        expected = days * rate
        low = min(volume["min_ratio"] * expected, poisson.ppf(volume["max_chance"], expected))
        high = max(volume["max_ratio"] * expected, poisson.isf(volume["max_chance"], expected))
        chance = min(poisson.cdf(rows, expected), poisson.sf(rows - 1, expected))
        stretches.append((chance, days, rows, expected, low, high))
    out_of_line = [s for s in stretches if not s[4] <= s[2] <= s[5]]
    chance, days, rows, expected, low, high = min(out_of_line or stretches[-1:])
    return [
        Batch(
            f"{name} (rows in the latest {days} day(s) to {last.date()}, "
            f"{expected:,.1f} expected from the {volume['history_days']} days before)",
            pd.DataFrame({"rows_in_latest_days": [float(rows)]}),
            [
                gxe.ExpectColumnValuesToBeBetween(
                    column="rows_in_latest_days",
                    min_value=float(low),
                    max_value=float(high),
                    meta={"severity": volume["severity"], "hint": HINTS["rows_per_day"]},
                )
            ],
        )
    ]
