"""The tasks of both DAG files, one per step of ``pipeline``, chained in order.

Each task calls its step for the run's date D (``runtime.call``: a failure that needs a person
fails it without retries) and returns the step's result as its XCom, a dataclass as a dict. A task
with outlets gives each of their events that result as its extra (the refund-file Asset: its
event names D). The package is imported only when a task runs: a DAG file is parsed often.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import task

from auto_refunds.pipeline import Step, resolve


def _run_step(function: str, *args: str, **context: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    from auto_refunds import runtime

    result = runtime.call(resolve(function), context, *args)
    if is_dataclass(result) and not isinstance(result, type):
        result = asdict(result)
    for outlet in context["task"].outlets:
        context["outlet_events"][outlet].extra = result
    return result


def step_tasks(steps: Sequence[Step], outlets: Mapping[str, list] | None = None) -> dict:
    """One task per step, each downstream of the one before; ``outlets`` by task id. Returns the
    tasks by task id."""
    made = {}
    previous = None
    for step in steps:
        made[step.task_id] = task(
            _run_step, task_id=step.task_id, outlets=(outlets or {}).get(step.task_id, [])
        )(step.function, *step.args)
        if previous is not None:
            previous >> made[step.task_id]
        previous = made[step.task_id]
    return made
