"""docker-compose.yaml's topology as local processes, for `make test-distributed`.

Throwaway PostgreSQL and Redis (own data folder in a temporary folder, a free port on 127.0.0.1,
a generated password), then every Airflow service of docker-compose.yaml, each with the command
compose gives it, and the settings of deploy/airflow.env plus the per-deployment values compose
sets (here: local hosts, free ports, temporary folders, secrets made for this run).

The secrets are files here too, one per compose secret in a private folder that stands for
/run/secrets, and each service gets exactly the `_CMD` settings compose gives it, read from
docker-compose.yaml (``service_secret_env``): a service that lacks a secret it needs fails here.

The `sftp` service is OpenSSH's sshd too, started as tests/sftp_server.py starts it (a loopback
port, throwaway host and client keys made for this run, an SFTP-only account): the warehouse
worker gets compose's three locations (``location_env``), the host, port, account, folders and
key file mapped to this machine's, the host key pinned as compose pins it.

What only this form adds (``LOCAL_ONLY``): the ports that containers would each have to
themselves, AIRFLOW_HOME, and the short waits of ``TEST_TUNING`` so that a lost worker and a late
payment file are seen within minutes. tests/test_deployment.py checks that nothing else differs.

Every process started here is stopped by its pid (with its process group, as a container stop
would), whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
SHARED_ENV_FILE = REPO / "deploy" / "airflow.env"
PG_BIN = Path(os.environ.get("AUTO_REFUNDS_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN_USER = "airflow"

# Waits shortened so the test finishes in minutes; each is a setting of Airflow or of the product.
TEST_TUNING = {
    # A lost worker's task is declared dead after this long without a heartbeat (Airflow: 300 s).
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    # The sensor looks for the payment file every 5 s (product default 300 s) and reads it once it
    # held 2 s (default 60 s); the simulator renames its files into place whole.
    "AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS": "5",
    "AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS": "2",
}
# Settings that exist only because every service shares one machine here.
LOCAL_ONLY = (
    "AIRFLOW_HOME",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT",
    "PYTHONPATH",
    "PATH",
)


# The secrets of docker-compose.yaml (its top-level `secrets:`), as files in this form.
SECRET_NAMES = (
    "postgres_password",
    "redis_password",
    "airflow_admin_password",
    "airflow_jwt_secret",
    "airflow_api_secret_key",
    "airflow_fernet_key",
)
# Where compose mounts them, and the hosts its settings name, replaced by their local places.
SECRETS_MOUNT = "/run/secrets/"


def read_env_file(path: Path = SHARED_ENV_FILE) -> dict[str, str]:
    """KEY=value lines, as compose's env_file reads them (no quotes or interpolation used)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    return env


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def airflow_services() -> dict[str, list[str]]:
    """Each long-running Airflow service of docker-compose.yaml and its `airflow` arguments."""
    services = {}
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("auto-refunds-airflow") and name != "airflow-init":
            services[name] = shlex.split(service["command"])
    return services


def service_secret_env(
    name: str, *, secrets_dir: Path, pg_port: int, redis_port: int
) -> dict[str, str]:
    """The `_CMD` settings compose gives service ``name``, reading this form's secret files."""
    service = compose()["services"][name.split("#")[0]]
    env = {}
    for key, value in service["environment"].items():
        if key.endswith("_CMD"):
            value = value.replace("$$", "$").replace(SECRETS_MOUNT, f"{secrets_dir}/")
            value = value.replace("@postgres/", f"@127.0.0.1:{pg_port}/")
            env[key] = value.replace("@redis:6379/", f"@127.0.0.1:{redis_port}/")
    return env


def free_port(taken: list[int] | None = None) -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    if taken is not None:
        taken.append(port)
    return port


def deployment_env(*, api_port: int, passwords_file: Path, data_dir: Path) -> dict[str, str]:
    """The values compose sets per deployment for every Airflow service (its common
    `environment:`), for this machine; the secrets come per service (``service_secret_env``)."""
    return {
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AUTO_REFUNDS_DATA_DIR": str(data_dir),
        "AUTO_REFUNDS_SQL_DIR": str(REPO / "include" / "sql"),
        "AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS": "24",
    }


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path


@dataclass
class Cluster:
    root: Path
    processes: list[Process] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    admin_password: str = ""
    api_port: int = 0
    pg_port: int = 0
    redis_port: int = 0
    secrets_dir: Path | None = None
    sftpd: object | None = None
    ports: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    # -- processes ---------------------------------------------------------------------------
    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, **kw) -> Process:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            popen = subprocess.Popen(
                argv,
                env=env if env is not None else self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: stopping it takes its children too, as a container stop.
                start_new_session=True,
                **kw,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def kill(self, process: Process, sig: int = signal.SIGKILL) -> None:
        """Signal the process group of ``process`` (its pid is the group's id)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, sig)

    def stop(self, process: Process, grace: float = 20) -> None:
        if process.popen.poll() is None:
            self.kill(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(grace)
        # Whatever is left of its group (a pool child, a task process) goes too.
        self.kill(process, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(10)

    def stop_all(self) -> None:
        # Airflow first, then the broker and the database they use.
        for process in reversed(self.processes):
            self.stop(process)
        if self.sftpd is not None:
            self.sftpd.stop()

    def service_env(self, name: str) -> dict[str, str]:
        """What compose's service ``name`` sees: the shared settings, its own secrets and (the
        warehouse worker) the locations."""
        return {
            **self.env,
            **service_secret_env(
                name,
                secrets_dir=self.secrets_dir,
                pg_port=self.pg_port,
                redis_port=self.redis_port,
            ),
            **self.location_env(name),
        }

    # -- the sftp service ------------------------------------------------------------------
    def start_sftp(self) -> None:
        """The `sftp` service: sshd on a loopback port; our client key as its secret's file."""
        import sys

        sys.path.insert(0, str(REPO / "tests"))
        from sftp_server import Sftpd

        self.sftpd = Sftpd(self.root / "sftpd")
        self.sftpd.start()
        key = self.secrets_dir / "sftp_client_key"
        key.touch(mode=0o600)
        key.write_bytes(self.sftpd.client_key.read_bytes())

    def remote(self, path: str) -> Path:
        """Where a folder of the `sftp` service (its chroot's absolute path) is here."""
        return self.sftpd.remote / path.lstrip("/")

    def location_env(self, name: str) -> dict[str, str]:
        """The AIRFLOW_CONN_* variables compose gives service ``name``, for this machine."""
        env = {}
        service = compose()["services"][name.split("#")[0]]
        for key, value in service["environment"].items():
            if not key.startswith("AIRFLOW_CONN_"):
                continue
            value = re.sub(r"\$\{SFTP_HOST_PUBLIC_KEY:\?[^}]*\}", self.sftpd.host_key, value)
            connection = json.loads(value)
            assert connection["host"] == "sftp" and connection["port"] == 22
            connection["host"], connection["port"] = "127.0.0.1", self.sftpd.port
            connection["login"] = self.sftpd.user
            extra = connection["extra"]
            folder = self.remote(extra["path"])
            folder.mkdir(parents=True, exist_ok=True)
            extra["path"] = str(folder)
            extra["key_file"] = extra["key_file"].replace(SECRETS_MOUNT, f"{self.secrets_dir}/")
            env[key] = json.dumps(connection)
        return env

    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        """The CLI with what airflow-init has: the metadata DB."""
        result = subprocess.run(
            ["airflow", *args],
            env=self.service_env("airflow-init"),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode:
            raise AssertionError(f"airflow {' '.join(args)}: {result.stdout}\n{result.stderr}")
        return result.stdout

    def tail(self, lines: int = 40) -> str:
        out = []
        for process in self.processes:
            text = process.log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {process.name} (pid {process.popen.pid}) ---\n" + "\n".join(text))
        return "\n".join(out)

    # -- services ----------------------------------------------------------------------------
    def start_postgres(self) -> tuple[int, str]:
        password = secrets.token_hex(16)
        port = free_port(self.ports)
        pgdata = self.root / "postgres"
        pgdata.mkdir(mode=0o700)
        pwfile = pgdata.parent / "pg-password"
        pwfile.write_text(password + "\n")
        as_user: dict = {}
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: the Debian package's user runs them.
            shutil.chown(pgdata, "postgres")
            shutil.chown(pwfile, "postgres")
            as_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "airflow",
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **as_user,
        )
        pwfile.unlink()
        self.start(
            "postgres",
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
            **as_user,
        )
        env = {"PGPASSWORD": password, "PATH": os.environ["PATH"]}
        wait_for(
            lambda: (
                subprocess.run(
                    [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                    capture_output=True,
                ).returncode
                == 0
            ),
            60,
            "PostgreSQL to accept connections",
        )
        subprocess.run(
            [
                str(PG_BIN / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "airflow",
                "airflow",
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        return port, password

    def start_redis(self) -> tuple[int, str]:
        password = secrets.token_hex(16)
        port = free_port(self.ports)
        folder = self.root / "redis"
        folder.mkdir(mode=0o700)
        config = folder / "redis.conf"
        # The password in a private file, not on a command line.
        config.write_text(
            f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {folder}\n"
            'save ""\nappendonly no\nprotected-mode yes\n'
        )
        config.chmod(0o600)
        self.start(
            "redis",
            [shutil.which("redis-server") or "redis-server", str(config)],
            env={"PATH": os.environ["PATH"]},
        )
        wait_for(lambda: redis_ping(port, password), 30, "Redis to answer")
        return port, password

    def write_secrets(self, values: dict[str, str]) -> None:
        """One private file per secret, as compose mounts them (a trailing newline, as a file
        an operator wrote would have: the `_CMD` settings drop it)."""
        self.secrets_dir = self.root / "secrets"
        self.secrets_dir.mkdir(mode=0o700)
        for name in SECRET_NAMES:
            path = self.secrets_dir / name
            path.touch(mode=0o600)
            path.write_text(values[name] + "\n")

    def configure(self, data_dir: Path, tuning: dict[str, str]) -> None:
        self.pg_port, pg_password = self.start_postgres()
        self.redis_port, redis_password = self.start_redis()
        self.api_port = free_port(self.ports)
        self.admin_password = secrets.token_urlsafe(18)
        passwords_file = self.root / "auth" / "passwords.json"
        passwords_file.parent.mkdir(mode=0o700)
        passwords_file.write_text(json.dumps({ADMIN_USER: self.admin_password}) + "\n")
        passwords_file.chmod(0o600)
        from cryptography.fernet import Fernet

        self.write_secrets(
            {
                "postgres_password": pg_password,
                "redis_password": redis_password,
                "airflow_admin_password": self.admin_password,
                "airflow_jwt_secret": secrets.token_hex(32),
                "airflow_api_secret_key": secrets.token_hex(32),
                "airflow_fernet_key": Fernet.generate_key().decode(),
            }
        )
        self.start_sftp()
        home = self.root / "airflow-home"
        home.mkdir()
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUTO_REFUNDS"))
        }
        self.env = {
            **base,
            **read_env_file(),
            **deployment_env(
                api_port=self.api_port, passwords_file=passwords_file, data_dir=data_dir
            ),
            **tuning,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port(self.ports)),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port(self.ports)),
            "PYTHONPATH": str(REPO / "plugins"),
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        }

    def start_airflow(self) -> None:
        started = time.monotonic()
        self.airflow("db", "migrate", timeout=600)
        self.timings["db_migrate_s"] = time.monotonic() - started
        for name, argv in airflow_services().items():
            self.start_service(name, argv)
        wait_for(
            lambda: http_ok(f"{self.base_url}/api/v2/monitor/health"),
            180,
            "the API server to answer",
        )
        self.timings["services_up_s"] = time.monotonic() - started

    def start_service(self, name: str, argv: list[str]) -> Process:
        """Compose's service ``name`` (``name#2``: a second process of it) with its secrets."""
        env = self.service_env(name)
        if argv[:2] == ["celery", "worker"]:
            # Each worker serves its logs on a port of its own (a container has its own).
            port = free_port(self.ports)
            env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port)}
        return self.start(name, ["airflow", *argv], env=env)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


def wait_for(check, timeout: float, what: str, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def redis_ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            time.sleep(0.1)
            return b"+PONG" in sock.recv(100)
    except OSError:
        return False


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Api:
    """The REST API v2, as an operator's script uses it: a token from /auth/token."""

    def __init__(self, base_url: str, user: str, password: str):
        self.base_url = base_url
        body = json.dumps({"username": user, "password": password}).encode()
        request = urllib.request.Request(
            f"{base_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            self.token = json.load(response)["access_token"]

    def call(
        self, method: str, path: str, body: dict | None = None, accept: str = "application/json"
    ):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns?limit=100&order_by=run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.get(f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")[
            "task_instances"
        ]
