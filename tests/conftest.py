"""Shared fixtures: every test gets its own data folder and warehouse."""

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
