"""docker-compose.yaml, .env.example, the Dockerfile and the requirements, checked by parsing
them (no Docker engine here; `make test-distributed` runs the same topology as processes)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from auto_refunds.deployment import DEFAULT_ARGS, WAREHOUSE_QUEUE

REPO = Path(__file__).resolve().parents[1]
# The secrets of the deployment: each comes from the user's .env, none has a default.
SECRETS = (
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
)
# playwright drives Debian's Chromium in the worklist's browser test.
DEV_TOOLS = ("pytest", "hypothesis", "ruff", "sqlfluff", "playwright")
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "airflow-worker-default": "celery worker",
}
SHARED_ENV = REPO / "deploy" / "airflow.env"


def _load_cluster():
    """tests/distributed/cluster.py, the process form of the topology."""
    spec = importlib.util.spec_from_file_location(
        "distributed_cluster", REPO / "tests" / "distributed" / "cluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cluster = _load_cluster()


def service_env(service: dict) -> dict[str, str]:
    """What a service's processes see: its env_file, then its environment (compose's order)."""
    env = {}
    for path in service.get("env_file", []):
        env |= cluster.read_env_file(REPO / path)
    return env | {k: str(v) for k, v in service["environment"].items()}


def load_compose() -> dict:
    """docker-compose.yaml as YAML: anchors and merge keys resolved, ${...} left as written."""
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


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
        env = service_env(service)
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


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_one_worker_serves_the_warehouse_queue_one_task_at_a_time(compose, dagbag):
    workers = {
        name: s["command"]
        for name, s in compose["services"].items()
        if "celery worker" in str(s.get("command"))
    }
    serving = [c for c in workers.values() if re.search(rf"--queues \S*\b{WAREHOUSE_QUEUE}\b", c)]
    assert len(serving) == 1 and len(workers) == 2
    command = serving[0]
    assert re.search(rf"--queues {WAREHOUSE_QUEUE}(\s|$)", command)
    assert re.search(r"--concurrency 1(\s|$)", command)
    # The other worker serves Airflow's default queue, which no Auto-Refunds task is routed to.
    assert re.search(r"--queues default(\s|$)", workers["airflow-worker-default"])
    # Two workers on one host (make test-distributed) need their own node names.
    assert len({re.search(r"--celery-hostname (\S+)", c)[1] for c in workers.values()}) == 2
    assert DEFAULT_ARGS["queue"] == WAREHOUSE_QUEUE
    assert set(dagbag.dag_ids) == {"auto_refunds", "refund_reconciliation"}
    for dag in dagbag.dags.values():
        assert dag.tasks
        assert {task.task_id: task.queue for task in dag.tasks} == {
            task.task_id: WAREHOUSE_QUEUE for task in dag.tasks
        }


def test_the_init_service_migrates_and_writes_the_admin_password(compose):
    init = compose["services"]["airflow-init"]
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["ADMIN_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    passwords = service_env(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    script = "\n".join(init["command"])
    assert f"> {passwords}" in script and f"chmod 600 {passwords}" in script
    assert service_env(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "airflow:admin"
    # The API server reads the file the init service wrote.
    volumes = compose["services"]["airflow-apiserver"]["volumes"]
    assert f"airflow-auth:{Path(passwords).parent}" in volumes


# -- one topology, two forms: docker-compose.yaml and make test-distributed ------------------


def test_both_forms_read_the_shared_settings_and_compose_overrides_none(compose):
    shared = cluster.read_env_file(SHARED_ENV)
    assert cluster.SHARED_ENV_FILE == SHARED_ENV
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        service = compose["services"][name]
        assert service["env_file"] == ["deploy/airflow.env"], name
        assert not set(service["environment"]) & set(shared), name
    # No secret in the shared file: they come from .env.
    assert not [k for k in shared if re.search(r"SECRET|PASSWORD|FERNET|CONN|BROKER", k)]


def test_both_forms_set_the_same_per_deployment_settings(compose):
    compose_env = set(compose["services"]["airflow-scheduler"]["environment"])
    local = cluster.deployment_env(
        pg_port=1,
        pg_password="p",
        redis_port=2,
        redis_password="r",
        api_port=3,
        secrets_={"fernet": "f", "jwt": "j", "api": "a"},
        passwords_file=Path("/x"),
        data_dir=Path("/d"),
    )
    assert set(local) == compose_env
    # What only the process form adds: ports and homes a container has to itself, and short
    # waits that are settings of Airflow or of the product, none of them a deployment setting.
    assert not set(cluster.LOCAL_ONLY) & (compose_env | set(cluster.read_env_file()))
    assert not set(cluster.TEST_TUNING) & (compose_env | set(cluster.read_env_file()))
    assert all(
        k.startswith(("AUTO_REFUNDS_PAYMENT_FILE_", "AIRFLOW__SCHEDULER__TASK_INSTANCE_"))
        for k in cluster.TEST_TUNING
    )
    for secret, value in {"fernet": "f", "jwt": "j", "api": "a"}.items():
        assert value in local.values(), secret


def test_both_forms_run_the_same_services_with_the_same_commands(compose):
    services = cluster.airflow_services()
    assert set(services) == set(AIRFLOW_SERVICES)
    for name, argv in services.items():
        assert " ".join(argv) == compose["services"][name]["command"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^test-distributed:", makefile, re.M)
    assert "make test-distributed" in (REPO / ".ci" / "run").read_text()


def test_the_image_is_the_pinned_airflow_with_our_requirements():
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert f"FROM apache/airflow:{pinned[1]}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X-default}, ${X:?error}, $$."""

    def value(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        found = env.get(name)
        missing = not found if op and op.startswith(":") else found is None
        if op and op.endswith("?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return found or ""

    return _VARIABLE.sub(value, text)


def interpolated(node, env: dict[str, str]):
    """The parsed file as compose sees it: every string value (and key) interpolated."""
    if isinstance(node, dict):
        return {interpolated(k, env): interpolated(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    return interpolate(node, env) if isinstance(node, str) else node


def strings(node, where: tuple = ()):
    """Every string of the parsed file, keys included, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key, (*where, "<key>"))
            yield from strings(value, (*where, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from strings(item, (*where, index))
    elif isinstance(node, str):
        yield where, node


def env_example() -> dict[str, tuple[str, list[str]]]:
    """Each variable of .env.example: its value and the comment lines above it."""
    variables, comments = {}, []
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.startswith("#"):
            comments.append(line.lstrip("# "))
        elif "=" in line:
            name, value = line.split("=", 1)
            variables[name] = (value, comments)
            comments = []
        else:
            comments = []
    return variables


GENERATED = {name: f"{name.lower()}-0123abcd" for name in SECRETS}


def test_every_secret_comes_from_env_without_a_default(compose):
    # The values of the parsed file, not its text: a ${...} in a comment is no use.
    uses = [
        (m["name"], m["op"], where)
        for where, value in strings(compose)
        for m in _VARIABLE.finditer(value)
        if m["name"]
    ]
    for name in SECRETS:
        ops = {op for used, op, _ in uses if used == name}
        assert ops == {":?"}, (name, ops)
        with pytest.raises(MissingVariable, match=name):
            interpolated(compose, {**GENERATED, name: ""})
    # Nothing that looks like a literal password is left: each setting of a password or key, in
    # every service, is made of the secrets alone, and every URL's password is one of them.
    resolved = interpolated(compose, GENERATED)
    secret_values = set(GENERATED.values())
    checked = 0
    for name, service in resolved["services"].items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if re.search(r"PASSWORD$|SECRET|FERNET_KEY|REDISCLI_AUTH", key) and "FILE" not in key:
                assert value in secret_values, (name, key, value)
                checked += 1
            if "://" in value:
                password = urlsplit(value).password
                assert password is None or password in secret_values, (name, key, value)
                checked += password is not None
    assert checked >= 3 * len(AIRFLOW_SERVICES)


def test_the_secrets_reach_the_services_that_need_them(compose):
    services = interpolated(compose, GENERATED)["services"]
    pg, redis = GENERATED["POSTGRES_PASSWORD"], GENERATED["REDIS_PASSWORD"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == pg
    assert services["redis"]["command"] == ["redis-server", "--requirepass", redis]
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == redis
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = services[name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
            f"postgresql+psycopg2://airflow:{pg}@postgres/airflow"
        )
        assert (
            env["AIRFLOW__CELERY__RESULT_BACKEND"]
            == f"db+postgresql+psycopg2://airflow:{pg}@postgres/airflow"
        )
        assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis}@redis:6379/0"
        assert env["AIRFLOW__CORE__FERNET_KEY"] == GENERATED["AIRFLOW_FERNET_KEY"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == GENERATED["AIRFLOW_JWT_SECRET"]
        assert env["AIRFLOW__API__SECRET_KEY"] == GENERATED["AIRFLOW_API_SECRET_KEY"]
    init_env = services["airflow-init"]["environment"]
    assert init_env["ADMIN_PASSWORD"] == GENERATED["AIRFLOW_ADMIN_PASSWORD"]


def test_the_api_server_is_published_on_loopback_by_default(compose):
    services = interpolated(compose, GENERATED)["services"]
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]
    for name, service in services.items():
        if name != "airflow-apiserver":
            assert "ports" not in service, name


def test_env_example_lists_each_secret_with_the_command_that_makes_it():
    variables = env_example()
    for name in SECRETS:
        value, comments = variables[name]
        assert value == "", name
        assert comments and comments[-1].startswith(("openssl rand ", "python -c ")), name
    assert "Fernet.generate_key()" in variables["AIRFLOW_FERNET_KEY"][1][-1]
    assert variables["AIRFLOW_API_HOST"][0] == "127.0.0.1"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def _requirement_names(path: Path) -> set[str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.split(r"[=<>\[ ]", line)[0].lower().replace("_", "-") for line in lines if line}


def test_the_image_installs_with_constraints_and_without_development_tools():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^COPY .*\brequirements\.txt constraints\.txt ", dockerfile, re.M)
    assert re.search(
        r"-r /opt/auto-refunds/requirements\.txt\s+\\?\s*-c /opt/auto-refunds/"
        r"constraints\.txt",
        dockerfile,
    )
    instructions = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert not [line for line in instructions if "requirements-dev" in line]
    product = _requirement_names(REPO / "requirements.txt")
    development = _requirement_names(REPO / "requirements-dev.txt")
    assert not product & set(DEV_TOOLS)
    assert development == set(DEV_TOOLS)
    constraints = _requirement_names(REPO / "constraints.txt")
    assert product | development <= constraints


def test_make_setup_installs_both_requirement_files():
    makefile = (REPO / "Makefile").read_text()
    rule = re.search(r"^\$\(INSTALLED\): (?P<deps>.*)\n(?P<recipe>(?:\t.*\n)+)", makefile, re.M)
    assert set(rule["deps"].split()) == {
        "requirements.txt",
        "requirements-dev.txt",
        "constraints.txt",
    }
    assert re.search(
        r"pip install .*-r requirements\.txt -r requirements-dev\.txt -c constraints\.txt",
        rule["recipe"],
    )
