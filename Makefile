# Two commands for users: `make build` and `make test`. Both bootstrap .venv from the lock file.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-from-lock
# SQL that sqlfluff lints (folders git does not hold while they are empty are skipped).
SQL_DIRS := $(wildcard models tests analyses snapshots)
# Python that ruff checks: the package, the benchmarks, the tests and the dbt Python models.
PY_DIRS := scripts benchmarks python_tests models

# dbt, sqlfluff and mf find the repo-local profiles.yml. The Python package (scripts/cvm) is
# installed into .venv in editable mode, so nothing needs PYTHONPATH.
export DBT_PROFILES_DIR := $(CURDIR)
# Business rules for one build without editing dbt_project.yml (dbt vars, YAML):
# make build VARS='{clv_margin: 0.35, lookback_days: 180}'. The environment variable
# CVM_VARS does the same; unknown var names stop the build with the list of known ones.
ifdef VARS
export CVM_VARS := $(VARS)
endif

.PHONY: help build build-spark report test test-spark lint conventions semantic slim-ci format lock benchmark benchmark-daily benchmark-spark benchmark-clv clean

help:
	@echo "make build      create .venv, make demo data if CVM_RAW_DIR is unset, build the warehouse"
	@echo "                  (dbt vars for this build: make build VARS='{clv_margin: 0.35}')"
	@echo "make build-spark  the same raw data built on a local Spark session (dbt-spark, Parquet"
	@echo "                  tables in warehouse/spark): raw gate, dbt build, mart gate, summary"
	@echo "make report     the charts of the published warehouse: build/report/index.html and PNGs"
	@echo "                  (make build writes it too, after publishing)"
	@echo "make test       create .venv, lint (ruff, sqlfluff), check conventions, run every test"
	@echo "make test-spark  the whole-warehouse Spark tests alone (part of make test)"
	@echo "make conventions  docs, key tests, contracts, names and coverage, from dbt's manifest"
	@echo "make semantic   mf validate-configs: the semantic layer, against the published warehouse"
	@echo "make slim-ci STATE=dir PROD_WAREHOUSE=file  build only what changed vs production"
	@echo "                  (without STATE: build and test everything, as make build does)"
	@echo "make benchmark  time the generator and dbt build at 100k and 1M customers (slow)"
	@echo "make benchmark-daily  a daily build (one new day of orders) against a full build at 1M (slow)"
	@echo "make benchmark-spark  dbt build on DuckDB and on local Spark at 10k and 100k (slow)"
	@echo "make benchmark-clv  CLV engine vs lifetimes and pymc-marketing at 1M (BG/NBD, Pareto/NBD),"
	@echo "                  the model selection at 1M, ours at 10M (slow)"
	@echo "make lock       re-resolve requirements.lock from pyproject.toml"
	@echo "make clean      remove build outputs (target/, logs/, warehouse/, data/demo/)"

$(INSTALLED): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	@touch $@

build: $(INSTALLED)
	$(BIN)/python -m cvm.build

# The whole project on dbt-spark's `session` target (README, "Spark and Databricks"); needs Java
# 17+. CVM_ENGINE=spark make build does the same.
build-spark: $(INSTALLED)
	@command -v java >/dev/null || { echo "error: make build-spark needs Java 17+ (Spark runs on it)" >&2; exit 1; }
	CVM_ENGINE=spark $(BIN)/python -m cvm.build

# The customer value report of the published warehouse (opened read-only): one self-contained
# HTML page and a PNG per chart, in CVM_REPORT_DIR (default build/report). `make build` writes it
# after publishing; this target writes it again without building.
report: $(INSTALLED)
	$(BIN)/python -m cvm.report

lint: $(INSTALLED)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/sqlfluff lint $(SQL_DIRS) --processes 2

# House rules on dbt's manifest (descriptions, key tests, mart contracts, layer prefixes,
# coverage); exceptions with reasons in conventions_exceptions.yml. Parsing needs no warehouse.
# Parsed into a target path of its own, so the manifest of the last build stays in target/.
conventions: $(INSTALLED)
	$(BIN)/dbt parse --quiet --target lint --target-path build/conventions
	$(BIN)/python -m cvm.conventions --manifest build/conventions/manifest.json

# MetricFlow's validations of the semantic layer. With a published warehouse, also against its
# data (read-only, so BI readers may stay connected); without one, of the configs alone. `mf`
# reads target/semantic_manifest.json, parsed here for the target it then connects with.
WAREHOUSE := $(or $(CVM_DUCKDB_PATH),warehouse/cvm.duckdb)
semantic: $(INSTALLED)
	if [ -f "$(WAREHOUSE)" ]; then \
	  CVM_TARGET=published $(BIN)/dbt parse --quiet && CVM_TARGET=published $(BIN)/mf validate-configs; \
	else \
	  echo "No warehouse at $(WAREHOUSE): validating the configs only (run make build first)."; \
	  CVM_TARGET=lint $(BIN)/dbt parse --quiet && CVM_TARGET=lint $(BIN)/mf validate-configs --skip-dw; \
	fi

# Slim CI: build (and test) the models a change modified and their children, deferring every
# unmodified parent to production; first lint only the SQL files changed since BASE_REF.
# STATE: a directory holding production's manifest.json (the artefact of the last main build).
# PROD_WAREHOUSE: production's DuckDB file, attached read-only under the database name that
# manifest uses. CVM_RAW_DIR: the raw files staging reads (default data/demo, as `make build`).
# Without STATE there is nothing to defer to, and building nothing would pass a change unseen:
# it then builds and tests everything as `make build` does (gates, exports and report included;
# dbt's unit tests too, which a data build leaves out),
# into CI_WAREHOUSE, with dbt's target/ and logs/ and the report under build/ci/ so those of the
# last build stay.
STATE ?=
PROD_WAREHOUSE ?=
BASE_REF ?= origin/main
CI_WAREHOUSE ?= build/ci/ci.duckdb
slim-ci: $(INSTALLED)
ifeq ($(strip $(STATE)),)
	@test -z "$(PROD_WAREHOUSE)" || { echo "error: PROD_WAREHOUSE is set but STATE is not:" \
	  "give STATE=<dir with production's manifest.json> too, or neither to build everything" >&2; exit 1; }
	@echo "No production state (STATE unset): building and testing every model, not only the modified ones."
else
	@test -f "$(STATE)/manifest.json" || { echo "error: no manifest.json in STATE=$(STATE):" \
	  "STATE is the directory of production's manifest.json (unset it to build everything)" >&2; exit 1; }
	@test -f "$(PROD_WAREHOUSE)" || { echo "error: PROD_WAREHOUSE='$(PROD_WAREHOUSE)' is not a file:" \
	  "give production's .duckdb file, the warehouse $(STATE)/manifest.json was built into" >&2; exit 1; }
endif
	changed="$$(git diff --name-only --diff-filter=d "$$(git merge-base $(BASE_REF) HEAD)" \
	  -- $(addsuffix /*.sql,$(SQL_DIRS)))"; \
	if [ -n "$$changed" ]; then $(BIN)/sqlfluff lint $$changed; else echo "No SQL file changed since $(BASE_REF)."; fi
	mkdir -p $(dir $(CI_WAREHOUSE)) && rm -f $(CI_WAREHOUSE) $(CI_WAREHOUSE).wal
ifeq ($(strip $(STATE)),)
	CVM_UNIT_TESTS=1 CVM_DUCKDB_PATH="$(abspath $(CI_WAREHOUSE))" DBT_TARGET_PATH="$(abspath build/ci/target)" \
	DBT_LOG_PATH="$(abspath build/ci/logs)" CVM_REPORT_DIR="$(abspath build/ci/report)" \
	$(BIN)/python -m cvm.build
else
	CVM_PROD_DATABASE="$$($(BIN)/python -m cvm.slim_ci database $(STATE)/manifest.json)" \
	CVM_PROD_WAREHOUSE="$(abspath $(PROD_WAREHOUSE))" CVM_DUCKDB_PATH="$(abspath $(CI_WAREHOUSE))" \
	  $(BIN)/dbt build --target ci --select state:modified+ --defer --state $(STATE)
endif

format: $(INSTALLED)
	$(BIN)/ruff check --fix $(PY_DIRS)
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/sqlfluff fix $(SQL_DIRS)

# pytest workers: one more than cores, since the tests spend much of their time waiting (process
# and JVM start-ups, Spark's metastore, a shared build's lock). On 2 cores make test's pytest
# took 24.0 min with 2 workers, 20.8 min with 3 and 25.0 min with 4. --durations: the slowest
# tests in every run's log, to keep an eye on CI's 30-minute budget. --no-loadscope-reorder: hand
# files out in conftest's order (the longest first), not xdist's (the most tests first).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: lint conventions semantic
	@command -v java >/dev/null || { echo "error: make test needs Java 17+ (the Spark tests of the Python models)" >&2; exit 1; }
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations 15

# The whole warehouse on Spark (README, "Spark and Databricks"), alone: yesterday's 3,000-customer
# dbt build against DuckDB's, today's make build-spark on it, the CSV staging. make test runs it too.
test-spark: $(INSTALLED)
	$(BIN)/pytest --numprocesses $(TEST_WORKERS) --dist loadfile python_tests/test_spark_build.py

benchmark: $(INSTALLED)
	$(BIN)/python benchmarks/build_benchmark.py

# dbt build of the same raw files on DuckDB and on local Spark, at 10k and 100k customers (slow).
benchmark-daily: $(INSTALLED)
	$(BIN)/python benchmarks/build_benchmark.py --daily --sizes 1000000 --repeats 3

benchmark-spark: $(INSTALLED)
	$(BIN)/python benchmarks/build_benchmark.py --engines --sizes 10000 100000 --repeats 3

# The CLV benchmark's references (pymc-marketing, lifetimes) live in a venv of their own, so
# that pymc's dependencies never enter the project's lock.
CLV_BENCH_VENV := .venv-clv-benchmark
$(CLV_BENCH_VENV)/.installed-from-lock: requirements-clv-benchmark.lock
	@test -x $(CLV_BENCH_VENV)/bin/python || $(PYTHON) -m venv $(CLV_BENCH_VENV)
	$(CLV_BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $<
	$(CLV_BENCH_VENV)/bin/python -m pip check
	@touch $@

# BG/NBD (with ours alone at 10M), then Pareto/NBD and the model selection at 1M; the
# references' Pareto/NBD fits take minutes each at 1M, so they run once.
CLV_BENCH := PYTHONPATH=$(CURDIR)/scripts $(CLV_BENCH_VENV)/bin/python benchmarks/clv_benchmark.py \
  --data-dir build/benchmark/clv-data
benchmark-clv: $(CLV_BENCH_VENV)/.installed-from-lock
	$(CLV_BENCH) --purchase-model bg_nbd
	$(CLV_BENCH) --purchase-model pareto_nbd --selection --reference-repeats 1 --large-customers 0

# Resolve the direct dependencies of pyproject.toml (with dev extras) in a scratch venv and pin
# everything that comes with them.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > .lock-venv/direct.txt
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -r .lock-venv/direct.txt
	( echo "# Generated by \`make lock\` from pyproject.toml; install with pip --no-deps."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude pip --exclude setuptools --exclude wheel ) > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf target logs warehouse data/demo build
