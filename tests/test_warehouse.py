"""One writer at a time: a second run waits for the warehouse, then fails cleanly."""

from __future__ import annotations

import dataclasses
import threading
import time

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


def test_a_second_writer_goes_on_once_the_first_is_done(settings):
    released = threading.Event()

    def hold() -> None:
        with connect(settings) as con:
            con.execute("create table main.marker as select 1 as x")
            time.sleep(0.5)
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    with connect(settings) as con:
        assert released.is_set()
        assert con.execute("select x from main.marker").fetchall() == [(1,)]
    holder.join()
