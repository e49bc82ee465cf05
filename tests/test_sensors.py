"""The reconciliation's sensor: the payment file of D, complete, or a clear failure."""

from __future__ import annotations

import datetime as dt
import os
import time
import types

import pytest

from auto_refunds import sensors
from auto_refunds.layout import PAYMENTS_HEADER

D0 = dt.date(2026, 1, 5)
DAY = dt.timedelta(hours=24)


def test_the_sensor_gives_up_naming_the_missing_file(settings):
    run = types.SimpleNamespace(start_date=dt.datetime(2026, 1, 5, tzinfo=dt.UTC), run_after=None)
    assert not sensors.payment_file_ready(D0, settings)
    with pytest.raises(sensors.PaymentFileMissing, match=r"payments_20260105\.csv"):
        sensors.fail_if_overdue(D0, run, DAY)
    recent = types.SimpleNamespace(start_date=dt.datetime.now(dt.UTC), run_after=None)
    sensors.fail_if_overdue(D0, recent, DAY)


def test_a_manual_run_does_not_wait_for_a_missing_file(settings):
    run = types.SimpleNamespace(start_date=dt.datetime.now(dt.UTC), run_after=None)
    with pytest.raises(sensors.PaymentFileMissing, match="a manual run does not wait"):
        sensors.poke_payment_file(D0, run, DAY, False)
    assert not sensors.poke_payment_file(D0, run, DAY, True)
    settings.layout.payments(D0).parent.mkdir(parents=True)
    settings.layout.payments(D0).write_text(",".join(PAYMENTS_HEADER) + "\n")
    assert sensors.poke_payment_file(D0, run, DAY, False)


@pytest.mark.parametrize("started_by_refund_file", [True, False], ids=["asset", "manual"])
def test_a_file_still_growing_is_waited_for_and_read_once_settled(
    settings, monkeypatch, started_by_refund_file
):
    from airflow.sdk.exceptions import AirflowRescheduleException

    monkeypatch.setenv("AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS", "60")
    run = types.SimpleNamespace(start_date=dt.datetime.now(dt.UTC), run_after=None)
    path = settings.layout.payments(D0)
    path.parent.mkdir(parents=True)
    path.write_text(",".join(PAYMENTS_HEADER) + "\n")

    def poke_until() -> dt.datetime:
        """The moment the sensor will look again: when the file will have held 60 s."""
        with pytest.raises(AirflowRescheduleException) as waiting:
            sensors.poke_payment_file(D0, run, DAY, started_by_refund_file)
        return waiting.value.reschedule_date

    assert poke_until() == dt.datetime.fromtimestamp(path.stat().st_mtime + 60, dt.UTC)
    # Still being copied in: another chunk 40 s after the first one.
    written = time.time() - 40
    os.utime(path, (written, written))
    with open(path, "a") as handle:
        handle.write("P1,CL1,A1,T1,,10.00,APPROVED,00,ok,2026-01-05\n")
    assert poke_until() == dt.datetime.fromtimestamp(path.stat().st_mtime + 60, dt.UTC)
    # Unchanged for the settle interval: read.
    settled = time.time() - 61
    os.utime(path, (settled, settled))
    assert sensors.poke_payment_file(D0, run, DAY, started_by_refund_file)
