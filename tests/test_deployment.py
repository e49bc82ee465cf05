"""docker-compose.yaml and the Dockerfile, checked by parsing them (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from auto_refunds.deployment import DEFAULT_ARGS, WAREHOUSE_QUEUE

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def test_every_service_is_there_with_a_healthcheck(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}
    for name, service in services.items():
        if name != "airflow-init":
            assert service["healthcheck"]["test"], name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_airflow_services_run_the_project_image_and_commands(compose):
    for name, command in AIRFLOW_SERVICES.items():
        service = compose["services"][name]
        assert service["build"] == "."
        assert service["command"].startswith(command), name
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["AUTO_REFUNDS_DATA_DIR"] == "/opt/airflow/data"
        assert service["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )


def test_dags_include_plugins_and_data_are_mounted(compose):
    volumes = compose["services"]["airflow-worker"]["volumes"]
    mounts = dict(volume.split(":", 1) for volume in volumes)
    for folder in ("dags", "include", "plugins", "data"):
        assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        assert (REPO / folder).is_dir() or folder == "data"
    env = compose["services"]["airflow-worker"]["environment"]
    assert env["AUTO_REFUNDS_SQL_DIR"] == "/opt/airflow/include/sql"


def test_one_worker_serves_the_warehouse_queue_one_task_at_a_time(compose):
    workers = [s for s in compose["services"].values() if "celery worker" in str(s.get("command"))]
    assert len(workers) == 1
    command = workers[0]["command"]
    assert re.search(rf"--queues {WAREHOUSE_QUEUE}(\s|$)", command)
    assert re.search(r"--concurrency 1(\s|$)", command)
    assert DEFAULT_ARGS["queue"] == WAREHOUSE_QUEUE
    for dag_file in ("auto_refunds.py", "refund_reconciliation.py"):
        assert "default_args=DEFAULT_ARGS" in (REPO / "dags" / dag_file).read_text()


def test_the_init_service_migrates_and_creates_the_user(compose):
    init = compose["services"]["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_the_image_is_the_pinned_airflow_with_our_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert f"FROM apache/airflow:{pinned[1]}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile
