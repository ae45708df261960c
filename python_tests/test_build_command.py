"""`make build`'s Python side: demo data when none is given, dbt build, summary."""

from __future__ import annotations

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

    assert build.main(["--demo-customers", "1500"]) == 0

    assert (demo_dir / "customers.parquet").is_file()
    out = capsys.readouterr().out
    assert "Warehouse built and published in" in out and str(warehouse) in out
    assert "marts.dim_customers" in out and "1,500 rows" in out
    assert "quarantined rows: none" in out
    assert "scoring    BG/NBD fitted on" in out and "holdout    predicted repeat purchases" in out
    assert "value:     tiers and CLV on gross margin" in out


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
