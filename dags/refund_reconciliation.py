"""
# refund_reconciliation

Reconciles ImaginePay's answers to the refund file of date **D**.

Started when `auto_refunds` publishes a refund file (the refund-file Asset; its event names D),
or by hand / `airflow dags test refund_reconciliation D` (then the logical date is D).

1. **wait_for_payment_file** waits for `inbox/imaginepay/payments_YYYYMMDD.csv` in reschedule
   mode (no worker slot held); after `AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS` (24) it fails
   naming the missing file. A manual run (or `dags test`) does not wait: without the file it
   fails at once, naming it.
2. **load** lands the file line by line; the same content under another name is reported and
   changes nothing.
3. One task per **SQL model**: match each answer to the refund we sent, age unanswered refunds,
   build the ledger moves, exceptions and postings.
4. **audit** runs the Great Expectations gate for the postings.
5. **publish** writes `outbox/imagineone/payment_postings_YYYYMMDD.csv` atomically, then moves
   the ledger forward and replaces D's RECONCILIATION exceptions in one transaction.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import dag, task

from auto_refunds.assets import REFUND_FILE
from auto_refunds.deployment import DEFAULT_ARGS
from auto_refunds.models import RECONCILIATION_MODELS

# Read at parse time, cheaply: the sensor's timeout is part of the task's definition.
PAYMENT_FILE_TIMEOUT = dt.timedelta(
    hours=float(os.environ.get("AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS") or 24)
)


@dag(
    dag_id="refund_reconciliation",
    schedule=[REFUND_FILE],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # DuckDB takes one writer: runs and their tasks go one at a time.
    max_active_runs=1,
    max_active_tasks=1,
    default_args=DEFAULT_ARGS,
    params={"as_of_date": None},
    tags=["auto-refunds", "imaginepay", "imagineone", "reconciliation"],
    doc_md=__doc__,
)
def refund_reconciliation():
    @task.sensor(
        poke_interval=300,
        timeout=PAYMENT_FILE_TIMEOUT.total_seconds(),
        mode="reschedule",
    )
    def wait_for_payment_file(**context) -> bool:
        from auto_refunds import reconciliation, runtime

        return reconciliation.poke_payment_file(
            runtime.run_date(context),
            context["dag_run"],
            PAYMENT_FILE_TIMEOUT,
            started_by_refund_file=bool(context.get("triggering_asset_events")),
        )

    @task
    def load(**context) -> dict:
        from auto_refunds import reconciliation, runtime

        return reconciliation.load(runtime.run_date(context))

    @task
    def build_model(model_name: str, **context) -> int:
        from auto_refunds import models, runtime

        return models.build_for_date(runtime.run_date(context), model_name)

    @task
    def audit(**context) -> str:
        from auto_refunds import reconciliation, runtime

        return reconciliation.audit(runtime.run_date(context))

    @task
    def publish(**context) -> dict:
        from auto_refunds import reconciliation, runtime

        return reconciliation.as_dict(reconciliation.publish(runtime.run_date(context)))

    previous = load()
    wait_for_payment_file() >> previous
    for model in RECONCILIATION_MODELS:
        built = build_model.override(task_id=model.name)(model.name)
        previous >> built
        previous = built
    previous >> audit() >> publish()


refund_reconciliation()
