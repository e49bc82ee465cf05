"""
# refund_reconciliation

Reconciles ImaginePay's answers to the refund file of date **D**.

Started when `auto_refunds` publishes a refund file (the refund-file Asset; its event names D),
or by hand / `airflow dags test refund_reconciliation D` (then the logical date is D).

1. **wait_for_payment_file** waits for `inbox/imaginepay/payments_YYYYMMDD.csv` in reschedule
   mode (no worker slot held) until it is complete (unchanged for
   `AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS`); after `AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS`
   (24) it fails naming the missing file. A manual run (or `dags test`) does not wait for a file
   that is not there: it fails at once, naming it.
2. **reconcile_earlier_dates** reconciles, oldest first, every published refund file before D not
   reconciled yet whose payment file is complete: Airflow may batch several refund-file events into
   one run, or attach one to no run, so what to reconcile is decided from the published files.
3. **load** lands the file line by line; the same content under another name is reported and
   changes nothing.
4. One task per **SQL model**: match each answer to the refund we sent, age unanswered refunds,
   build the ledger moves, exceptions and postings.
5. **audit** runs the Great Expectations gate for the postings.
6. **publish** moves the ledger forward, replaces D's RECONCILIATION exceptions and postings in
   one transaction, then writes `outbox/imagineone/payment_postings_YYYYMMDD.csv` atomically.
7. **reconcile_later_dates** does what step 2 does for the dates after D.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import Param, dag, task

from auto_refunds.assets import REFUND_FILE
from auto_refunds.deployment import AS_OF_DATE_PARAM, DEFAULT_ARGS
from auto_refunds.models import RECONCILIATION_MODELS

# Read at parse time, cheaply: the sensor's timeout and poke interval are part of the task's
# definition.
PAYMENT_FILE_TIMEOUT = dt.timedelta(
    hours=float(os.environ.get("AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS") or 24)
)
PAYMENT_FILE_POKE_SECONDS = float(os.environ.get("AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS") or 300)


@dag(
    dag_id="refund_reconciliation",
    schedule=[REFUND_FILE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # DuckDB takes one writer: runs and their tasks go one at a time.
    max_active_runs=1,
    max_active_tasks=1,
    default_args=DEFAULT_ARGS,
    params={"as_of_date": Param(**AS_OF_DATE_PARAM)},
    tags=["auto-refunds", "imaginepay", "imagineone", "reconciliation"],
    doc_md=__doc__,
)
def refund_reconciliation():
    @task.sensor(
        poke_interval=PAYMENT_FILE_POKE_SECONDS,
        timeout=PAYMENT_FILE_TIMEOUT.total_seconds(),
        mode="reschedule",
    )
    def wait_for_payment_file(**context) -> bool:
        from auto_refunds import runtime, sensors

        return runtime.call(
            sensors.poke_payment_file,
            context,
            context["dag_run"],
            PAYMENT_FILE_TIMEOUT,
            bool(context.get("triggering_asset_events")),
        )

    @task
    def reconcile_earlier_dates(**context) -> list[str]:
        from auto_refunds import reconciliation, runtime

        return runtime.call(reconciliation.reconcile_pending, context, "before")

    @task
    def load(**context) -> dict:
        from auto_refunds import reconciliation, runtime

        return runtime.call(reconciliation.load, context)

    @task
    def build_model(model_name: str, **context) -> int | None:
        from auto_refunds import reconciliation, runtime

        return runtime.call(reconciliation.build_model, context, model_name)

    @task
    def audit(**context) -> str:
        from auto_refunds import reconciliation, runtime

        return runtime.call(reconciliation.audit, context)

    @task
    def publish(**context) -> dict:
        from auto_refunds import reconciliation, runtime

        return reconciliation.as_dict(runtime.call(reconciliation.publish, context))

    @task
    def reconcile_later_dates(**context) -> list[str]:
        from auto_refunds import reconciliation, runtime

        return runtime.call(reconciliation.reconcile_pending, context, "after")

    previous = load()
    wait_for_payment_file() >> reconcile_earlier_dates() >> previous
    for model in RECONCILIATION_MODELS:
        built = build_model.override(task_id=model.name)(model.name)
        previous >> built
        previous = built
    previous >> audit() >> publish() >> reconcile_later_dates()


refund_reconciliation()
