"""The steps of both DAGs, in their order, as data: the DAG files make one task of each
(``dag_tasks``), and ``run`` runs them one after the other in one process (the tests, the
benchmark, the CLI, the demo).

A step names its function as ``module:function``, imported only when the step runs: the DAG
files import this module when they are parsed, which must load nothing heavy. Each function
takes the run's date D first, then the step's own arguments, then ``settings``.

After each publish, a step of its own delivers what it published to its location (CONTRACT 9,
``delivery``): a retry of the delivery repeats the transfer, never the publish.

The last step of each is the worklist's snapshot of D (``refresh_worklist``): the pages read it
instead of the warehouse. It is rebuilt from the warehouse as it is, so it comes after the
publish, as a step of its own, and a retry of it, or a later run, writes it again whole.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auto_refunds.models import DAILY_MODELS, RECONCILIATION_MODELS


def resolve(function: str) -> Callable[..., Any]:
    """The function named ``module:function``, its module imported now."""
    module, name = function.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Step:
    task_id: str
    function: str
    """``module:function``, called as ``function(D, *args, settings=...)``."""
    args: tuple[str, ...] = ()

    def __call__(self, as_of: dt.date, settings=None) -> Any:
        return resolve(self.function)(as_of, *self.args, settings=settings)


def _models(module: str, models) -> tuple[Step, ...]:
    return tuple(Step(model.name, f"{module}:build_model", (model.name,)) for model in models)


REFRESH_WORKLIST = Step("refresh_worklist", "auto_refunds.worklist.snapshot:refresh")

DAILY_STEPS = (
    Step("extract", "auto_refunds.daily:extract"),
    *_models("auto_refunds.daily", DAILY_MODELS),
    Step("audit", "auto_refunds.daily:audit"),
    Step("publish", "auto_refunds.daily:publish"),
    Step("deliver_refund_file", "auto_refunds.delivery:deliver_refund_file"),
    REFRESH_WORKLIST,
)
"""The ``auto_refunds`` DAG, task by task."""

RECONCILIATION_STEPS = (
    Step("load", "auto_refunds.reconciliation:load"),
    *_models("auto_refunds.reconciliation", RECONCILIATION_MODELS),
    Step("audit", "auto_refunds.reconciliation:audit"),
    Step("publish", "auto_refunds.reconciliation:publish"),
    Step("deliver_postings", "auto_refunds.delivery:deliver_postings"),
    REFRESH_WORKLIST,
)
"""The reconciliation of one date: the ``refund_reconciliation`` DAG's tasks for D, and what its
``reconcile_*_dates`` tasks run for each other date they reconcile."""

RECONCILE_EARLIER_DATES = Step(
    "reconcile_earlier_dates", "auto_refunds.reconciliation:reconcile_pending", ("before",)
)
RECONCILE_LATER_DATES = Step(
    "reconcile_later_dates", "auto_refunds.reconciliation:reconcile_pending", ("after",)
)


def run(steps: Sequence[Step], as_of: dt.date, settings=None) -> dict[str, Any]:
    """Run ``steps`` for D in order, in this process; returns each step's result by task id."""
    if settings is None:
        from auto_refunds.settings import Settings

        settings = Settings.from_env()
    return {step.task_id: step(as_of, settings) for step in steps}


def run_daily(as_of: dt.date, settings=None):
    """The whole daily run of D; returns what the publish published (``daily.Published``)."""
    return run(DAILY_STEPS, as_of, settings)["publish"]


def run_reconciliation(as_of: dt.date, settings=None):
    """The reconciliation of D; returns what it reconciled (``reconciliation.Reconciled``)."""
    return run(RECONCILIATION_STEPS, as_of, settings)["publish"]
