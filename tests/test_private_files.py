"""CONTRACT 7: what the product writes under the data root, and the warehouse, grants nothing to
others, whatever the umask: the demo's whole loop under umask 000, the data root it refuses, and
`make airflow`'s own files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from auto_refunds.layout import FILE_MODE, FOLDER_MODE
from auto_refunds.settings import REPO_ROOT, Settings, SettingsError

START = dt.date(2026, 3, 2)


def modes(root: Path) -> dict[str, tuple[int, int]]:
    """{path under root's parent: (its mode, the mode chosen for its kind)}"""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        chosen = FOLDER_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        found[str(path.relative_to(root.parent))] = (stat.S_IMODE(info.st_mode), chosen)
    return found


def airflow_dags_test_in_process(command, stdout, **_):
    """`airflow dags test DAG D` as the demo runs it, the DAG's steps in this process."""
    from auto_refunds import daily, reconciliation

    dag_id, day = command[3], dt.date.fromisoformat(command[4])
    steps = daily if dag_id == "auto_refunds" else reconciliation
    steps.run_all(day, Settings.from_env())
    stdout.write(f"DagRun Finished: dag_id={dag_id}, logical_date={day}, state=success\n")
    return subprocess.CompletedProcess(command, 0)


def test_the_demo_loop_writes_nothing_others_can_use_whatever_the_umask(tmp_path, monkeypatch):
    from auto_refunds.demo import run
    from auto_refunds.warehouse import connect

    root = tmp_path / "data"  # created by the run itself
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
    monkeypatch.setattr(run.subprocess, "run", airflow_dags_test_in_process)
    previous = os.umask(0)
    try:
        argv = ["--start", str(START), "--days", "2", "--credits", "200", "--transactions", "800"]
        assert run.main(argv) == 0
        settings = Settings.from_env()
        # The warehouse's WAL (a write not checkpointed yet) and DuckDB's spill folder.
        with connect(settings) as con:
            con.execute("set memory_limit = '64MB'; set threads = 1")
            con.execute(
                "create table spilled as select md5(range::varchar) as text from range(2500000) "
                "order by text"
            )
            found = modes(root)
    finally:
        os.umask(previous)
    warehouse = settings.layout.warehouse
    for written in (
        settings.layout.client_rules,
        settings.layout.credits(START),
        settings.layout.transactions(START),
        settings.layout.payments(START),
        settings.layout.refunds(START),
        settings.layout.postings(START),
        root / "logs" / f"auto_refunds_{START:%Y%m%d}.log",
        warehouse,
        warehouse.with_name(warehouse.name + ".wal"),
        warehouse.parent / "spill",
    ):
        assert str(written.relative_to(tmp_path)) in found, written
    assert {name: f"{mode:04o}" for name, (mode, chosen) in found.items() if mode != chosen} == {}
    assert all(mode & 0o007 == 0 for mode, _ in found.values())


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "shared" / "data"
    folder.mkdir(parents=True, mode=0o750)
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(folder))
    return folder


def test_a_data_root_others_can_write_is_refused(root):
    root.chmod(0o777)
    with pytest.raises(SettingsError, match=f"{root} is writable by others \\(mode 0777\\)"):
        Settings.from_env()
    root.chmod(0o1777)  # the sticky bit guards the names in it, not the files ours replace
    with pytest.raises(SettingsError, match="writable by others"):
        Settings.from_env()
    root.chmod(0o770)  # a group of the operator's choosing may share it
    assert Settings.from_env().data_dir == root


def test_a_data_root_below_a_folder_others_can_write_is_refused(root):
    root.parent.chmod(0o777)
    with pytest.raises(SettingsError, match=f"{root.parent} above it is writable by others"):
        Settings.from_env()
    root.parent.chmod(0o1777)  # as /tmp: nobody can rename away what is not theirs
    assert Settings.from_env().data_dir == root


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away takes root")
def test_a_data_root_owned_by_another_user_is_refused(root):
    os.chown(root, 4242, -1)
    with pytest.raises(SettingsError, match="belongs to user id 4242"):
        Settings.from_env()


def test_a_data_root_the_settings_create_is_private(tmp_path, monkeypatch):
    root = tmp_path / "new" / "data"
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
    previous = os.umask(0)
    try:
        Settings.from_env()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(root.stat().st_mode) == FOLDER_MODE
    assert stat.S_IMODE(root.parent.stat().st_mode) == FOLDER_MODE


FAKE_AIRFLOW = """#!/bin/sh
echo "$1 umask=$(umask) host=${AIRFLOW__API__HOST-unset}" >> "$AIRFLOW_HOME/calls"
passwords="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
case "$1" in
  db) : > "$AIRFLOW_HOME/airflow.db" ;;
  standalone) echo '{"admin": "secret"}' > "$passwords" ;;
esac
"""


def make_airflow(tmp_path: Path, home: Path, **env: str) -> list[str]:
    """`make airflow` under umask 000, with a stand-in `airflow` that records how it was
    started and creates the files the real one does, with the modes the umask gives."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "airflow").write_text(FAKE_AIRFLOW)
    (bin_dir / "airflow").chmod(0o755)
    installed = tmp_path / "installed"  # newer than the requirements: no pip install
    installed.touch()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW")
    }
    environment.update(env, AIRFLOW_HOME=str(home))
    previous = os.umask(0)
    try:
        subprocess.run(
            [
                shutil.which("make") or "make",
                "--no-print-directory",
                "airflow",
                f"INSTALLED={installed}",
                f"PATH={bin_dir}:/usr/bin:/bin",
            ],
            cwd=REPO_ROOT,
            env=environment,
            check=True,
            capture_output=True,
            timeout=60,
        )
    finally:
        os.umask(previous)
    return (home / "calls").read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_airflow_keeps_its_password_and_database_private_and_serves_this_machine(tmp_path):
    home = tmp_path / "airflow-home"
    assert make_airflow(tmp_path, home) == [
        "db umask=0077 host=unset",
        "standalone umask=0077 host=127.0.0.1",
    ]
    assert {path.name: f"{stat.S_IMODE(path.stat().st_mode):04o}" for path in home.iterdir()} == {
        "airflow.db": "0600",
        "simple_auth_manager_passwords.json.generated": "0600",
        "db-migrate.log": "0600",
        "calls": "0600",
    }
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # A wider database left by an earlier version is narrowed; the host can be overridden.
    (home / "airflow.db").chmod(0o644)
    home.chmod(0o755)
    assert make_airflow(tmp_path, home, AIRFLOW__API__HOST="0.0.0.0")[-1] == (
        "standalone umask=0077 host=0.0.0.0"
    )
    assert stat.S_IMODE((home / "airflow.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
