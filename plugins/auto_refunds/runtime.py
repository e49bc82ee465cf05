"""What a task needs from Airflow's context, kept out of the DAG files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from auto_refunds.errors import NeedsAPerson


def run_date(context: Mapping[str, Any]) -> dt.date:
    """The date D a run processes.

    In order: the ``as_of_date`` param; the date of the refund file whose publication started
    the run (the latest, if several events arrived together); the logical date. A manual run
    without a logical date (possible in Airflow 3) processes the day before it was triggered.

    Every task calls this first, so it also installs the card-number log filter in the task's
    process (CONTRACT 7: no card number in any log), after Airflow has set up its logging, and
    makes what the task creates private whatever the worker's umask (``layout.private_umask``).
    """
    from auto_refunds.layout import private_umask
    from auto_refunds.log_masking import install_log_filter

    private_umask()
    install_log_filter()
    override = (context.get("params") or {}).get("as_of_date")
    if override:
        return dt.date.fromisoformat(str(override))
    events = context.get("triggering_asset_events") or {}
    published = [
        dt.date.fromisoformat(event.extra["as_of_date"])
        for asset_events in events.values()
        for event in asset_events
        if (event.extra or {}).get("as_of_date")
    ]
    if published:
        return max(published)
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()
    return (context["dag_run"].run_after - dt.timedelta(days=1)).date()


def call(step: Callable[..., Any], context: Mapping[str, Any], *args: Any) -> Any:
    """Run one step of the package for the run's date D, as one task.

    A failure that needs a person fails the task at once, without the retries meant for
    failures that heal by themselves (see ``auto_refunds.errors``).
    """
    try:
        return step(run_date(context), *args)
    except NeedsAPerson as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
