"""`make build`'s Python side: demo data when none is given, dbt build, summary."""

from __future__ import annotations

import re

import pytest

from cvm import build

pytestmark = pytest.mark.slow


def test_build_generates_demo_data_builds_and_summarizes(tmp_path, monkeypatch, capsys):
    demo_dir = tmp_path / "demo"
    warehouse = tmp_path / "wh" / "cvm.duckdb"
    monkeypatch.setattr(build, "DEMO_RAW_DIR", demo_dir)
    monkeypatch.delenv("CVM_RAW_DIR", raising=False)
    monkeypatch.delenv("CVM_AS_OF_DATE", raising=False)
    monkeypatch.setenv("CVM_DUCKDB_PATH", str(warehouse))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    monkeypatch.setenv("CVM_REPORT_DIR", str(tmp_path / "report"))

    assert build.main(["--demo-customers", "1500"]) == 0

    assert (demo_dir / "customers.parquet").is_file()
    out = capsys.readouterr().out
    assert "Warehouse built and published in" in out and str(warehouse) in out
    assert "marts.dim_customers" in out and "1,500 rows" in out
    assert "quarantined rows: none" in out
    assert "scoring    BG/NBD fitted on" in out and "holdout    predicted repeat purchases" in out
    assert "value:     tiers and CLV on gross margin" in out
    assert f"report:      {(tmp_path / 'report' / 'index.html').as_uri()} (13 charts; " in out


def test_user_raw_dir_is_never_written_to(tmp_path):
    settings = build.resolve_settings({"CVM_RAW_DIR": str(tmp_path)})
    build.ensure_demo_data(settings, customers=1000)
    assert not settings.is_demo
    assert list(tmp_path.iterdir()) == []


def test_vars_are_checked_against_the_project(tmp_path):
    settings = build.resolve_settings({"CVM_VARS": "{clv_margin: 0.35, lookback_days: 180}"})
    assert settings.dbt_vars == {"clv_margin": 0.35, "lookback_days": 180}
    assert build.vars_arguments(settings.dbt_vars) == [
        "--vars",
        "{clv_margin: 0.35, lookback_days: 180}",
    ]
    with pytest.raises(build.SettingsError, match=r"unknown var.*lookbak_days.*lookback_days"):
        build.resolve_settings({"CVM_VARS": "{lookbak_days: 180}"})
    with pytest.raises(build.SettingsError, match="must be a mapping"):
        build.resolve_settings({"CVM_VARS": "clv_margin"})
    with pytest.raises(build.SettingsError, match="not valid YAML"):
        build.resolve_settings({"CVM_VARS": "{clv_margin: [0.35}"})


def test_a_clean_demo_build_has_no_warnings(published_build):
    """Generated data without bad rows warns nowhere: dbt's tests (both invocations, staging then
    the rest) and the quality gates. A warning on clean data would be one nobody reads."""
    dbt_runs = re.findall(
        r"Done\. PASS=\d+ WARN=(\d+) ERROR=(\d+) SKIP=(\d+)", published_build.stdout
    )
    assert len(dbt_runs) == 2, published_build.stdout[-3000:]
    assert dbt_runs == [("0", "0", "0")] * 2
    gates = re.findall(
        r"(raw|marts) gate: +passed \d+ expectations, (\d+) warnings", published_build.stdout
    )
    assert gates == [("raw", "0"), ("marts", "0")], published_build.stdout[-3000:]
