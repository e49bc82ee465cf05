"""A worklist to test against: sample data run through both DAGs' steps, and a real Airflow API
server (SimpleAuthManager, the embedded default) serving the plugin over it."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2026, 3, 2)
# (user, role, password): a clerk who resolves, a viewer who only reads.
USERS = (("clerk", "user", "clerk-pw"), ("viewer", "viewer", "viewer-pw"))


@contextmanager
def data_env(data_dir: Path):
    saved = os.environ.get("AUTO_REFUNDS_DATA_DIR")
    os.environ["AUTO_REFUNDS_DATA_DIR"] = str(data_dir)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AUTO_REFUNDS_DATA_DIR", None)
        else:
            os.environ["AUTO_REFUNDS_DATA_DIR"] = saved


def make_worklist(data_dir: Path, days: int, run_days: int) -> list[dt.date]:
    """Sample inputs for ``days`` days; the first ``run_days`` run (daily, ImaginePay's answer,
    reconciliation), as ``make run`` does."""
    from auto_refunds import daily, reconciliation
    from auto_refunds.demo import imaginepay_simulator, sample_data
    from auto_refunds.demo.run import drop_posted_credits
    from auto_refunds.settings import Settings

    with data_env(data_dir):
        settings = Settings.from_env()
        dates = sample_data.generate(
            data_dir, sample_data.Spec(START, days, credits=400, transactions=1600, seed=7)
        )
        for day in dates[:run_days]:
            drop_posted_credits(settings, day)
            daily.run_all(day, settings)
            imaginepay_simulator.answer(settings.layout, day)
            reconciliation.run_all(day, settings)
    return dates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiServer:
    def __init__(
        self,
        airflow_home: Path,
        data_dir: Path,
        log_path: Path,
        users: tuple[tuple[str, str, str], ...] = USERS,
        env_extra: dict[str, str] | None = None,
    ):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.users = users
        (airflow_home / "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps({user: password for user, _, password in users})
        )
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(airflow_home),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(
                f"{user}:{role}" for user, role, _ in users
            ),
            AUTO_REFUNDS_DATA_DIR=str(data_dir),
            PYTHONPATH=str(REPO / "plugins"),
        )
        env.update(env_extra or {})
        self.log = open(log_path, "wb")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API server exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/api/v2/monitor/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the API server did not answer within {timeout} s")

    def token(self, user: str) -> str:
        password = {name: pw for name, _, pw in self.users}[user]
        request = urllib.request.Request(
            self.url + "/auth/token",
            data=json.dumps({"username": user, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["access_token"]

    def stop(self) -> None:
        # Its own session: the server and any worker it forked, by this process's id.
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def small_worklist(tmp_path_factory) -> tuple[Path, list[dt.date]]:
    """A data root with three days of sample data, two of them run: (data_dir, dates)."""
    data_dir = tmp_path_factory.mktemp("worklist") / "data"
    data_dir.mkdir()
    return data_dir, make_worklist(data_dir, days=3, run_days=2)
