"""
# refund_reconciliation

Reconciles ImaginePay's answers to the refund file of date **D**.

Started when `auto_refunds` publishes a refund file (the refund-file Asset; its event names D),
or by hand / `airflow dags test refund_reconciliation D` (then the logical date is D).

1. **wait_for_payment_file** waits for `inbox/imaginepay/payments_YYYYMMDD.csv` in reschedule
   mode (no worker slot held) until it is complete (unchanged for
   `AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS`), looking every
   `AUTO_REFUNDS_PAYMENT_FILE_POKE_SECONDS` (300); after `AUTO_REFUNDS_PAYMENT_FILE_TIMEOUT_HOURS`
   (24) it fails naming the missing file. These two are read, checked, when this file is parsed:
   a bad value fails the parse, naming the variable. A manual run (or `dags test`) does not wait
   for a file that is not there: it fails at once, naming it.
2. **reconcile_earlier_dates** reconciles, oldest first, every published refund file before D not
   reconciled yet whose payment file is complete: Airflow may batch several refund-file events into
   one run, or attach one to no run, so what to reconcile is decided from the published files.
3. **load** first finishes what a stopped run of either DAG left half-done (a published refund
   file the ledger does not know, a committed postings file not delivered; logged as
   *Recovery*), then lands the file line by line; the same content under another name is
   reported and changes nothing.
4. One task per **SQL model**: match each answer to the refund we sent, age unanswered refunds,
   build the ledger moves, exceptions and postings.
5. **audit** runs the Great Expectations gate for the postings.
6. **publish** moves the ledger forward, replaces D's RECONCILIATION exceptions and postings in
   one transaction, then writes `outbox/imagineone/payment_postings_YYYYMMDD.csv` atomically.
7. **refresh_worklist** writes the worklist's snapshot of D (the Parquet files its pages read)
   from the warehouse as published, and rebuilds the work items (`main.tickler_items`); a retry
   writes them again whole.
8. **reconcile_later_dates** does what step 2 does for the dates after D. Steps 2 and 8 reconcile
   each date by steps 3 to 7, its snapshot included. Steps 7 and 8 both follow the publish and
   neither waits for the other: D's snapshot holds D's rows only, which no other date's
   reconciliation changes, and a failure of one does not hold the other back.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from auto_refunds.assets import REFUND_FILE
from auto_refunds.dag_tasks import step_tasks
from auto_refunds.deployment import AS_OF_DATE_PARAM, DEFAULT_ARGS
from auto_refunds.pipeline import (
    RECONCILE_EARLIER_DATES,
    RECONCILE_LATER_DATES,
    RECONCILIATION_STEPS,
)
from auto_refunds.settings import payment_file_sensor_timing

# Read at parse time, cheaply and checked: the sensor's timeout and poke interval are part of the
# task's definition.
SENSOR = payment_file_sensor_timing()


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
        poke_interval=SENSOR.poke_seconds,
        timeout=SENSOR.timeout.total_seconds(),
        mode="reschedule",
    )
    def wait_for_payment_file(**context) -> bool:
        from auto_refunds import runtime, sensors

        return runtime.call(
            sensors.poke_payment_file,
            context,
            context["dag_run"],
            SENSOR.timeout,
            bool(context.get("triggering_asset_events")),
        )

    # wait_for_payment_file >> reconcile_earlier_dates >> load >> one task per model >> audit
    # >> publish >> refresh_worklist, and publish >> reconcile_later_dates (step 8 above).
    tasks = step_tasks([RECONCILE_EARLIER_DATES, *RECONCILIATION_STEPS])
    wait_for_payment_file() >> tasks["reconcile_earlier_dates"]
    tasks["publish"] >> step_tasks([RECONCILE_LATER_DATES])["reconcile_later_dates"]


refund_reconciliation()
