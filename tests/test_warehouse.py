"""One writer at a time: a second run waits for the warehouse, then fails cleanly."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from auto_refunds.warehouse import WarehouseBusy, connect


def test_a_second_writer_waits_then_fails_naming_the_holder(settings):
    impatient = dataclasses.replace(settings, lock_timeout_seconds=0.5)
    with connect(settings):
        started = time.monotonic()
        busy = pytest.raises(WarehouseBusy, match=r"auto_refunds\.duckdb\.lock.*pid \d+")
        with busy, connect(impatient):
            pass
        assert time.monotonic() - started >= 0.5


class _Signal(logging.Handler):
    """Sets an event when the warehouse logs that a connection is waiting for the lock."""

    def __init__(self, event: threading.Event) -> None:
        super().__init__()
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("Waiting for the warehouse lock"):
            self.event.set()


def test_a_second_writer_goes_on_once_the_first_is_done(settings, caplog):
    holding, second_waits, release = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def first() -> None:
        with connect(settings) as con:
            con.execute("create table main.marker as select 1 as x")
            holding.set()
            release.wait(timeout=30)

    def second() -> None:
        with connect(settings) as con:
            # The first writer lets go only after the test set `release`.
            seen["released before"] = release.is_set()
            seen["marker"] = con.execute("select x from main.marker").fetchall()

    caplog.set_level(logging.INFO, logger="auto_refunds.warehouse")
    signal = _Signal(second_waits)
    logging.getLogger("auto_refunds.warehouse").addHandler(signal)
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        threads[0].start()
        assert holding.wait(timeout=30), "the first writer never got the warehouse"
        threads[1].start()
        assert second_waits.wait(timeout=30), "the second writer never met the held lock"
        assert "marker" not in seen
        release.set()
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=30)
        logging.getLogger("auto_refunds.warehouse").removeHandler(signal)
    assert seen == {"released before": True, "marker": [(1,)]}


CARD = "4111111111111111"
# A writer whose temporary table outgrows DuckDB's memory, as the numbered lines of a 40M-line
# extract do; it says so, then waits to be killed.
SPILLING_WRITER = f"""
import sys
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

with connect(Settings.from_env()) as con:
    con.execute(
        "create temp table lines as select 'T' || i || ',CL001,A1,SALE,,,10.00,2026-03-02,"
        "SETTLED,CREDIT,PIN,12/29,{CARD},1111' || repeat(' ', 60) as raw_line"
        " from range(3000000) as t(i)"
    )
    print("spilled", flush=True)
    sys.stdin.read()
"""


def test_what_a_killed_writer_spilled_is_removed_by_the_next_writer(settings):
    """DuckDB leaves a killed process's temporary files on disk until another connection spills
    into the folder, which a small run never does: they hold the rows as they were, a card number
    among them."""
    spill = settings.layout.warehouse.parent / "spill"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "plugins"),
        "AUTO_REFUNDS_DUCKDB_MEMORY_LIMIT": "64MB",
    }
    writer = subprocess.Popen(
        [sys.executable, "-c", SPILLING_WRITER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    # A writer that hangs before it says so is killed all the same: readline then ends.
    deadline = threading.Timer(120, writer.kill)
    deadline.start()
    try:
        assert writer.stdout.readline().strip() == "spilled"
    finally:
        deadline.cancel()
        writer.kill()
        writer.wait(timeout=30)
        writer.stdin.close()
        writer.stdout.close()
    left = [path for path in spill.iterdir() if path.is_file()]
    assert any(CARD.encode() in path.read_bytes() for path in left), "nothing was spilled"
    # The folder may be a link to a scratch disk: only DuckDB's own files are removed.
    (spill / "kept.txt").write_text("not DuckDB's")

    with connect(settings) as con:
        con.execute("select 1").fetchall()
    assert [path.name for path in spill.iterdir()] == ["kept.txt"]
