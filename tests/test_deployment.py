"""docker-compose.yaml, .env.example, the Dockerfile and the requirements, checked by parsing
them (no Docker engine here; `make test-distributed` runs the same topology as processes)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

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
# Compose's secret of each variable of .env: a file at /run/secrets/<name>, in the services below.
SECRET_FILES = {
    "POSTGRES_PASSWORD": "postgres_password",
    "REDIS_PASSWORD": "redis_password",
    "AIRFLOW_ADMIN_PASSWORD": "airflow_admin_password",
    "AIRFLOW_JWT_SECRET": "airflow_jwt_secret",
    "AIRFLOW_API_SECRET_KEY": "airflow_api_secret_key",
    "AIRFLOW_FERNET_KEY": "airflow_fernet_key",
}
# Which service sees which secret; the README (Security) says why, from Airflow 3.3's code. A
# worker runs the tasks' code: it must hold neither the JWT secret (a token for any user) nor the
# Fernet key. It holds the PostgreSQL password for Celery's result backend, the metadata DB.
SECRETS_OF = {
    "postgres": {"postgres_password"},
    "redis": {"redis_password"},
    "airflow-apiserver": {
        "postgres_password",
        "airflow_fernet_key",
        "airflow_jwt_secret",
        "airflow_api_secret_key",
    },
    "airflow-scheduler": {
        "postgres_password",
        "redis_password",
        "airflow_fernet_key",
        "airflow_jwt_secret",
    },
    "airflow-dag-processor": {"postgres_password", "airflow_fernet_key"},
    "airflow-triggerer": {"postgres_password", "airflow_fernet_key", "airflow_api_secret_key"},
    "airflow-worker": {
        "postgres_password",
        "redis_password",
        "airflow_api_secret_key",
        "sftp_client_key",
    },
    "airflow-worker-default": {"postgres_password", "redis_password", "airflow_api_secret_key"},
    "airflow-init": {"postgres_password", "airflow_admin_password"},
    "sftp": {"sftp_host_key", "sftp_client_public_key"},
}
WORKERS = ("airflow-worker", "airflow-worker-default")
# The SFTP server's keys are files .env names (ssh-keygen makes them), and the server's public
# host key, pinned by the workers, is a value of .env: required, none of them has a default.
KEY_FILES = {
    "sftp_host_key": "${SFTP_HOST_KEY_FILE:?",
    "sftp_client_key": "${SFTP_CLIENT_KEY_FILE:?",
    "sftp_client_public_key": "${SFTP_CLIENT_KEY_FILE:?",
}
REQUIRED = {
    "SFTP_HOST_KEY_FILE": "/keys/sftp_host_ed25519",
    "SFTP_CLIENT_KEY_FILE": "/keys/sftp_client_ed25519",
    "SFTP_HOST_PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedForTheTest",
}
# The locations of CONTRACT 9 (Airflow connections), for the warehouse worker alone.
LOCATIONS = {
    "AIRFLOW_CONN_IMAGINEPAY_REFUNDS": "/exchange/imaginepay/inbound",
    "AIRFLOW_CONN_IMAGINEPAY_PAYMENTS": "/exchange/imaginepay/outbound",
    "AIRFLOW_CONN_IMAGINEONE_POSTINGS": "/exchange/imagineone/inbound",
}
# Variables only a container needs (the image's entrypoint and its init), none of them a setting.
CONTAINER_ONLY = {"DUMB_INIT_SETSID", "CONNECTION_CHECK_MAX_COUNT", "_AIRFLOW_DB_MIGRATE"}
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
    assert set(services) == {"postgres", "redis", "sftp", "airflow-init", *AIRFLOW_SERVICES}
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
    assert "airflow_admin_password" in init["secrets"]
    passwords = service_env(init)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    script = "\n".join(init["command"])
    assert 'open("/run/secrets/airflow_admin_password")' in script
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
    compose_env = set(compose["x-airflow-common"]["environment"])
    local = cluster.deployment_env(api_port=3, passwords_file=Path("/x"), data_dir=Path("/d"))
    assert set(local) == compose_env
    # Beyond those, a service has only its secrets' `_CMD` settings (the process form takes them
    # from this file, service_secret_env) and what only a container needs.
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        own = set(compose["services"][name]["environment"]) - compose_env
        locations = set(LOCATIONS) if name == "airflow-worker" else set()
        assert {k for k in own if not k.endswith("_CMD")} <= CONTAINER_ONLY | locations, name
    # What only the process form adds: ports and homes a container has to itself, and short
    # waits that are settings of Airflow or of the product, none of them a deployment setting.
    assert not set(cluster.LOCAL_ONLY) & (compose_env | set(cluster.read_env_file()))
    assert not set(cluster.TEST_TUNING) & (compose_env | set(cluster.read_env_file()))
    assert all(
        k.startswith(("AUTO_REFUNDS_PAYMENT_FILE_", "AIRFLOW__SCHEDULER__TASK_INSTANCE_"))
        for k in cluster.TEST_TUNING
    )


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
            interpolated(compose, {**GENERATED, **REQUIRED, name: ""})
    # Each goes from .env into its secret's file, and its value into nothing else: the list that
    # makes compose stop when one is missing is all that names them.
    assert set(compose["secrets"]) == set(SECRET_FILES.values()) | set(KEY_FILES)
    for variable, file in SECRET_FILES.items():
        assert compose["secrets"][file] == {"environment": variable}
    for name, start in KEY_FILES.items():
        assert set(compose["secrets"][name]) == {"file"}, name
        assert compose["secrets"][name]["file"].startswith(start), name
    for name in REQUIRED:
        with pytest.raises(MissingVariable, match=name):
            interpolated(compose, {**GENERATED, **REQUIRED, name: ""})
    assert set(SECRET_FILES) == set(SECRETS)
    resolved = interpolated(compose, GENERATED | REQUIRED)
    places = [where for where, value in strings(resolved) if set(GENERATED.values()) & {value}]
    assert sorted(places) == [("x-required-secrets", i) for i in range(len(SECRETS))]
    assert not [
        (where, value)
        for where, value in strings(resolved)
        for secret in GENERATED.values()
        if secret in value and where[0] != "x-required-secrets"
    ]


def secrets_seen(service: dict) -> tuple[set[str], set[str]]:
    """The secrets a service can read (its `secrets:`, every /run/secrets/<name> it names and
    every secret of .env interpolated anywhere in it: environment, command, healthcheck), and
    those of them it mounts."""
    mounted = {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}
    seen = set(mounted)
    for _, value in strings(service):
        seen |= set(re.findall(r"/run/secrets/(\w+)", value))
        seen |= {
            SECRET_FILES[m["name"]] for m in _VARIABLE.finditer(value) if m["name"] in SECRET_FILES
        }
    return seen, mounted


def test_each_service_sees_only_the_secrets_it_needs(compose):
    services = compose["services"]
    assert set(services) == set(SECRETS_OF)
    for name, service in services.items():
        seen, mounted = secrets_seen(service)
        assert seen == SECRETS_OF[name], (name, seen ^ SECRETS_OF[name])
        # Every secret it reads is mounted, and every secret mounted is read.
        assert mounted == seen, name
    for name in WORKERS:
        keys = set(services[name]["environment"])
        assert not [k for k in keys if re.search(r"JWT|FERNET|SQL_ALCHEMY_CONN", k)], name


# A command may read a secret's file only into the shell's printf (a builtin: no process gets
# the value as an argument) or into one command's environment variable (REDISCLI_AUTH=...).
_READ = re.compile(r'"\$?\$\(cat /run/secrets/\w+\)"')
_SAFE_READ = re.compile(
    r'(?:\bprintf (?:%s|"[^"]*"|\'[^\']*\') |(?:^|[\s\'])[A-Z_]+=)"\$?\$\(cat /run/secrets/\w+\)"'
)


def commands(service: dict) -> list[str]:
    """Every command line of a service: its command, entrypoint and healthcheck, and the
    `_CMD` settings Airflow runs."""
    found = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        found += [value] if isinstance(value, str) else list(value or [])
    found += list((service.get("healthcheck") or {}).get("test", []))
    found += [v for k, v in (service.get("environment") or {}).items() if k.endswith("_CMD")]
    return [str(c) for c in found]


def test_no_secret_is_on_a_command_line_or_in_a_workers_environment(compose):
    resolved = interpolated(compose, GENERATED | REQUIRED)["services"]
    reads = 0
    for name, service in compose["services"].items():
        for line in commands(service):
            # No value interpolated into a command line...
            assert not [m for m in _VARIABLE.finditer(line) if m["name"] in SECRET_FILES], name
            # ...and a secret's file read only where no process gets it as an argument.
            found = len(_READ.findall(line))
            assert len(_SAFE_READ.findall(line)) == found, (name, line)
            reads += found
        assert "--requirepass" not in str(service.get("command")), name
        for line in commands(resolved[name]):
            assert not [v for v in GENERATED.values() if v in line], (name, line)
    assert reads >= 10
    # A worker runs the tasks' code: none of its environment variables holds a secret.
    for name in WORKERS:
        env = resolved[name]["environment"]
        assert not [k for k, v in env.items() if any(s in str(v) for s in GENERATED.values())]


def test_the_secret_commands_are_airflow_settings_that_take_them():
    # Airflow runs AIRFLOW__<SECTION>__<KEY>_CMD only for an option it registers as sensitive
    # (and silently ignores it otherwise).
    from airflow.configuration import conf

    keys = {
        k
        for service in load_compose()["services"].values()
        for k in (service.get("environment") or {})
        if k.endswith("_CMD")
    }
    assert keys
    for key in keys:
        section, option = key.removeprefix("AIRFLOW__").removesuffix("_CMD").lower().split("__")
        assert (section, option) in conf.sensitive_config_values, key


def test_the_secret_commands_read_the_files(compose, tmp_path):
    """What each `_CMD` setting gives, run as Airflow runs it, on secret files as the process
    form writes them (docker-compose.yaml's commands, with its hosts and /run/secrets mapped)."""
    from airflow.configuration import run_command

    values = {file: GENERATED[variable] for variable, file in SECRET_FILES.items()}
    values["airflow_fernet_key"] = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
    holder = cluster.Cluster(tmp_path)
    holder.write_secrets(values)
    pg, redis = values["postgres_password"], values["redis_password"]
    expected = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": (
            f"postgresql+psycopg2://airflow:{pg}@127.0.0.1:5/airflow"
        ),
        "AIRFLOW__CELERY__RESULT_BACKEND_CMD": (
            f"db+postgresql+psycopg2://airflow:{pg}@127.0.0.1:5/airflow"
        ),
        "AIRFLOW__CELERY__BROKER_URL_CMD": f"redis://:{redis}@127.0.0.1:6/0",
        "AIRFLOW__CORE__FERNET_KEY_CMD": values["airflow_fernet_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD": values["airflow_jwt_secret"],
        "AIRFLOW__API__SECRET_KEY_CMD": values["airflow_api_secret_key"],
    }
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = cluster.service_secret_env(
            name, secrets_dir=holder.secrets_dir, pg_port=5, redis_port=6
        )
        assert set(env) == {
            k for k in compose["services"][name]["environment"] if k.endswith("_CMD")
        }
        for key, command in env.items():
            assert run_command(command) == expected[key], (name, key)
    # In compose, the same commands name the containers' hosts.
    common = compose["services"]["airflow-scheduler"]["environment"]
    assert "@postgres/airflow" in common["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"]
    assert "@redis:6379/0" in common["AIRFLOW__CELERY__BROKER_URL_CMD"]


def test_postgres_and_redis_read_their_passwords_from_files(compose):
    services = compose["services"]
    postgres = services["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "POSTGRES_PASSWORD" not in postgres
    redis = services["redis"]
    script = redis["command"][-1]
    # The configuration file holding the password lives in memory, private to the redis user.
    assert "/run/redis" in redis["tmpfs"]
    assert "umask 077" in script
    assert re.search(r"printf 'requirepass %s\\n' .* > /run/redis/redis\.conf", script)
    assert script.rstrip().endswith("exec docker-entrypoint.sh redis-server /run/redis/redis.conf")
    assert "REDISCLI_AUTH=" in redis["healthcheck"]["test"][-1]
    assert "environment" not in redis


def test_the_api_server_is_published_on_loopback_by_default(compose):
    services = interpolated(compose, GENERATED | REQUIRED)["services"]
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


def test_an_sftp_server_stands_in_for_imaginepay_and_imagineone(compose, monkeypatch):
    from auto_refunds import locations

    resolved = interpolated(compose, GENERATED | REQUIRED)["services"]
    sftp = compose["services"]["sftp"]
    image, tag = sftp["image"].rsplit(":", 1)
    assert image == "atmoz/sftp" and tag != "latest"
    account, password, *_, folders = sftp["command"].split(":")
    assert (account, password) == ("auto-refunds", "")  # no password: keys only
    targets = {s["source"]: s["target"] for s in sftp["secrets"]}
    assert targets == {
        "sftp_host_key": "/etc/ssh/ssh_host_ed25519_key",
        "sftp_client_public_key": "/home/auto-refunds/.ssh/keys/auto-refunds.pub",
    }
    assert "ports" not in sftp  # the compose network only
    worker = resolved["airflow-worker"]
    assert worker["depends_on"]["sftp"]["condition"] == "service_healthy"
    for variable, path in LOCATIONS.items():
        assert path.lstrip("/") in folders.split(",")
        monkeypatch.setenv(variable, worker["environment"][variable])
        where = locations.resolve(variable.removeprefix("AIRFLOW_CONN_").lower(), Path("/d"))
        assert isinstance(where, locations.SftpLocation)
        assert (where.host, where.port, where.login, where.folder) == (
            "sftp",
            22,
            "auto-refunds",
            path,
        )
        assert where.host_key == REQUIRED["SFTP_HOST_PUBLIC_KEY"]
        assert where.key_file == "/run/secrets/sftp_client_key" and not where.private_key
    # The platform's other worker never runs our tasks: no location, no key.
    default = compose["services"]["airflow-worker-default"]
    assert not [k for k in default["environment"] if k.startswith("AIRFLOW_CONN_")]


def test_env_example_says_how_to_make_the_sftp_keys():
    variables = env_example()
    for name in ("SFTP_HOST_KEY_FILE", "SFTP_CLIENT_KEY_FILE", "SFTP_HOST_PUBLIC_KEY"):
        value, comments = variables[name]
        assert value == "", name
        assert comments, name
    assert variables["SFTP_HOST_KEY_FILE"][1][-1].startswith("ssh-keygen -t ed25519 ")
    assert variables["SFTP_CLIENT_KEY_FILE"][1][-1].startswith("ssh-keygen -t ed25519 ")
