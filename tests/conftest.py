"""Shared fixtures: every test gets its own data folder and warehouse. And the test tiers: every
test module is classified in TIERS below (the markers are declared in pytest.ini)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile as _tmp
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from auto_refunds.settings import Settings  # noqa: E402


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
    monkeypatch.setenv("AUTO_REFUNDS_LOCK_TIMEOUT_SECONDS", "5")
    return root


@pytest.fixture
def settings(data_dir) -> Settings:
    return Settings.from_env()


@pytest.fixture
def scenario(settings):
    """One data folder of the test's own (tests/scenario.py)."""
    from scenario import Scenario

    return Scenario(settings)


@pytest.fixture(scope="session")
def model_columns(tmp_path_factory) -> dict:
    """The columns and types of every model, built once on empty inputs."""
    from model_units import model_columns

    return model_columns(tmp_path_factory.mktemp("model-columns"))


@pytest.fixture
def unit(settings, model_columns):
    """A fresh warehouse in which one model is built from given rows (tests/model_units.py)."""
    from model_units import ModelUnit

    return ModelUnit(settings, model_columns)


os.environ.setdefault("AUTO_REFUNDS_DUCKDB_THREADS", "2")
# Tests write payment files whole, at once; the settle interval has tests of its own.
os.environ.setdefault("AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS", "0")


# Airflow reads its configuration when first imported: point it at a private home, the
# project's DAGs and plugins, before any test imports it.
if os.environ.get("AUTO_REFUNDS_TEST_AIRFLOW_HOME"):
    _AIRFLOW_HOME = Path(os.environ["AUTO_REFUNDS_TEST_AIRFLOW_HOME"])
else:
    # Each pytest process makes its own; removed when that process exits.
    _AIRFLOW_HOME = Path(_tmp.mkdtemp(prefix="ar-airflow-"))
    atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB, once per session."""
    import subprocess

    if not (_AIRFLOW_HOME / "airflow.db").exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
        )
    return _AIRFLOW_HOME


# -- Test tiers -------------------------------------------------------------------------------
# unit: model units, pure functions, settings, card-number detection, parsing; fast, no run of
#   the pipeline or of Airflow (`make test-fast` runs `-m "unit and not slow"`).
# scenario: several steps of the pipeline's own code (scenario.py, run_all, the CLI, dag.test).
# browser: Chromium driving the worklist. distributed: the compose topology as processes.
# slow: over ~20 s alone (with what a module fixture builds for it, where it is the first user).
# Every module is classified here, and a new one fails the collection until it is: a module-wide
# table, rather than a pytestmark line in each file, so that the tiers can be read in one place.
TIERS: dict[str, frozenset[str]] = {
    name: frozenset(tiers)
    for name, tiers in {
        "test_card_numbers.py": {"unit"},
        "test_card_scan.py": {"unit"},
        "test_deployment.py": {"unit"},
        "test_model_graph.py": {"unit"},
        "test_model_units.py": {"unit"},
        "test_model_units_reconciliation.py": {"unit"},
        "test_sensors.py": {"unit"},
        "test_settings.py": {"unit"},
        "test_typing_version.py": {"unit"},  # fingerprints of SQL and Python text
        "test_csv_fields.py": {"unit"},  # Hypothesis: the macros against split_fields
        "test_dags.py": {"unit"},  # the DAGs as loaded; their runs are below
        "test_card_numbers_everywhere.py": {"scenario"},
        "test_contract_edges.py": {"scenario"},
        "test_delivery.py": {"scenario"},  # local locations, a warehouse of the test's own
        "test_extract_fingerprints.py": {"scenario"},
        "test_kill.py": {"scenario", "slow"},
        "test_landing_and_quarantine.py": {"scenario"},
        "test_landing_edges.py": {"scenario"},
        "test_hostile_files.py": {"scenario"},
        "test_money_guards.py": {"scenario"},
        "test_property_rules.py": {"scenario", "slow"},
        "test_pgp.py": {"scenario"},  # GnuPG; one test over a real OpenSSH server
        "test_publish.py": {"scenario"},
        "test_query_plans.py": {"scenario"},
        "test_reconcile_from_state.py": {"scenario", "slow"},
        "test_reconciliation.py": {"scenario"},
        "test_refund_rules.py": {"scenario"},
        "test_runs_side_by_side.py": {"scenario", "slow"},
        "test_soak.py": {"scenario", "slow"},  # six nights and a backfilled date, about a minute
        "test_sftp.py": {"scenario", "slow"},  # a real OpenSSH server on a loopback port
        "test_private_files.py": {"unit"},  # folder checks and modes; the demo loop below
        "test_warehouse.py": {"scenario"},
        "test_worklist.py": {"scenario"},
        "test_worklist_ui.py": {"browser", "slow"},
        "test_worklist_security.py": {"scenario", "slow"},  # an API server, no browser
        "test_work_item_actions.py": {"scenario"},  # the store and queries; the pages below
        "test_work_items.py": {"unit"},  # the items' function; its pipeline scenario below
        "distributed/test_distributed.py": {"distributed", "slow"},
    }.items()
}
# Single tests whose tiers are not their module's: they replace them.
TEST_TIERS: dict[str, dict[str, frozenset[str]]] = {
    "test_dags.py": {
        # dag.test() runs of the DAGs, end to end.
        "test_auto_refunds_end_to_end_with_a_rerun_and_a_backfill": frozenset({"scenario", "slow"}),
        "test_a_run_with_a_missing_file_fails": frozenset({"scenario"}),
        "test_the_money_loop_end_to_end_over_several_days": frozenset({"scenario", "slow"}),
    },
    "test_work_items.py": {
        "test_items_over_several_dates_through_the_pipeline_whatever_order_the_dates_ran_in": (
            frozenset({"scenario"})
        ),
    },
    # Pure functions in modules of runs.
    "test_reconcile_from_state.py": {
        "test_events_batched_into_one_run_name_the_latest_date": frozenset({"unit"}),
    },
    "test_landing_edges.py": {  # the pipe that feeds DuckDB a file's lines
        "test_a_file_that_is_not_utf8_is_read_through_a_pipe_never_copied": frozenset({"unit"}),
        "test_a_read_that_fails_or_never_starts_does_not_hang_the_feed": frozenset({"unit"}),
        "test_a_feed_cut_short_fails_the_read_instead_of_a_shorter_file": frozenset({"unit"}),
        "test_duckdb_failing_while_the_feed_waits_ends_both_naming_the_file": frozenset({"unit"}),
    },
    "test_hostile_files.py": {  # Hypothesis: 8 pipeline runs, about 20 s
        "test_a_hostile_file_costs_only_its_damaged_records": frozenset({"scenario", "slow"}),
    },
    "test_private_files.py": {
        "test_the_demo_loop_writes_nothing_others_can_use_whatever_the_umask": frozenset(
            {"scenario", "slow"}
        ),
    },
    # One run, no Hypothesis.
    "test_property_rules.py": {
        "test_blanks_inside_quotes_are_trimmed_like_blanks_outside": frozenset({"scenario"}),
    },
}
TIER_MARKERS = frozenset({"unit", "scenario", "browser", "distributed", "slow"})
TESTS = Path(__file__).resolve().parent


class UnclassifiedTest(pytest.UsageError):
    pass


def _check_tier_table() -> None:
    problems = []
    for module, tiers in TIERS.items():
        if not (TESTS / module).is_file():
            problems.append(f"TIERS names {module}, which is not there any more")
        if not tiers or not tiers <= TIER_MARKERS:
            problems.append(f"TIERS[{module!r}] = {sorted(tiers)}: not tiers of {TIER_MARKERS}")
    for module, tests in TEST_TIERS.items():
        path = TESTS / module
        source = path.read_text() if module in TIERS and path.is_file() else ""
        for test, tiers in tests.items():
            if f"def {test}(" not in source:
                problems.append(f"TEST_TIERS names {module}::{test}, which is not there any more")
            if not tiers or not tiers <= TIER_MARKERS:
                problems.append(f"TEST_TIERS[{module}::{test}]: not tiers of {TIER_MARKERS}")
    if problems:
        raise UnclassifiedTest("tests/conftest.py, the tier table:\n  " + "\n  ".join(problems))


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config, items):
    _check_tier_table()
    unclassified = set()
    for item in items:
        path = item.path.resolve()
        module = path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else str(path)
        name = getattr(item, "originalname", item.name)
        tiers = TEST_TIERS.get(module, {}).get(name, TIERS.get(module))
        if tiers is None:
            unclassified.add(module)
            continue
        for tier in sorted(tiers):
            item.add_marker(getattr(pytest.mark, tier))
    if unclassified:
        raise UnclassifiedTest(
            "test modules without a tier: "
            + ", ".join(sorted(unclassified))
            + "; add each to TIERS in tests/conftest.py (unit, scenario, browser, distributed,"
            " slow)"
        )
