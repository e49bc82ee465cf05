"""What the reconciliation's sensor asks of the payment file of D: there, complete, or overdue.

A payment file is complete once its size and modification time have held for the settle
interval (CONTRACT 7): a file still being copied in is never read half-written. As any write
moves the modification time, a file whose modification time is that old has held both.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from auto_refunds.errors import NeedsAPerson
from auto_refunds.settings import Settings

log = logging.getLogger(__name__)


class PaymentFileMissing(NeedsAPerson):
    action = "ask ImaginePay for the payment file of that date, drop it in the inbox, rerun"


class PaymentFileNotSettled(RuntimeError):
    """The payment file is still changing: a retry, later, reads it complete."""


def settled(path: Path, settle_seconds: float) -> bool:
    """``path`` is there and has not changed for ``settle_seconds``."""
    try:
        changed = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return time.time() - changed >= settle_seconds


def collect(as_of: dt.date, settings: Settings) -> str:
    """Collect D's payment file from ImaginePay's location into the inbox, if it is complete
    there (``collect``). A location that cannot be reached is logged, naming it and the file,
    and looked at again at the next poke: the sensor's timeout bounds the wait."""
    from auto_refunds import collect as collecting
    from auto_refunds.locations import LocationError

    try:
        return collecting.collect_payment_file(as_of, settings)
    except LocationError as error:
        log.warning("Collecting the payment file of %s failed: %s", as_of, error)
        return f"not collected: {error}"


def payment_file_ready(
    as_of: dt.date, settings: Settings | None = None, collecting: bool = True
) -> bool:
    """D's payment file is complete in the inbox, collected there first if it was not."""
    settings = settings or Settings.from_env()
    path = settings.layout.payments(as_of)
    remote = None if path.is_file() or not collecting else collect(as_of, settings)
    ready = settled(path, settings.payment_file_settle_seconds)
    state = "ready" if ready else ("still changing" if path.is_file() else "not there yet")
    log.info("Waiting for %s: %s%s", path, state, f" ({remote})" if remote else "")
    return ready


def fail_if_overdue(as_of: dt.date, dag_run, timeout: dt.timedelta) -> None:
    """Fail, naming the file, once the run has waited ``timeout`` for it."""
    started = dag_run.start_date or dag_run.run_after
    waited = dt.datetime.now(dt.UTC) - started
    if waited >= timeout:
        path = Settings.from_env().layout.payments(as_of)
        raise PaymentFileMissing(
            f"{path}: the payment file did not arrive within {timeout} "
            f"(waited {waited}); nothing was reconciled"
        )


def poke_payment_file(
    as_of: dt.date, dag_run, timeout: dt.timedelta, started_by_refund_file: bool
) -> bool:
    """One poke of the sensor.

    A run the refund file started waits for ImaginePay's answer, up to ``timeout``. A manual run
    (or ``airflow dags test``) asks to reconcile D now: without the file it fails at once,
    naming it, instead of holding the run for a day. A file that is there (in the inbox, or at
    ImaginePay's location, from which it is collected) but still changing is waited for, in
    either run, until the moment it will have held for the settle interval (not the next poke,
    minutes later).
    """
    from auto_refunds import collect as collecting

    settings = Settings.from_env()
    path = settings.layout.payments(as_of)
    remote = None if path.is_file() else collect(as_of, settings)
    if payment_file_ready(as_of, settings, collecting=False):
        return True
    if not started_by_refund_file and not path.is_file() and remote == collecting.ABSENT:
        raise PaymentFileMissing(
            f"{path}: file not found, nor at ImaginePay's location (a manual run does not wait "
            "for it)"
        )
    fail_if_overdue(as_of, dag_run, timeout)
    try:
        changed = path.stat().st_mtime
    except FileNotFoundError:
        if remote != collecting.CHANGING:
            return False
        # Still being written at the location: look again once it can have held still.
        changed = time.time()
    from airflow.sdk.exceptions import AirflowRescheduleException

    settles = max(changed + settings.payment_file_settle_seconds, time.time() + 1)
    raise AirflowRescheduleException(dt.datetime.fromtimestamp(settles, dt.UTC))
