"""One unit test per SQL model of the reconciliation DAG (CONTRACT 5): given rows for its inputs,
the exact rows it builds. The scenario tests are in test_reconciliation.py.

Over 300 lines: one test per model of the layer, kept together.
"""

from __future__ import annotations

import datetime as dt

from model_units import D, ledger_row, money, only

DAY = dt.timedelta(days=1)


def payment(
    payment_id: str,
    refund_id: str | None,
    amount: str,
    status: str = "APPROVED",
    line_number: int = 2,
    **values,
) -> dict:
    """A readable row of staging.stg_imaginepay__payments."""
    return {
        "source_file": "payments_20260105.csv",
        "line_number": line_number,
        "payment_id": payment_id,
        "client_id": "CL1",
        "account_id": "A1",
        "txn_id": "T1",
        "refund_id": refund_id,
        "payment_amount": money(amount),
        "status": status,
        "response_code": "00" if status == "APPROVED" else "54",
        "response_message": "ok" if status == "APPROVED" else "expired card",
        "processed_date": D,
        "dq_error": None,
        **values,
    }


def test_stg_imaginepay__payments_types_the_file_of_d(unit):
    rows = unit.build(
        "stg_imaginepay__payments",
        {
            "landing.imaginepay__payments": [
                {
                    "source_file": "payments_20260105.csv",
                    "file_date": D,
                    "line_number": n,
                    "raw_line": line,
                }
                for n, line in [
                    (2, "P1,CL1,A1,T1,AR1,-50.00,approved,00,ok,2026-01-05"),
                    (3, "P2,CL1,A1,T2,,12.00,MAYBE,,,2026-01-05"),
                ]
            ]
        },
    )
    assert only(
        rows,
        "line_number",
        "payment_id",
        "refund_id",
        "payment_amount",
        "status",
        "processed_date",
        "dq_error",
    ) == [
        (2, "P1", "AR1", money("-50.00"), "APPROVED", D, None),
        (
            3,
            "P2",
            None,
            money("12.00"),
            "MAYBE",
            D,
            "status has unknown code MAYBE (expected one of APPROVED, DECLINED)",
        ),
    ]


def test_int_payments_matched_to_refunds_each_answer_against_the_refund_we_sent(unit):
    rows = unit.build(
        "int_payments_matched_to_refunds",
        {
            "staging.stg_imaginepay__payments": [
                payment("P1", "AR1", "-50.00", line_number=2),
                payment("P2", "AR2", "-50.00", "DECLINED", line_number=3),
                payment("P3", "AR3", "-49.00", line_number=4),
                payment("P4", "AR9", "-50.00", line_number=5),
                payment("P5", "AR4", "-50.00", line_number=6),
                # A later line for the same refund acts by its own rule; the approval, which
                # outranks it, is the one that moves the ledger.
                payment("P6", "AR1", "-50.00", "DECLINED", line_number=7),
                payment("P7", None, "20.00", line_number=8),
                payment("P8", "AR5", "-50.00", line_number=9),
                payment("P9", "AR6", "-50.00", line_number=10),
                payment("P10", "AR7", "-50.00", "DECLINED", line_number=11),
                payment("P11", "AR8", "-50.00", line_number=12),
            ],
            "main.refund_ledger": [
                ledger_row("AR1"),
                ledger_row("AR2"),
                ledger_row("AR3", status="UNANSWERED"),
                # Approved and posted by the file of D - 1: a second approval posts nothing.
                ledger_row("AR4", status="REFUNDED"),
                # Declined by the file of D - 1: this approval moves it up, and posts.
                ledger_row("AR5", status="DECLINED"),
                # Moved by this file before: a rerun moves it the same way.
                ledger_row("AR6", status="REFUNDED", status_date=D),
                # Approved by the file of D + 1, reconciled first: this decline raises its
                # exception but moves nothing (nor would it after an approval of D - 1).
                ledger_row("AR7", status="REFUNDED", status_date=D + DAY),
                # Another amount returned by the file of D - 1: the right amount moves it up.
                ledger_row("AR8", status="AMOUNT_MISMATCH"),
            ],
            "main.refund_ledger_events": [
                {"refund_id": refund_id, "status": status, "as_of_date": when}
                for refund_id, status, when in [
                    ("AR4", "REFUNDED", D - DAY),
                    ("AR5", "DECLINED", D - DAY),
                    ("AR6", "REFUNDED", D),
                    ("AR7", "REFUNDED", D + DAY),
                    ("AR8", "AMOUNT_MISMATCH", D - DAY),
                ]
            ],
            "main.payment_postings": [
                {
                    "as_of_date": when,
                    "payment_id": payment_id,
                    "refund_id": refund_id,
                    "payment_amount": money("-50.00"),
                }
                for when, payment_id, refund_id in [
                    (D - DAY, "P0", "AR4"),
                    (D, "P9", "AR6"),
                    (D + DAY, "P70", "AR7"),
                ]
            ],
        },
    )
    assert only(
        rows,
        "payment_id",
        "refund_id",
        "credit_id",
        "refund_amount",
        "outcome",
        "to_post",
        "moves_ledger",
        "answered_before",
    ) == [
        ("P1", "AR1", "C_AR1", money("50.00"), "REFUNDED", True, True, False),
        ("P10", "AR7", "C_AR7", money("50.00"), "DECLINED", False, False, True),
        ("P11", "AR8", "C_AR8", money("50.00"), "REFUNDED", True, True, True),
        ("P2", "AR2", "C_AR2", money("50.00"), "DECLINED", False, True, False),
        ("P3", "AR3", "C_AR3", money("50.00"), "AMOUNT_MISMATCH", False, True, False),
        ("P4", "AR9", None, None, "UNMATCHED", False, False, False),
        ("P5", "AR4", "C_AR4", money("50.00"), "REFUNDED", False, False, True),
        ("P6", "AR1", "C_AR1", money("50.00"), "DECLINED", False, False, True),
        ("P8", "AR5", "C_AR5", money("50.00"), "REFUNDED", True, True, True),
        ("P9", "AR6", "C_AR6", money("50.00"), "REFUNDED", True, True, False),
    ]
    details = dict(only(rows, "payment_id", "detail"))
    assert details["P1"] == "approved, -50.00 as payment P1"
    assert details["P2"] == "declined 54 expired card"
    assert details["P3"] == "ImaginePay returned -49.00 for a refund of 50.00 (payment P3)"
    assert details["P4"] is None
    assert details["P6"] == "declined 54 expired card (this file approved it before, as payment P1)"
    # What another file answered is not in the text: a rerun reads the same whatever was
    # reconciled in between.
    assert details["P10"] == "declined 54 expired card"


def test_int_refunds_unanswered_three_days_after_the_file_once(unit):
    three_days_ago = D - 3 * DAY
    rows = unit.build(
        "int_refunds_unanswered",
        {
            "main.refund_ledger": [
                ledger_row("AR1", requested_date=three_days_ago),
                ledger_row("AR2", requested_date=D - 2 * DAY),
                # Answered in this file.
                ledger_row("AR3", requested_date=three_days_ago),
                # Raised by this date's first run: raised again by its rerun, not by another date.
                ledger_row(
                    "AR4", requested_date=three_days_ago, status="UNANSWERED", status_date=D
                ),
                ledger_row(
                    "AR5", requested_date=D - 4 * DAY, status="UNANSWERED", status_date=D - DAY
                ),
                ledger_row("AR6", requested_date=three_days_ago, status="REFUNDED"),
            ],
            "intermediate.int_payments_matched_to_refunds": [
                {"refund_id": "AR3", "outcome": "REFUNDED"},
                {"refund_id": "AR9", "outcome": "UNMATCHED"},
            ],
        },
    )
    assert only(
        rows, "refund_id", "credit_id", "refund_amount", "requested_date", "days_unanswered"
    ) == [
        ("AR1", "C_AR1", money("50.00"), three_days_ago, 3),
        ("AR4", "C_AR4", money("50.00"), three_days_ago, 3),
    ]


def matched(
    refund_id: str,
    payment_id: str,
    outcome: str,
    line_number: int | None = None,
    moves_ledger: bool = True,
    detail: str | None = None,
    **values,
) -> dict:
    """A row of intermediate.int_payments_matched_to_refunds."""
    return {
        "refund_id": refund_id,
        "payment_id": payment_id,
        "outcome": outcome,
        "source_file": "p.csv",
        "line_number": line_number,
        "moves_ledger": moves_ledger,
        "to_post": False,
        "answered_before": False,
        "detail": detail,
        "acts": outcome != "UNMATCHED",
        **values,
    }


MATCHED = [
    matched("AR1", "P1", "REFUNDED", 2, detail="approved", to_post=True),
    matched(
        "AR2",
        "P2",
        "DECLINED",
        3,
        detail="declined 54",
        response_code="54",
        response_message="expired card",
    ),
    matched("AR3", "P3", "AMOUNT_MISMATCH", 4, detail="returned -49.00"),
    matched("AR9", "P4", "UNMATCHED", 5, moves_ledger=False),
    # Answered again by this file, after a later date's file answered: its exception is
    # raised, the ledger holds the later answer.
    matched(
        "AR5", "P5", "DECLINED", 6, moves_ledger=False, detail="declined 05", answered_before=True
    ),
    # A second approval: nothing to post, nothing to move.
    matched("AR6", "P6", "REFUNDED", 7, moves_ledger=False, answered_before=True),
    # The same decline as one another date acted on: raised there, not here.
    matched(
        "AR10",
        "P10",
        "DECLINED",
        8,
        moves_ledger=False,
        detail="declined 05",
        answered_before=True,
        acts=False,
    ),
]


def test_refund_ledger_transitions_the_moves_of_d(unit):
    rows = unit.build(
        "refund_ledger_transitions",
        {
            "intermediate.int_payments_matched_to_refunds": MATCHED,
            "intermediate.int_refunds_unanswered": [
                {"refund_id": "AR4", "days_unanswered": 3, "refund_file": "refunds_20260102.csv"}
            ],
        },
    )
    assert only(
        rows,
        "as_of_date",
        "refund_id",
        "status",
        "source_file",
        "line_number",
        "response_code",
        "detail",
    ) == [
        (D, "AR1", "REFUNDED", "p.csv", 2, None, "approved"),
        (D, "AR2", "DECLINED", "p.csv", 3, "54", "declined 54"),
        (D, "AR3", "AMOUNT_MISMATCH", "p.csv", 4, None, "returned -49.00"),
        (
            D,
            "AR4",
            "UNANSWERED",
            None,
            None,
            None,
            "no answer from ImaginePay 3 days after refunds_20260102.csv",
        ),
    ]


def test_tickler_reconciliation_exceptions_reason_codes_of_the_answers_and_of_d_before(unit):
    rows = unit.build(
        "tickler_reconciliation_exceptions",
        {
            "intermediate.int_payments_matched_to_refunds": MATCHED,
            "marts.refund_ledger_transitions": [
                {"as_of_date": D, "refund_id": refund_id, "status": status, "detail": "why"}
                for refund_id, status in [
                    ("AR1", "REFUNDED"),
                    ("AR2", "DECLINED"),
                    ("AR3", "AMOUNT_MISMATCH"),
                    ("AR4", "UNANSWERED"),
                ]
            ],
            "main.refund_ledger": [ledger_row(f"AR{n}") for n in (*range(1, 9), 10)],
            # What an earlier run of D aged (AR4, aged again; AR7, answered by a later date
            # since), and what another date aged (AR8).
            "main.refund_ledger_events": [
                {
                    "refund_id": refund_id,
                    "status": "UNANSWERED",
                    "as_of_date": when,
                    "detail": "aged",
                }
                for refund_id, when in [("AR4", D), ("AR7", D), ("AR8", D - DAY)]
            ],
        },
    )
    assert rows == [
        {
            "as_of_date": D,
            "credit_id": f"C_{refund_id}",
            "client_id": "CL1",
            "account_id": "A1",
            "credit_amount": money("50.00"),
            "reason_code": reason_code,
            "reason_detail": f"refund {refund_id}: {detail}",
            "source": "RECONCILIATION",
            "refund_id": refund_id,
        }
        for refund_id, reason_code, detail in [
            ("AR2", "REFUND_DECLINED", "declined 54"),
            ("AR3", "RETURN_AMOUNT_MISMATCH", "returned -49.00"),
            ("AR4", "NO_PROCESSOR_RESPONSE", "why"),
            ("AR5", "REFUND_DECLINED", "declined 05"),
            ("AR7", "NO_PROCESSOR_RESPONSE", "aged"),
        ]
    ]


def matched_payment(
    payment_id: str, refund_id: str, amount: str, outcome: str, to_post: bool
) -> dict:
    row = payment(payment_id, refund_id, amount)
    del row["dq_error"]
    return {**row, "outcome": outcome, "to_post": to_post}


def test_payment_postings_approved_payments_and_matched_refunds_once(unit):
    rows = unit.build(
        "payment_postings",
        {
            "staging.stg_imaginepay__payments": [
                payment("P1", None, "20.00"),
                payment("P2", None, "30.00", "DECLINED"),
                payment("P3", None, "40.00"),
                payment("P4", None, "45.00", dq_error="processed_date is empty"),
                payment("P5", "AR1", "-50.00"),
            ],
            "intermediate.int_payments_matched_to_refunds": [
                matched_payment("P5", "AR1", "-50.00", "REFUNDED", to_post=True),
                matched_payment("P6", "AR2", "-49.00", "AMOUNT_MISMATCH", to_post=False),
                # The refund was posted already (another date, or an earlier line).
                matched_payment("P7", "AR3", "-50.00", "REFUNDED", to_post=False),
            ],
            "main.payment_postings": [
                {"as_of_date": D - DAY, "payment_id": "P3", "payment_amount": money("40.00")},
                {"as_of_date": D, "payment_id": "P1", "payment_amount": money("20.00")},
            ],
        },
    )
    assert rows == [
        {
            "as_of_date": D,
            "payment_id": payment_id,
            "client_id": "CL1",
            "account_id": "A1",
            "txn_id": "T1",
            "refund_id": refund_id,
            "payment_amount": money(amount),
            "processed_date": D,
        }
        for payment_id, refund_id, amount in [("P1", None, "20.00"), ("P5", "AR1", "-50.00")]
    ]


def test_unmatched_returns_refund_ids_we_never_sent(unit):
    rows = unit.build(
        "unmatched_returns", {"intermediate.int_payments_matched_to_refunds": MATCHED}
    )
    assert only(rows, "as_of_date", "payment_id", "refund_id") == [(D, "P4", "AR9")]


def test_reconciliation_quarantine_rows_unreadable_lines_masked(unit):
    rows = unit.build(
        "reconciliation_quarantine_rows",
        {
            "staging.stg_imaginepay__payments": [
                payment("P1", None, "1.00"),
                {
                    **payment("P2", None, "1.00"),
                    "raw_line": "P2,4111111111111111",
                    "dq_error": "status is empty",
                },
            ]
        },
    )
    assert rows == [
        {
            "source_file": "payments_20260105.csv",
            "line_number": 2,
            "raw_line": "P2,************1111",
            "error": "status is empty",
        }
    ]


def test_int_payments_matched_to_refunds_an_answer_acts_once(unit):
    """The same answer (refund_id, status, payment_amount, response_code) acts on its first
    line in the file, unless another date's reconciliation acted on it."""
    rows = unit.build(
        "int_payments_matched_to_refunds",
        {
            "staging.stg_imaginepay__payments": [
                payment("P1", "AR1", "-50.00", "DECLINED", line_number=2),
                # The same answer again on a later line of the file.
                payment("P2", "AR1", "-50.00", "DECLINED", line_number=3),
                # Another code: another answer.
                payment("P3", "AR1", "-50.00", "DECLINED", line_number=4, response_code="51"),
                # Acted on by D - 1 (and repeated by D + 1, which did not act on it).
                payment("P4", "AR2", "-49.00", line_number=5),
                # Acted on by D itself before: a rerun acts again.
                payment("P5", "AR3", "-50.00", "DECLINED", line_number=6, response_code=None),
                # D - 1 acted on another amount, not on this one.
                payment("P6", "AR4", "-48.00", line_number=7),
                payment("P7", "AR9", "-50.00", "DECLINED", line_number=8),
            ],
            "main.refund_ledger": [ledger_row(f"AR{n}") for n in range(1, 5)],
            "main.payment_answers": [
                {
                    "as_of_date": when,
                    "refund_id": refund_id,
                    "status": status,
                    "payment_amount": money(amount),
                    "response_code": code,
                    "outcome": outcome,
                    "source_file": "x.csv",
                    "line_number": 2,
                    "payment_id": "X",
                    "acted": acted,
                }
                for when, refund_id, status, amount, code, outcome, acted in [
                    (D - DAY, "AR2", "APPROVED", "-49.00", "00", "AMOUNT_MISMATCH", True),
                    (D + DAY, "AR2", "APPROVED", "-49.00", "00", "AMOUNT_MISMATCH", False),
                    (D, "AR3", "DECLINED", "-50.00", None, "DECLINED", True),
                    (D - DAY, "AR4", "APPROVED", "-49.00", "00", "AMOUNT_MISMATCH", True),
                ]
            ],
        },
    )
    assert only(rows, "payment_id", "outcome", "answer_line_rank", "acts", "acted_on") == [
        ("P1", "DECLINED", 1, True, None),
        ("P2", "DECLINED", 2, False, None),
        ("P3", "DECLINED", 1, True, None),
        ("P4", "AMOUNT_MISMATCH", 1, False, D - DAY),
        ("P5", "DECLINED", 1, True, None),
        ("P6", "AMOUNT_MISMATCH", 1, True, None),
        ("P7", "UNMATCHED", 1, False, None),
    ]


def test_payment_answers_each_answer_of_d_once_and_whether_d_acted(unit):
    rows = unit.build(
        "payment_answers",
        {
            "intermediate.int_payments_matched_to_refunds": [
                {
                    **{
                        key: value
                        for key, value in payment(
                            payment_id, refund_id, "-50.00", status, line_number=line
                        ).items()
                        if key != "dq_error"
                    },
                    "outcome": outcome,
                    "answer_line_rank": rank,
                    "acts": acts,
                }
                for payment_id, refund_id, status, line, outcome, rank, acts in [
                    ("P1", "AR1", "DECLINED", 2, "DECLINED", 1, True),
                    ("P2", "AR1", "DECLINED", 3, "DECLINED", 2, False),
                    ("P3", "AR2", "APPROVED", 4, "REFUNDED", 1, False),
                    ("P4", "AR9", "APPROVED", 5, "UNMATCHED", 1, False),
                ]
            ]
        },
    )
    assert rows == [
        {
            "as_of_date": D,
            "refund_id": refund_id,
            "status": status,
            "payment_amount": money("-50.00"),
            "response_code": code,
            "outcome": outcome,
            "source_file": "payments_20260105.csv",
            "line_number": line,
            "payment_id": payment_id,
            "acted": acted,
        }
        for refund_id, status, code, outcome, line, payment_id, acted in [
            ("AR1", "DECLINED", "54", "DECLINED", 2, "P1", True),
            ("AR2", "APPROVED", "00", "REFUNDED", 4, "P3", False),
        ]
    ]


def test_tickler_reconciliation_exceptions_approved_after_decline_once_per_refund(unit):
    """An approval in the file of a date after one whose file declined the refund, D's file
    holding one of the two: APPROVED_AFTER_DECLINE, unless another date raised it; a rerun of D
    keeps the row D raised."""
    later, earlier = "payments_20260106.csv", "payments_20260104.csv"
    rows = unit.build(
        "tickler_reconciliation_exceptions",
        {
            "intermediate.int_payments_matched_to_refunds": [
                # Approved here, declined by D - 1's file.
                matched(
                    "AR1", "P1", "REFUNDED", 2, to_post=True, source_file="payments_20260105.csv"
                ),
                # Declined here (raised), approved by D + 1's file, reconciled first.
                matched(
                    "AR2",
                    "P2",
                    "DECLINED",
                    3,
                    detail="declined 05",
                    response_code="05",
                    source_file="payments_20260105.csv",
                ),
                # Approved here after D - 1's decline, but D - 2 raised it already.
                matched("AR3", "P3", "REFUNDED", 4, source_file="payments_20260105.csv"),
                # Approved here, declined by D + 1's file only: not after a decline.
                matched("AR4", "P4", "REFUNDED", 5, source_file="payments_20260105.csv"),
                # Raised by an earlier run of D: raised again, as it was.
                matched("AR5", "P5", "REFUNDED", 6, source_file="payments_20260105.csv"),
                # The same decline another date acted on: neither raised nor paired here.
                matched("AR6", "P6", "DECLINED", 7, detail="declined 05", acts=False),
            ],
            "main.payment_answers": [
                {
                    "as_of_date": when,
                    "refund_id": refund_id,
                    "status": status,
                    "payment_amount": money("-50.00"),
                    "response_code": code,
                    "outcome": outcome,
                    "source_file": file,
                    "line_number": 3,
                    "payment_id": payment_id,
                    "acted": True,
                }
                for when, refund_id, status, code, outcome, file, payment_id in [
                    (D - DAY, "AR1", "DECLINED", "05", "DECLINED", earlier, "X1"),
                    (D + DAY, "AR2", "APPROVED", "00", "REFUNDED", later, "X2"),
                    (D - DAY, "AR3", "DECLINED", "05", "DECLINED", earlier, "X3"),
                    (D + DAY, "AR4", "DECLINED", "05", "DECLINED", later, "X4"),
                    (D - DAY, "AR5", "DECLINED", "05", "DECLINED", earlier, "X5"),
                    # A pair of two other dates: theirs to raise.
                    (D - 2 * DAY, "AR7", "DECLINED", "05", "DECLINED", earlier, "X7"),
                    (D - DAY, "AR7", "APPROVED", "00", "REFUNDED", earlier, "X8"),
                ]
            ],
            "main.tickler_refund_exceptions": [
                {
                    "as_of_date": when,
                    "credit_id": f"C_{refund_id}",
                    "reason_code": reason,
                    "reason_detail": detail,
                    "source": "RECONCILIATION",
                    "refund_id": refund_id,
                }
                for when, refund_id, reason, detail in [
                    (D - 2 * DAY, "AR3", "APPROVED_AFTER_DECLINE", "refund AR3: before"),
                    (D, "AR5", "APPROVED_AFTER_DECLINE", "refund AR5: as raised"),
                    (D - DAY, "AR1", "REFUND_DECLINED", "refund AR1: declined 05"),
                ]
            ],
            "main.refund_ledger": [ledger_row(f"AR{n}") for n in range(1, 8)],
        },
    )
    assert only(rows, "refund_id", "reason_code", "reason_detail") == [
        (
            "AR1",
            "APPROVED_AFTER_DECLINE",
            f"refund AR1: approved as payment P1 (payments_20260105.csv) after {earlier} line 3 "
            "declined it (05): the money moved; check that the credit was not refunded another "
            "way",
        ),
        (
            "AR2",
            "APPROVED_AFTER_DECLINE",
            f"refund AR2: approved as payment X2 ({later}) after payments_20260105.csv line 3 "
            "declined it (05): the money moved; check that the credit was not refunded another "
            "way",
        ),
        ("AR2", "REFUND_DECLINED", "refund AR2: declined 05"),
        ("AR5", "APPROVED_AFTER_DECLINE", "refund AR5: as raised"),
    ]
    assert {(row["as_of_date"], row["source"]) for row in rows} == {(D, "RECONCILIATION")}
