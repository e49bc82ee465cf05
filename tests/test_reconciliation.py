"""CONTRACT 5: ImaginePay's payment file against the refunds we sent, one outcome at a time.

Over 300 lines: one scenario per answer of CONTRACT 5, sharing their fixtures.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from scenario import Scenario, credit, csv_text, sale

from auto_refunds import reconciliation
from auto_refunds.file_lines import InputFileError
from auto_refunds.layout import PAYMENTS_HEADER, POSTINGS_HEADER

D0 = dt.date(2026, 1, 5)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def payment(
    payment_id: str,
    amount: str,
    *,
    refund_id: str = "",
    status: str = "APPROVED",
    code: str = "00",
    message: str = "Approved",
    processed: str = "2026-01-05",
) -> tuple:
    return (
        payment_id,
        "CL1",
        "A1",
        f"IP-{payment_id}",
        refund_id,
        amount,
        status,
        code,
        message,
        processed,
    )


@pytest.fixture
def sent(settings) -> tuple[Scenario, dict[str, str]]:
    """Three refunds published on D0: {credit_id: refund_id}; C1 50.00, C2 20.00, C3 30.00."""
    scenario = Scenario(settings)
    scenario.write_credits(D0, credit("C1", "50.00"), credit("C2", "20.00"), credit("C3", "30.00"))
    scenario.write_transactions(D0, sale("T1", "500.00"))
    scenario.run(D0)
    refunds = dict(scenario.query("select credit_id, refund_id from refund_ledger"))
    return scenario, refunds


def write_payments(scenario: Scenario, when: dt.date, *rows, name: str | None = None):
    path = scenario.layout.payments(when)
    if name:
        path = path.with_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text(PAYMENTS_HEADER, list(rows)))
    return path


def ledger(scenario: Scenario) -> dict[str, tuple]:
    rows = scenario.query(
        "select credit_id, status, status_date, status_source_file, status_line_number "
        "from refund_ledger"
    )
    return {credit_id: tuple(rest) for credit_id, *rest in rows}


def exceptions(scenario: Scenario) -> list[tuple]:
    return scenario.query(
        "select as_of_date, credit_id, reason_code, reason_detail, refund_id "
        "from tickler_refund_exceptions where source = 'RECONCILIATION' order by all"
    )


def postings(scenario: Scenario, when: dt.date) -> list[str]:
    return scenario.layout.postings(when).read_text().splitlines()


def test_each_answer_moves_its_refund(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment("P3", "-50.00", refund_id=refunds["C1"]),
        payment(
            "P2",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="54",
            message="Expired card",
        ),
        payment("P1", "-29.00", refund_id=refunds["C3"]),
        payment("P0", "-10.00", refund_id="AR-NEVER-SENT"),
        payment("P5", "75.00"),
        payment("P4", "12.00", status="DECLINED", code="51", message="Insufficient funds"),
    )
    result = reconciliation.run_all(D0, scenario.settings)
    assert (result.refunded, result.declined, result.amount_mismatches) == (1, 1, 1)
    assert result.unmatched_returns == 1

    assert ledger(scenario) == {
        "C1": ("REFUNDED", D0, "payments_20260105.csv", 2),
        "C2": ("DECLINED", D0, "payments_20260105.csv", 3),
        "C3": ("AMOUNT_MISMATCH", D0, "payments_20260105.csv", 4),
    }
    assert [(r[1], r[2], r[4]) for r in exceptions(scenario)] == [
        ("C2", "REFUND_DECLINED", refunds["C2"]),
        ("C3", "RETURN_AMOUNT_MISMATCH", refunds["C3"]),
    ]
    details = [r[3] for r in exceptions(scenario)]
    assert "54 Expired card" in details[0]
    assert "-29.00 for a refund of 30.00" in details[1]
    # Approved ordinary payments and the matched refund only, sorted by payment_id.
    assert postings(scenario, D0) == [
        ",".join(POSTINGS_HEADER),
        f"P3,CL1,A1,IP-P3,{refunds['C1']},-50.00,2026-01-05",
        "P5,CL1,A1,IP-P5,,75.00,2026-01-05",
    ]
    assert scenario.query("select payment_id, refund_id from unmatched_returns") == [
        ("P0", "AR-NEVER-SENT")
    ]


def test_a_declined_refund_comes_back_as_previously_declined(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment(
            "P1",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="05",
            message="Do not honor",
        ),
    )
    reconciliation.run_all(D0, scenario.settings)
    scenario.write_credits(day(1), credit("C2", "20.00"))
    assert scenario.decide(day(1)) == {"C2": ("PREVIOUSLY_DECLINED", None)}
    (detail,) = scenario.query(
        "select reason_detail from marts.credit_outcomes where credit_id = 'C2'"
    )[0]
    assert detail.endswith("was declined (05 Do not honor)")


def test_the_same_payment_file_twice_changes_nothing(sent):
    scenario, refunds = sent
    write_payments(
        scenario, D0, payment("P1", "-50.00", refund_id=refunds["C1"]), payment("P2", "9.99")
    )
    reconciliation.run_all(D0, scenario.settings)
    tables = (
        "refund_ledger",
        "refund_ledger_events",
        "payment_postings",
        "tickler_refund_exceptions",
        "unmatched_returns",
    )
    before = {t: scenario.query(f"select * from {t} order by all") for t in tables}
    file_before = scenario.layout.postings(D0).read_bytes()
    reconciliation.run_all(D0, scenario.settings)
    assert {t: scenario.query(f"select * from {t} order by all") for t in tables} == before
    assert scenario.layout.postings(D0).read_bytes() == file_before


def test_the_same_content_under_a_second_name_is_reported_and_changes_nothing(sent, caplog):
    scenario, refunds = sent
    first = write_payments(
        scenario, D0, payment("P1", "-50.00", refund_id=refunds["C1"]), payment("P2", "9.99")
    )
    reconciliation.run_all(D0, scenario.settings)
    second = scenario.layout.payments(day(1))
    second.write_bytes(first.read_bytes())
    reconciliation.run_all(day(1), scenario.settings)
    assert "has the same content as payments_20260105.csv" in caplog.text
    assert scenario.query(
        "select as_of_date, count(*) from payment_postings group by 1 order by 1"
    ) == [(D0, 2)]
    assert postings(scenario, day(1)) == [",".join(POSTINGS_HEADER)]
    assert scenario.query("select count(*) from refund_ledger_events") == [(4,)]


def test_two_payment_files_without_answers_are_not_the_same_file_twice(sent, caplog):
    scenario, _ = sent
    write_payments(scenario, D0)
    reconciliation.run_all(D0, scenario.settings)
    write_payments(scenario, day(1))
    reconciliation.run_all(day(1), scenario.settings)
    assert "has the same content" not in caplog.text
    assert scenario.query("select duplicate_of from payment_files order by 1") == [
        (None,),
        (None,),
    ]


def test_a_payment_file_with_a_wrong_header_fails_naming_it(sent):
    scenario, _ = sent
    path = scenario.layout.payments(D0)
    path.parent.mkdir(parents=True)
    path.write_text("payment_id,amount\nP1,5.00\n")
    with pytest.raises(InputFileError, match=r"payments_20260105\.csv line 1: wrong header"):
        reconciliation.load(D0, scenario.settings)


def test_malformed_payment_rows_are_quarantined_and_the_rest_goes_on(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment("P1", "-50.00", refund_id=refunds["C1"]),
        payment("P2", "-20.0O", refund_id=refunds["C2"]),
        payment("P3", "10.00", status="MAYBE"),
        "P4,CL1,A1,T,,1.00,APPROVED,00,ok",
    )
    reconciliation.run_all(D0, scenario.settings)
    assert scenario.query(
        "select line_number, error from quarantine_rows "
        "where source_file = 'payments_20260105.csv' order by 1"
    ) == [
        (3, "payment_amount is not a decimal number: -20.0O"),
        (4, "status has unknown code MAYBE (expected one of APPROVED, DECLINED)"),
        (5, "expected 10 fields, found 9"),
    ]
    assert ledger(scenario)["C1"][0] == "REFUNDED"
    assert ledger(scenario)["C2"][0] == "SENT"


def test_no_processor_response_after_exactly_three_days_and_only_once(sent):
    scenario, refunds = sent
    write_payments(scenario, D0, payment("P1", "-50.00", refund_id=refunds["C1"]))
    reconciliation.run_all(D0, scenario.settings)
    for n in (1, 2):
        write_payments(scenario, day(n))
        reconciliation.run_all(day(n), scenario.settings)
        assert exceptions(scenario) == []
    write_payments(scenario, day(3))
    reconciliation.run_all(day(3), scenario.settings)
    raised = [(r[0], r[1], r[2]) for r in exceptions(scenario)]
    assert raised == [
        (day(3), "C2", "NO_PROCESSOR_RESPONSE"),
        (day(3), "C3", "NO_PROCESSOR_RESPONSE"),
    ]
    write_payments(scenario, day(4))
    reconciliation.run_all(day(4), scenario.settings)
    reconciliation.run_all(day(3), scenario.settings)
    assert [(r[0], r[1], r[2]) for r in exceptions(scenario)] == raised
    assert ledger(scenario)["C2"][:2] == ("UNANSWERED", day(3))


def test_a_late_answer_after_no_response_is_still_posted(sent):
    scenario, refunds = sent
    for n in range(4):
        write_payments(scenario, day(n))
        reconciliation.run_all(day(n), scenario.settings)
    write_payments(
        scenario, day(4), payment("P9", "-20.00", refund_id=refunds["C2"], processed="2026-01-09")
    )
    result = reconciliation.run_all(day(4), scenario.settings)
    assert result.refunded == 1
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", day(4))
    assert scenario.query(
        "select status from refund_ledger_events where refund_id = ? order by as_of_date",
        [refunds["C2"]],
    ) == [("SENT",), ("UNANSWERED",), ("REFUNDED",)]
    # The tickler partitions are history: a rerun of the date that aged it raises it again,
    # and moves nothing back.
    raised = exceptions(scenario)
    assert [(r[0], r[1], r[2]) for r in raised] == [
        (day(3), credit_id, "NO_PROCESSOR_RESPONSE") for credit_id in ("C1", "C2", "C3")
    ]
    reconciliation.run_all(day(3), scenario.settings)
    assert exceptions(scenario) == raised
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", day(4))


def test_a_refund_answered_again_later_is_not_posted_twice(sent, caplog):
    scenario, refunds = sent
    write_payments(scenario, D0, payment("P1", "-50.00", refund_id=refunds["C1"]))
    reconciliation.run_all(D0, scenario.settings)
    write_payments(scenario, day(1), payment("P7", "-50.00", refund_id=refunds["C1"]))
    with caplog.at_level(logging.WARNING, logger="auto_refunds.reconciliation"):
        result = reconciliation.run_all(day(1), scenario.settings)
    assert result.refunded == 0
    assert scenario.query(
        "select count(*) from payment_postings where refund_id = ?", [refunds["C1"]]
    ) == [(1,)]
    # Not applied, but never silent: a second approval may be money that moved twice.
    assert result.repeated_answers == 1
    assert f"payment P7 (APPROVED, -50.00) answers refund {refunds['C1']}" in caplog.text
    assert "not posted, the refund was posted already, the ledger holds REFUNDED" in caplog.text


def declined(payment_id: str, amount: str, refund_id: str) -> tuple:
    return payment(
        payment_id,
        amount,
        refund_id=refund_id,
        status="DECLINED",
        code="05",
        message="Do not honor",
    )


def events(scenario: Scenario, refund_id: str) -> list[tuple]:
    return scenario.query(
        "select as_of_date, status from refund_ledger_events where refund_id = ? order by 1, 2",
        [refund_id],
    )


def test_a_decline_after_a_posted_approval_is_raised_and_frees_nothing(sent):
    scenario, refunds = sent
    write_payments(scenario, D0, payment("P1", "-20.00", refund_id=refunds["C2"]))
    reconciliation.run_all(D0, scenario.settings)
    write_payments(scenario, day(1), declined("P2", "-20.00", refunds["C2"]))
    result = reconciliation.run_all(day(1), scenario.settings)
    assert (result.declined, result.repeated_answers, result.postings) == (1, 1, 0)
    assert exceptions(scenario) == [
        (
            day(1),
            "C2",
            "REFUND_DECLINED",
            f"refund {refunds['C2']}: declined 05 Do not honor",
            refunds["C2"],
        )
    ]
    # The approval stays posted (a published postings file is never taken back), and the
    # refund stays refunded: its 20.00 still counts against T1 (500.00 less 50, 20 and 30
    # leaves 400.00, short of 410.00), and C2 is not refunded again.
    assert scenario.query("select payment_id, as_of_date from payment_postings") == [("P1", D0)]
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", D0)
    scenario.write_credits(day(2), credit("C2", "20.00"), credit("C9", "410.00"))
    assert scenario.decide(day(2)) == {
        "C2": ("ALREADY_REQUESTED", None),
        "C9": ("CREDIT_EXCEEDS_TRANSACTION", None),
    }


def test_two_answers_in_one_file_each_act_and_the_approval_holds(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        declined("P0", "-20.00", refunds["C2"]),
        payment("P1", "-20.00", refund_id=refunds["C2"]),
        payment(
            "P2",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="51",
            message="Insufficient funds",
        ),
        payment("P3", "-20.00", refund_id=refunds["C2"]),
    )
    result = reconciliation.run_all(D0, scenario.settings)
    assert result.repeated_answers == 3
    # The ledger takes the answer that outranks the others, its first line.
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", D0)
    assert ledger(scenario)["C2"][3] == 3
    # Posted once, by the first approval; each decline is raised.
    assert [line.split(",")[0] for line in postings(scenario, D0)[1:]] == ["P1"]
    assert [(r[1], r[2], r[3].split(": ", 1)[1]) for r in exceptions(scenario)] == [
        ("C2", "REFUND_DECLINED", "declined 05 Do not honor"),
        (
            "C2",
            "REFUND_DECLINED",
            "declined 51 Insufficient funds (this file approved it before, as payment P1)",
        ),
    ]


@pytest.mark.parametrize(
    "order, moves, raised",
    [
        (
            [0, 1, 2],
            [(0, "DECLINED"), (1, "REFUNDED")],
            [(0, "REFUND_DECLINED"), (1, "APPROVED_AFTER_DECLINE")],
        ),
        (
            [2, 1, 0],
            [(1, "REFUNDED"), (2, "DECLINED")],
            [(0, "APPROVED_AFTER_DECLINE"), (2, "REFUND_DECLINED")],
        ),
        (
            [1, 2, 0, 1, 0, 2],
            [(1, "REFUNDED")],
            [(0, "APPROVED_AFTER_DECLINE"), (2, "REFUND_DECLINED")],
        ),
    ],
)
def test_the_ledger_ends_the_same_whatever_the_order_of_the_reconciliations(
    settings, order, moves, raised
):
    """Declined by D0's file, approved by day 1's, declined again alike by day 2's, reconciled
    in the order given (with reruns): the ledger and the postings end as in date order. The
    decline is raised once and the approval after D0's decline once, each by the first
    reconciliation that holds it; the events are what the ledger went through."""
    scenario = Scenario(settings)
    scenario.write_credits(D0, credit("C2", "20.00"))
    scenario.write_transactions(D0, sale("T1", "500.00"))
    scenario.run(D0)
    [(refund_id,)] = scenario.query("select refund_id from refund_ledger")
    write_payments(scenario, day(0), declined("P1", "-20.00", refund_id))
    write_payments(scenario, day(1), payment("P2", "-20.00", refund_id=refund_id))
    write_payments(scenario, day(2), declined("P3", "-20.00", refund_id))
    for n in order:
        reconciliation.run_all(day(n), scenario.settings)
    assert ledger(scenario)["C2"] == ("REFUNDED", day(1), "payments_20260106.csv", 2)
    assert scenario.query("select as_of_date, payment_id from payment_postings") == [(day(1), "P2")]
    assert [postings(scenario, day(n))[1:] for n in range(3)] == [
        [],
        [f"P2,CL1,A1,IP-P2,{refund_id},-20.00,2026-01-05"],
        [],
    ]
    assert [(r[0], r[2], r[3]) for r in exceptions(scenario)] == [
        (
            day(n),
            reason,
            f"refund {refund_id}: "
            + {
                "REFUND_DECLINED": "declined 05 Do not honor",
                "APPROVED_AFTER_DECLINE": "approved as payment P2 (payments_20260106.csv) after "
                "payments_20260105.csv line 2 declined it (05): the money moved; check that the "
                "credit was not refunded another way",
            }[reason],
        )
        for n, reason in raised
    ]
    assert [(when, state) for when, state in events(scenario, refund_id) if state != "SENT"] == [
        (day(n), state) for n, state in moves
    ]


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_of_two_files_answering_alike_the_earlier_one_holds(sent, order):
    """Declined by D0's file and again, otherwise, by day 1's: the ledger row (and with it the
    next night's PREVIOUSLY_DECLINED detail) is D0's answer in either order."""
    scenario, refunds = sent
    write_payments(scenario, D0, declined("P1", "-20.00", refunds["C2"]))
    write_payments(
        scenario,
        day(1),
        payment(
            "P2",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="51",
            message="Insufficient funds",
        ),
    )
    for n in order:
        reconciliation.run_all(day(n), scenario.settings)
    assert ledger(scenario)["C2"] == ("DECLINED", D0, "payments_20260105.csv", 2)
    assert scenario.query(
        "select response_code, response_message from refund_ledger where credit_id = 'C2'"
    ) == [("05", "Do not honor")]


def test_an_approval_after_a_decline_says_the_sale_may_be_refunded_beyond_its_amount(sent, caplog):
    scenario, refunds = sent
    write_payments(scenario, D0, declined("P1", "-20.00", refunds["C2"]))
    reconciliation.run_all(D0, scenario.settings)
    write_payments(scenario, day(1), payment("P2", "-20.00", refund_id=refunds["C2"]))
    with caplog.at_level(logging.WARNING, logger="auto_refunds.reconciliation"):
        reconciliation.run_all(day(1), scenario.settings)
    assert "posted, the ledger moves from DECLINED to REFUNDED; money moved after a decline" in (
        caplog.text
    )


def test_a_card_number_in_a_response_message_is_masked_and_the_row_goes_on(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        payment(
            "P2",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="14",
            message="card 4111 1111 1111 1111 invalid",
        ),
    )
    reconciliation.run_all(D0, scenario.settings)
    (detail,) = [row[3] for row in exceptions(scenario)]
    assert "14 card ************1111 invalid" in detail
    declined = "select response_message from refund_ledger where status = 'DECLINED'"
    assert scenario.query(declined) == [("card ************1111 invalid",)]


def refund_exception_counts(scenario: Scenario) -> list[tuple]:
    return scenario.query(
        "select credit_id, reason_code, count(*) from tickler_refund_exceptions "
        "where source = 'RECONCILIATION' group by all order by all"
    )


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_a_file_sent_again_under_a_new_date_raises_each_answer_once(sent, order, caplog):
    """Day 1's file repeats D0's answers (other payment_ids, another processed date): each
    decline and each other amount is raised once in all, by the date reconciled first, whose
    reruns raise it again; the other date's reruns raise nothing."""
    scenario, refunds = sent

    def answers(prefix: str, processed: str) -> list[tuple]:
        return [
            payment(f"{prefix}1", "-50.00", refund_id=refunds["C1"], processed=processed),
            payment(
                f"{prefix}2",
                "-20.00",
                refund_id=refunds["C2"],
                status="DECLINED",
                code="54",
                message="Expired card",
                processed=processed,
            ),
            payment(f"{prefix}3", "-29.00", refund_id=refunds["C3"], processed=processed),
        ]

    write_payments(scenario, day(0), *answers("P", "2026-01-05"))
    write_payments(scenario, day(1), *answers("Q", "2026-01-06"))
    first, second = (day(n) for n in order)
    reconciliation.run_all(first, scenario.settings)
    with caplog.at_level(logging.WARNING, logger="auto_refunds.reconciliation"):
        result = reconciliation.run_all(second, scenario.settings)
    assert (result.refunded, result.declined, result.amount_mismatches) == (0, 0, 0)
    assert result.repeated_answers == 3
    assert (
        f"REFUND_DECLINED not raised again, the same answer raised it on {first.isoformat()}"
        in caplog.text
    )
    raised = exceptions(scenario)
    assert [(r[0], r[1], r[2]) for r in raised] == [
        (first, "C2", "REFUND_DECLINED"),
        (first, "C3", "RETURN_AMOUNT_MISMATCH"),
    ]
    assert scenario.query("select refund_id, count(*) from payment_postings group by all") == [
        (refunds["C1"], 1)
    ]
    # Reruns in either order change nothing: the first date's partition is re-derived.
    for when in (first, second, first):
        reconciliation.run_all(when, scenario.settings)
        assert exceptions(scenario) == raised


def test_identical_declining_lines_of_one_file_raise_once(sent):
    scenario, refunds = sent
    write_payments(
        scenario,
        D0,
        declined("P1", "-20.00", refunds["C2"]),
        declined("P2", "-20.00", refunds["C2"]),
        # Another code is another answer, raised on its own.
        payment(
            "P3",
            "-20.00",
            refund_id=refunds["C2"],
            status="DECLINED",
            code="51",
            message="Insufficient funds",
        ),
    )
    result = reconciliation.run_all(D0, scenario.settings)
    assert (result.declined, result.repeated_answers) == (2, 2)
    assert [(r[1], r[2], r[3].split(": ", 1)[1]) for r in exceptions(scenario)] == [
        ("C2", "REFUND_DECLINED", "declined 05 Do not honor"),
        ("C2", "REFUND_DECLINED", "declined 51 Insufficient funds"),
    ]


@pytest.mark.parametrize("order", [[0, 1, 2], [0, 2, 1]])
def test_an_approval_after_an_earlier_files_decline_is_posted_and_raised_once(sent, order):
    """Declined by D0's file, approved by day 1's, and day 1's approval sent again by day 2's
    file: posted once, APPROVED_AFTER_DECLINE raised once, by the first approving date
    reconciled; reruns of every date leave the exceptions and postings as they are."""
    scenario, refunds = sent
    write_payments(scenario, day(0), declined("P1", "-20.00", refunds["C2"]))
    write_payments(scenario, day(1), payment("P2", "-20.00", refund_id=refunds["C2"]))
    write_payments(
        scenario, day(2), payment("P3", "-20.00", refund_id=refunds["C2"], processed="2026-01-07")
    )
    for n in order:
        reconciliation.run_all(day(n), scenario.settings)
    approving = order[1]
    payment_id, file_name = {
        1: ("P2", "payments_20260106.csv"),
        2: ("P3", "payments_20260107.csv"),
    }[approving]
    assert scenario.query("select as_of_date, payment_id from payment_postings") == [
        (day(approving), payment_id)
    ]
    assert ledger(scenario)["C2"][:2] == ("REFUNDED", day(approving))
    raised = exceptions(scenario)
    assert raised == [
        (
            D0,
            "C2",
            "REFUND_DECLINED",
            f"refund {refunds['C2']}: declined 05 Do not honor",
            refunds["C2"],
        ),
        (
            day(approving),
            "C2",
            "APPROVED_AFTER_DECLINE",
            f"refund {refunds['C2']}: approved as payment {payment_id} ({file_name}) after "
            "payments_20260105.csv line 2 declined it (05): the money moved; check that the "
            "credit was not refunded another way",
            refunds["C2"],
        ),
    ]
    postings_before = [postings(scenario, day(n)) for n in range(3)]
    for n in (approving, 3 - approving, 0, approving):
        reconciliation.run_all(day(n), scenario.settings)
        assert exceptions(scenario) == raised
    assert [postings(scenario, day(n)) for n in range(3)] == postings_before
