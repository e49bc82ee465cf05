# Auto-Refunds. `make run` and `make test` set everything up on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# The embedded default: Airflow's home (SQLite metadata DB, logs) and the data folder live in
# the repository, git-ignored. Any of these can be set from outside.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AUTO_REFUNDS_DATA_DIR ?= $(CURDIR)/data
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__EXECUTOR ?= LocalExecutor
export PYTHONPATH := $(CURDIR)/plugins$(if $(PYTHONPATH),:$(PYTHONPATH))
export PATH := $(CURDIR)/$(BIN):$(PATH)

# `make airflow` serves this machine only; AIRFLOW__API__HOST=0.0.0.0 serves the network.
# (`airflow standalone` starts its API server with `--host` from [api] host.)
AIRFLOW__API__HOST ?= 127.0.0.1

RUN_START ?= 2026-03-02
RUN_DAYS ?= 4

.PHONY: help setup run test test-fast test-ui test-distributed lint bench soak airflow clean

help:
	@echo "make setup   create .venv and install the pinned requirements"
	@echo "make run     generate sample data and run the daily DAG for $(RUN_DAYS) days"
	@echo "make test    run the test suite (all tiers but distributed; tiers: tests/conftest.py)"
	@echo "make test-fast  the unit tier alone, without its slow tests (under two minutes)"
	@echo "make test-ui the worklist's tests alone (API server, Chromium; part of make test)"
	@echo "make test-distributed  docker-compose.yaml's topology as processes (PostgreSQL, Redis, Celery)"
	@echo "make lint    ruff and sqlfluff"
	@echo "make bench   benchmark the daily DAG against a hand-written floor query"
	@echo "make soak    a year of nights with injected faults, then check the books (not in CI)"
	@echo "make airflow start Airflow (standalone) on the embedded default"

$(INSTALLED): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@touch $@

setup: $(INSTALLED)

# Airflow's home holds the metadata DB and the generated admin password: private to the user
# (umask 077: folders 0700, files 0600), whatever the shell's umask.
$(AIRFLOW_HOME)/airflow.db: | $(INSTALLED)
	@umask 077 && mkdir -p $(AIRFLOW_HOME) && chmod go-rwx $(AIRFLOW_HOME)
	umask 077 && airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)

run: $(INSTALLED) $(AIRFLOW_HOME)/airflow.db
	$(BIN)/python -m auto_refunds.demo --start $(RUN_START) --days $(RUN_DAYS)

test: $(INSTALLED)
	$(BIN)/python -m pytest

# The unit tier (pytest.ini's markers, given by the table in tests/conftest.py), slow tests out.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -m "unit and not slow"

test-ui: $(INSTALLED)
	$(BIN)/python -m pytest tests/test_worklist_ui.py tests/test_worklist.py

# docker-compose.yaml's topology as local processes, driven through the REST API and the CLI
# (tests/distributed/). Needs the PostgreSQL 15 server and Redis: installed when missing (root).
test-distributed: $(INSTALLED)
	bash tests/distributed/prerequisites.sh
	$(BIN)/python -m pytest -m distributed tests/distributed -x -s

lint: $(INSTALLED)
	$(BIN)/ruff check plugins dags tests benchmarks
	$(BIN)/ruff format --check plugins dags tests benchmarks
	$(BIN)/sqlfluff lint include/sql

# The 10M size: make bench BENCH_ARGS="--credits 10000000 --transactions 40000000"
# One profile, one run: BENCH_ARGS="--profile varied --runs 1" (default, varied or quoted; both
# is default and varied, all the three); the steady state (history, then N nights of small
# extracts, in order on one warehouse): BENCH_ARGS="--nights 30"
BENCH_ARGS ?=

bench: $(INSTALLED)
	$(BIN)/python benchmarks/bench_daily.py $(BENCH_ARGS)

# A year of nights in one process, then the books (benchmarks/soak.py); e.g.
# SOAK_ARGS="--nights 60 --credits 100 --seed 3 --data-dir /tmp/soak --keep"
SOAK_ARGS ?=

soak: $(INSTALLED)
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

airflow: $(INSTALLED) $(AIRFLOW_HOME)/airflow.db
	@echo "Airflow UI: http://localhost:8080  (user admin; the password is printed below and"
	@echo "stored in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated). Ctrl-C stops it."
	@chmod go-rwx $(AIRFLOW_HOME) $(AIRFLOW_HOME)/airflow.db
	umask 077 && AIRFLOW__API__HOST=$(AIRFLOW__API__HOST) AIRFLOW__CORE__PARALLELISM=4 airflow standalone

clean:
	rm -rf $(AIRFLOW_HOME) data
