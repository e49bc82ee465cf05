"""What a task needs from Airflow's context, kept out of the DAG files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def run_date(context: Mapping[str, Any]) -> dt.date:
    """The date D a run processes: the ``as_of_date`` param if given, else the logical date.

    A manual run without a logical date (possible in Airflow 3) processes the day before it was
    triggered, as the scheduled run would.
    """
    override = (context.get("params") or {}).get("as_of_date")
    if override:
        return dt.date.fromisoformat(str(override))
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()
    return (context["dag_run"].run_after - dt.timedelta(days=1)).date()
