"""CONTRACT 4: the refund file and manifest, ticklers partitioned by date, reruns and backfills."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from scenario import D, credit, sale

from auto_refunds import daily, ledger, quality
from auto_refunds.outbox import PublishedFileConflict
from auto_refunds.warehouse import connect

D0 = dt.date(2026, 1, 4)


def test_refund_file_and_manifest(scenario):
    # An account id with a comma travels quoted, as RFC 4180 says.
    scenario.write_credits(D, credit("C2", "20.00"), credit("C1", "50.00", account='"A,2"'))
    scenario.write_transactions(D, sale("T1", account='"A,2"'), sale("T2"))
    published = scenario.run(D, audit=True)

    csv_path = scenario.layout.refunds(D)
    content = csv_path.read_bytes()
    rows = sorted(scenario.query("select refund_id, credit_id from tickler_true_refunds_due"))
    assert content.decode().splitlines() == [
        "refund_id,client_id,account_id,credit_id,original_txn_id,card_token,refund_amount",
        *(
            f'{refund_id},CL1,"A,2",C1,T1,tok_T1,50.00'
            if credit_id == "C1"
            else f"{refund_id},CL1,A1,C2,T2,tok_T2,20.00"
            for refund_id, credit_id in rows
        ),
    ]
    manifest = json.loads(scenario.layout.refunds_manifest(D).read_text())
    assert manifest == {
        "file_name": "refunds_20260105.csv",
        "as_of_date": "2026-01-05",
        "record_count": 2,
        "total_amount": "70.00",
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert published.record_count == 2 and published.written


def test_an_empty_refund_file_is_still_written(scenario):
    scenario.write_credits(D, credit("C1", account=""))
    scenario.run(D)
    assert scenario.layout.refunds(D).read_text() == (
        "refund_id,client_id,account_id,credit_id,original_txn_id,card_token,refund_amount\n"
    )
    manifest = json.loads(scenario.layout.refunds_manifest(D).read_text())
    assert (manifest["record_count"], manifest["total_amount"]) == (0, "0.00")


def test_a_rerun_with_the_same_inputs_is_byte_identical_and_replaces_only_its_date(scenario):
    for day in (D0, D):
        scenario.write_credits(day, credit(f"C{day.day}"), credit("X", account=""))
        scenario.write_transactions(day, sale(f"T{day.day}"))
        scenario.run(day)
    before = {path.name: path.read_bytes() for path in scenario.layout.refunds_outbox.iterdir()}
    tables = "tickler_true_refunds_due", "tickler_refund_exceptions", "credit_outcomes"
    counts = [
        scenario.query(f"select as_of_date, count(*) from {t} group by 1 order by 1")
        for t in tables
    ]
    assert not scenario.run(D0).written
    after = {path.name: path.read_bytes() for path in scenario.layout.refunds_outbox.iterdir()}
    assert after == before
    assert [
        scenario.query(f"select as_of_date, count(*) from {t} group by 1 order by 1")
        for t in tables
    ] == counts


def test_a_rerun_that_would_change_a_published_file_fails_and_keeps_it(scenario):
    scenario.write_credits(D, credit("C1", "50.00"), credit("C2", "10.00", account="A2"))
    scenario.write_transactions(D, sale("T1"))
    scenario.run(D)
    published = scenario.layout.refunds(D).read_bytes()
    manifest = scenario.layout.refunds_manifest(D).read_bytes()
    ticklers = scenario.query("select * from tickler_true_refunds_due order by all")

    scenario.write_credits(D, credit("C1", "60.00"), credit("C2", "10.00", account="A2"))
    scenario.write_transactions(D, sale("T1"), sale("T2", account="A2"))
    with pytest.raises(PublishedFileConflict) as failure:
        scenario.run(D)
    message = str(failure.value)
    assert "refunds_20260105.csv was already published" in message
    assert "1 row(s) added" in message and "1 row(s) changed" in message
    assert scenario.layout.refunds(D).read_bytes() == published
    assert scenario.layout.refunds_manifest(D).read_bytes() == manifest
    assert scenario.query("select * from tickler_true_refunds_due order by all") == ticklers


def test_a_backfill_never_refunds_a_credit_twice(scenario):
    # Day D runs first and refunds C1; the backfill of D0 sees that refund.
    for day in (D0, D):
        scenario.write_credits(day, credit("C1", "50.00"), credit(f"N{day.day}", "50.00"))
        scenario.write_transactions(day, sale("T1", "100.00", "2026-01-01"))
    scenario.run(D)
    outcomes = scenario.decide(D0)
    assert outcomes == {
        "C1": ("ALREADY_REQUESTED", None),
        # remaining(T1) is 100 - C1 - N5 = 0: N4 has nothing left to take.
        "N4": ("CREDIT_EXCEEDS_TRANSACTION", None),
    }
    daily.publish(D0, scenario.settings)
    assert (
        scenario.query(
            "select credit_id, count(*) from refund_ledger group by 1 having count(*) > 1"
        )
        == []
    )


def test_ledger_heals_after_a_kill_between_the_file_and_the_ledger(scenario):
    scenario.write_credits(D0, credit("C1"))
    scenario.write_transactions(D0, sale("T1"))
    scenario.run(D0)
    # Simulate the kill: the file and manifest are out, the ledger never heard of them.
    scenario.query(
        "delete from refund_ledger; delete from refund_files; delete from refund_ledger_events"
    )
    scenario.write_credits(D, credit("C1"))
    assert scenario.decide(D) == {"C1": ("ALREADY_REQUESTED", None)}
    assert scenario.query("select credit_id, requested_date, status from refund_ledger") == [
        ("C1", D0, "SENT")
    ]


def test_a_refund_file_without_manifest_is_not_published(scenario):
    scenario.write_credits(D0, credit("C1"))
    scenario.write_transactions(D0, sale("T1"))
    scenario.run(D0)
    scenario.layout.refunds_manifest(D0).unlink()
    scenario.query("delete from refund_ledger; delete from refund_files")
    scenario.write_credits(D, credit("C1"))
    assert scenario.decide(D) == {"C1": ("DUE", "T1")}


def test_the_ledger_refuses_a_second_live_refund_for_a_credit(scenario):
    scenario.write_credits(D0, credit("C1"))
    scenario.write_transactions(D0, sale("T1"))
    scenario.run(D0)
    # A forged file of another date refunding C1 again.
    forged = scenario.layout.refunds(D)
    forged.write_bytes(scenario.layout.refunds(D0).read_bytes())
    manifest = json.loads(scenario.layout.refunds_manifest(D0).read_text())
    manifest.update(file_name=forged.name, as_of_date=D.isoformat())
    scenario.layout.refunds_manifest(D).write_text(json.dumps(manifest))
    with (
        connect(scenario.settings) as con,
        pytest.raises(ledger.LedgerConflict, match="already refunded"),
    ):
        ledger.record_refund_file(con, scenario.layout, D)


def test_the_quality_gate_stops_the_run_and_names_the_offenders(scenario):
    scenario.write_credits(D, credit("C1"), credit("C2", account="A2"))
    scenario.write_transactions(D, sale("T1"), sale("T2", account="A2"))
    scenario.decide(D)
    scenario.query("update marts.tickler_true_refunds_due set refund_id = 'AR-SAME'")
    with pytest.raises(quality.DataQualityError) as failure:
        daily.audit(D, scenario.settings)
    message = str(failure.value)
    assert (
        "expect_column_values_to_be_between(repeated_refund_ids) failed"
        " with repeated_refund_ids = 1"
    ) in message
    assert "AR-SAME" in message
    assert not scenario.layout.refunds(D).exists()
    results = scenario.settings.quality_results_dir / "daily_20260105"
    assert json.loads((results / "tickler_true_refunds_due.json").read_text())["success"] is False


@pytest.mark.parametrize(
    ("fault", "failed"),
    [
        # A second latest version of T1, as a fault in the supersession would leave.
        (
            "insert into staging.stg_imaginepay__transactions"
            " select * replace ('copy_of_' || source_file as source_file)"
            " from staging.stg_imaginepay__transactions",
            "with transactions = 2, distinct_txn_ids = 1, e.g. ['T1']",
        ),
        # C2 twice among the readable credits, as a fault in staging's duplicate check would leave.
        (
            "insert into staging.stg_imagineone__credits"
            " select * replace (line_number + 10 as line_number)"
            " from staging.stg_imagineone__credits where credit_id = 'C2'",
            "with readable_credits = 3, distinct_credit_ids = 2, e.g. ['C2']",
        ),
    ],
    ids=["transaction twice", "credit twice"],
)
def test_a_failing_pair_of_facts_names_both_values(scenario, fault, failed):
    scenario.write_credits(D, credit("C1"), credit("C2"))
    scenario.write_transactions(D, sale("T1"))
    scenario.decide(D)
    scenario.query(fault)
    with pytest.raises(quality.DataQualityError) as failure:
        daily.audit(D, scenario.settings)
    assert f"expect_column_pair_values_to_be_equal(None) failed {failed}" in str(failure.value)
    assert not scenario.layout.refunds(D).exists()
