"""Edge cases of CONTRACT 3 to 5, each at the boundary the contract draws: what the refund rules
see across files and dates, the refund file, reconciliation. The boundaries of each refund rule
(threshold, card expiry, window, remaining, the choice of sale) are in test_refund_rules.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from scenario import D, credit, refund, sale
from test_reconciliation import D0, day, exceptions, ledger, payment, postings, write_payments
from test_reconciliation import sent as sent  # noqa: F401 (the fixture)

from auto_refunds import reconciliation
from auto_refunds.outbox import PublishedFileConflict


def test_a_refund_row_arriving_before_its_sale(scenario):
    d1 = dt.date(2026, 1, 3)
    scenario.write_transactions(d1, refund("R1", "T1", "80.00"))
    scenario.write_transactions(D, sale("T1", "100.00"))
    scenario.write_credits(D, credit("C1", "50.00"))
    assert scenario.decide() == {"C1": ("CREDIT_EXCEEDS_TRANSACTION", None)}


def test_a_pending_refund_later_declined_is_not_counted(scenario):
    d1 = dt.date(2026, 1, 3)
    scenario.write_transactions(
        d1, sale("T1", "100.00"), refund("R1", "T1", "80.00", status="PENDING")
    )
    scenario.write_transactions(D, refund("R1", "T1", "80.00", status="DECLINED"))
    scenario.write_credits(D, credit("C1", "50.00"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}


def test_backfill_sees_refunds_of_later_dates(scenario):
    later = dt.date(2026, 1, 8)
    scenario.write_transactions(dt.date(2026, 1, 2), sale("T1", "100.00"))
    scenario.write_credits(later, credit("C1", "60.00"))
    scenario.run(later)
    # Backfill of D: C1 was requested by a later date; C2 may only have what is left of T1.
    scenario.write_credits(D, credit("C1", "60.00"), credit("C2", "60.00"))
    assert scenario.decide(D) == {
        "C1": ("ALREADY_REQUESTED", None),
        "C2": ("CREDIT_EXCEEDS_TRANSACTION", None),
    }


def test_rerun_is_byte_identical_and_manifest_fields(scenario):
    scenario.write_credits(D, credit("C2", "20.00"), credit("C1", "30.50"))
    scenario.write_transactions(D, sale("T1", "100.00"))
    scenario.run(D)
    csv_bytes = scenario.layout.refunds(D).read_bytes()
    manifest_bytes = scenario.layout.refunds_manifest(D).read_bytes()
    manifest = json.loads(manifest_bytes)
    assert set(manifest) == {"file_name", "as_of_date", "record_count", "total_amount", "sha256"}
    assert manifest["total_amount"] == "50.50"
    assert manifest["record_count"] == 2
    assert manifest["file_name"] == "refunds_20260105.csv"
    scenario.run(D)
    assert scenario.layout.refunds(D).read_bytes() == csv_bytes
    assert scenario.layout.refunds_manifest(D).read_bytes() == manifest_bytes


# ---------------------------------------------------------------- reconciliation


def test_several_ordinary_payments_are_all_posted_sorted_by_payment_id(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment("P9", "10.00"),
        payment("P10", "11.00"),
        payment("P2", "-50.00", refund_id=refunds["C1"]),
        payment("P1", "12.00"),
    )
    reconciliation.run_all(D0, scenario.settings)
    assert [line.split(",")[0] for line in postings(scenario, D0)[1:]] == [
        "P1",
        "P10",
        "P2",
        "P9",
    ]


def test_declined_then_approved_in_a_later_file(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment("P1", "-20.00", refund_id=refunds["C2"], status="DECLINED", code="05", message="x"),
    )
    reconciliation.run_all(D0, scenario.settings)
    write_payments(scenario, day(1), payment("P2", "-20.00", refund_id=refunds["C2"]))
    result = reconciliation.run_all(day(1), scenario.settings)
    # The approval is money that moved: posted, and the ledger holds the latest answer.
    assert result.repeated_answers == 1
    assert result.refunded == 1
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", day(1))
    assert [line.split(",")[:5] for line in postings(scenario, day(1))[1:]] == [
        ["P2", "CL1", "A1", "IP-P2", refunds["C2"]],
    ]
    # The decline of D0 stays in its partition, history; the approval after it asks a person
    # to check that the credit was not refunded another way meanwhile.
    assert [(r[0], r[1], r[2]) for r in exceptions(scenario)] == [
        (D0, "C2", "REFUND_DECLINED"),
        (day(1), "C2", "APPROVED_AFTER_DECLINE"),
    ]
    # Refunded now: a credit still open is not refunded again, nor called declined.
    scenario.write_credits(day(2), credit("C2", "20.00"))
    assert scenario.decide(day(2)) == {"C2": ("ALREADY_REQUESTED", None)}


def test_no_response_when_the_first_reconciliation_is_long_after(sent):
    scenario, refunds = sent
    write_payments(scenario, day(5), payment("P1", "-50.00", refund_id=refunds["C1"]))
    reconciliation.run_all(day(5), scenario.settings)
    assert sorted((r[0], r[1], r[2]) for r in exceptions(scenario)) == [
        (day(5), "C2", "NO_PROCESSOR_RESPONSE"),
        (day(5), "C3", "NO_PROCESSOR_RESPONSE"),
    ]
    write_payments(scenario, day(2))
    reconciliation.run_all(day(2), scenario.settings)
    write_payments(scenario, day(6))
    reconciliation.run_all(day(6), scenario.settings)
    assert len(exceptions(scenario)) == 2


def test_declined_unmatched_row_is_recorded_not_posted(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment("P1", "-20.00", refund_id="ARNOPE", status="DECLINED"),
        payment("P2", "-20.00", refund_id="ARNOPE2"),
    )
    result = reconciliation.run_all(D0, scenario.settings)
    assert result.unmatched_returns == 2
    assert postings(scenario, D0)[1:] == []
    assert exceptions(scenario) == []


# A decline recorded after D was published gives its amount back to remaining(t) (CONTRACT 3):
# a rerun of D with the same files then decides differently, and CONTRACT 4 refuses to change a
# published file. The rerun fails, naming the difference, and the file stays as it was.
def test_a_rerun_of_d_after_another_dates_refund_was_declined_is_refused(scenario):
    d1 = dt.date(2026, 1, 4)
    scenario.write_transactions(d1, sale("T1", "100.00"))
    scenario.write_credits(d1, credit("C1", "80.00"))
    scenario.run(d1)
    # D: C2 exceeds what C1 left of T1: an exception, and an empty refund file.
    scenario.write_credits(D, credit("C2", "50.00"))
    scenario.run(D)
    before = scenario.layout.refunds(D).read_bytes()
    # C1's refund is declined afterwards (as its reconciliation would record it).
    scenario.query("update refund_ledger set status = 'DECLINED'")
    with pytest.raises(PublishedFileConflict, match="1 row"):
        scenario.run(D)
    assert scenario.layout.refunds(D).read_bytes() == before


def test_a_late_extract_of_an_earlier_date_does_not_undo_a_later_version(scenario):
    d2, d3, d4 = (dt.date(2026, 1, n) for n in (2, 3, 4))
    scenario.write_transactions(d2, sale("T1", "100.00"))
    scenario.write_transactions(d4, sale("T1", "100.00", status="VOIDED"))
    scenario.write_credits(d4, credit("C1"))
    assert scenario.decide(d4) == {"C1": ("NO_MATCHING_TRANSACTION", None)}
    scenario.write_transactions(d3, sale("T1", "100.00"))
    scenario.write_credits(d3, credit("C1"))
    assert scenario.decide(d3) == {"C1": ("DUE", "T1")}
    assert scenario.decide(d4) == {"C1": ("NO_MATCHING_TRANSACTION", None)}
