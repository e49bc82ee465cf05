"""One unit test per SQL model of the daily DAG: given rows for its inputs, the exact rows it
builds. One case per row of the rule table (CONTRACT 3) and per boundary; the scenario tests
(test_refund_rules.py) run the same rules end to end.

Over 300 lines: one test per model of the layer, as dbt keeps a layer's unit tests together.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from model_units import D, ModelUnit, ledger_row, money, only

from auto_refunds.fingerprints import sha256_of

DAY = dt.timedelta(days=1)


def refund_id_for(credit_id: str) -> str:
    """The refund id of a credit (docs/formats-and-rules.md), computed apart from the macro."""
    return "AR" + hashlib.sha256(f"auto-refunds:{credit_id}".encode()).hexdigest()[:20].upper()


# Rules 1 to 5: int_credits_screened.

ENROLLED = {"client_id": "CL1", "auto_refunds_enabled": True, "dq_error": None}


def credit_columns(credit_id: str, amount: str = "50.00") -> dict:
    """The columns of a credit every model of the rules carries."""
    return {
        "credit_id": credit_id,
        "client_id": "CL1",
        "account_id": "A1",
        "credit_amount": money(amount),
        "credit_date": D - DAY,
    }


def screened_credit(credit_id: str, amount: str = "50.00", **values) -> dict:
    return {**credit_columns(credit_id, amount), "dq_error": None, **values}


@pytest.mark.parametrize(
    ("rules", "credit", "ledger", "expected"),
    [
        pytest.param(
            [],
            {},
            [],
            ("NOT_ENROLLED", None, "client CL1 is not in client_rules"),
            id="1-client-missing",
        ),
        pytest.param(
            [{**ENROLLED, "auto_refunds_enabled": False}],
            {},
            [],
            ("NOT_ENROLLED", None, "client CL1 has not enabled auto-refunds"),
            id="1-client-disabled",
        ),
        pytest.param(
            [{**ENROLLED, "dq_error": "client_id CL1 appears on 2 lines of this file"}],
            {},
            [],
            ("NOT_ENROLLED", None, "client CL1 is not in client_rules"),
            id="1-client-quarantined",
        ),
        pytest.param(
            [ENROLLED],
            {},
            [ledger_row("R1", credit_id="C1")],
            ("ALREADY_REQUESTED", None, "refund R1 was requested on 2026-01-04 and is SENT"),
            id="2-already-requested",
        ),
        pytest.param(
            [ENROLLED],
            {},
            [
                ledger_row(
                    "R1",
                    credit_id="C1",
                    status="DECLINED",
                    response_code="54",
                    response_message="expired card",
                )
            ],
            (
                "EXCEPTION",
                "PREVIOUSLY_DECLINED",
                "refund R1 requested on 2026-01-04 was declined (54 expired card)",
            ),
            id="3-previously-declined",
        ),
        pytest.param(
            [ENROLLED],
            {"account_id": None},
            [],
            ("EXCEPTION", "MISSING_REQUIREMENTS", "credit has no account_id"),
            id="4-no-account",
        ),
        pytest.param(
            [ENROLLED],
            {"credit_amount": money("0.00")},
            [],
            ("EXCEPTION", "MISSING_REQUIREMENTS", "credit amount 0.00 is not above zero"),
            id="4-amount-not-above-zero",
        ),
        pytest.param(
            [{**ENROLLED, "min_balance_threshold": money("50.01")}],
            {},
            [],
            (
                "EXCEPTION",
                "BELOW_MIN_THRESHOLD",
                "credit 50.00 is below the client's minimum balance of 50.01",
            ),
            id="5-below-threshold",
        ),
        pytest.param(
            [{**ENROLLED, "min_balance_threshold": money("50.00")}],
            {},
            [],
            (None, None, None),
            id="5-equal-to-threshold-passes",
        ),
        pytest.param(
            [ENROLLED],
            {},
            [ledger_row("R1", credit_id="C1", requested_date=D)],
            (None, None, None),
            id="2-a-refund-of-this-run-is-decided-again",
        ),
    ],
)
def test_int_credits_screened_rules_1_to_5(unit, rules, credit, ledger, expected):
    rows = unit.build(
        "int_credits_screened",
        {
            "staging.stg_imagineone__client_rules": rules,
            "staging.stg_imagineone__credits": [screened_credit("C1", **credit)],
            "main.refund_ledger": ledger,
        },
    )
    assert only(rows, "screen_outcome", "screen_reason_code", "screen_reason_detail") == [expected]


def test_int_credits_screened_passes_the_window_as_read_and_drops_quarantined_credits(unit):
    rows = unit.build(
        "int_credits_screened",
        {
            "staging.stg_imagineone__client_rules": [ENROLLED],
            "staging.stg_imagineone__credits": [
                screened_credit("C1"),
                screened_credit("C2", dq_error="credit_amount is empty"),
            ],
        },
    )
    assert rows == [
        {
            **credit_columns("C1"),
            "refund_window_days": None,
            "screen_outcome": None,
            "screen_reason_code": None,
            "screen_reason_detail": None,
        }
    ]


# Rules 6 to 11: int_credits_matched_to_sales, over int_credit_candidates.


def passed(credit_id: str = "C1", amount: str = "50.00", window: int | None = None) -> dict:
    """A credit of int_credits_screened that passed rules 1 to 5."""
    return {
        **credit_columns(credit_id, amount),
        "refund_window_days": window,
        "screen_outcome": None,
    }


def candidate(txn_id: str, remaining: str = "100.00", **values) -> dict:
    return {
        "credit_id": "C1",
        "txn_id": txn_id,
        "txn_date": D - DAY,
        "amount": money(values.pop("amount", remaining)),
        "remaining_amount": money(remaining),
        "card_type": "CREDIT",
        "cvm": "SIGNATURE",
        "card_exp": "12/27",
        "card_token": f"tok_{txn_id}",
        "card_last4": "1111",
        **values,
    }


def of_credit(credit: dict, *candidates: dict) -> list[dict]:
    """The candidates as int_credit_candidates gives them: each with what the rules read of its
    credit."""
    carried = {name: credit[name] for name in ("credit_amount", "refund_window_days")}
    return [{**item, **carried} for item in candidates]


def matched(unit: ModelUnit, *candidates: dict, credit: dict | None = None) -> list[tuple]:
    credit = credit or passed()
    rows = unit.build(
        "int_credits_matched_to_sales",
        {
            "intermediate.int_credits_screened": [credit],
            "intermediate.int_credit_candidates": of_credit(credit, *candidates),
        },
    )
    return only(rows, "credit_id", "reason_code", "reason_detail", "original_txn_id")


def test_rule_6_no_matching_transaction(unit):
    assert matched(unit) == [
        (
            "C1",
            "NO_MATCHING_TRANSACTION",
            "no settled card sale on account A1 of client CL1 on or before 2026-01-05",
            None,
        )
    ]


def test_rule_7_credit_exceeds_transaction(unit):
    assert matched(unit, candidate("T1", "49.99"), candidate("T2", "20.00")) == [
        (
            "C1",
            "CREDIT_EXCEEDS_TRANSACTION",
            "credit 50.00 exceeds remaining 49.99 on sale T1 of 2026-01-04"
            " (and 1 other sale(s) alike)",
            None,
        )
    ]


def test_rule_7_remaining_equal_to_the_credit_covers_it(unit):
    assert matched(unit, candidate("T1", "50.00")) == [("C1", None, None, "T1")]


def test_rule_8_debit_pin_among_the_sales_that_cover_the_credit(unit):
    assert matched(
        unit,
        candidate("T1", card_type="DEBIT", cvm="PIN"),
        candidate("T2", "20.00"),
    ) == [
        (
            "C1",
            "DEBIT_PIN_TRANSACTION",
            "sale T1 of 2026-01-04 was paid by debit card with PIN",
            None,
        )
    ]


@pytest.mark.parametrize(("card_type", "cvm"), [("DEBIT", "SIGNATURE"), ("CREDIT", "PIN")])
def test_rule_8_debit_without_pin_and_credit_with_pin_are_refundable(unit, card_type, cvm):
    assert matched(unit, candidate("T1", card_type=card_type, cvm=cvm)) == [
        ("C1", None, None, "T1")
    ]


def test_rule_9_card_expired_last_month_and_valid_through_this_month(unit):
    # D is 2026-01-05: 12/25 expired on 2025-12-31, 01/26 is valid through 2026-01-31.
    assert matched(unit, candidate("T1", card_exp="12/25", card_last4="4242")) == [
        ("C1", "CARD_EXPIRED", "card ending 4242 of sale T1 expired on 2025-12-31", None)
    ]
    assert matched(unit, candidate("T1", card_exp="01/26")) == [("C1", None, None, "T1")]


def test_rule_9_a_card_is_valid_on_the_last_day_of_its_month(unit):
    end_of_month = dt.date(2026, 1, 31)
    rows = unit.build(
        "int_credits_matched_to_sales",
        {
            "intermediate.int_credits_screened": [passed()],
            "intermediate.int_credit_candidates": of_credit(
                passed(), candidate("T1", card_exp="01/26")
            ),
        },
        as_of=end_of_month,
    )
    assert only(rows, "reason_code", "original_txn_id") == [(None, "T1")]


@pytest.mark.parametrize(
    ("window", "days_old", "expected"),
    [
        pytest.param(None, 180, (None, None, "T1"), id="default-180-in"),
        pytest.param(
            None,
            181,
            (
                "REFUND_WINDOW_EXPIRED",
                "sale T1 of 2025-07-08 is 181 days old; the window is 180 days",
                None,
            ),
            id="default-181-out",
        ),
        pytest.param(30, 30, (None, None, "T1"), id="client-30-in"),
        pytest.param(
            30,
            31,
            (
                "REFUND_WINDOW_EXPIRED",
                "sale T1 of 2025-12-05 is 31 days old; the window is 30 days",
                None,
            ),
            id="client-31-out",
        ),
    ],
)
def test_rule_10_refund_window(unit, window, days_old, expected):
    assert matched(
        unit,
        candidate("T1", txn_date=D - days_old * DAY),
        credit=passed(window=window),
    ) == [("C1", *expected)]


def test_rules_7_to_10_narrow_the_candidates_in_order(unit):
    # T3 debit PIN goes at rule 8, T1 (expired card) at rule 9: T2, outside the window, is the
    # last one left, and rule 10 decides.
    assert matched(
        unit,
        candidate("T1", card_exp="12/25"),
        candidate("T2", txn_date=D - 200 * DAY),
        candidate("T3", card_type="DEBIT", cvm="PIN"),
        candidate("T4", "10.00"),
    ) == [
        (
            "C1",
            "REFUND_WINDOW_EXPIRED",
            "sale T2 of 2025-06-19 is 200 days old; the window is 180 days",
            None,
        )
    ]


def test_rule_11_latest_sale_then_largest_amount_then_smallest_txn_id(unit):
    assert matched(
        unit,
        candidate("T1", txn_date=D - 2 * DAY),
        candidate("T2", amount="90.00", remaining="60.00"),
        candidate("T3", amount="90.00", remaining="90.00"),
        candidate("T4", amount="80.00", remaining="80.00"),
    ) == [("C1", None, None, "T2")]


def test_rule_11_the_proposed_sale_carries_what_the_allocation_reads(unit):
    rows = unit.build(
        "int_credits_matched_to_sales",
        {
            "intermediate.int_credits_screened": [passed(window=90)],
            "intermediate.int_credit_candidates": of_credit(
                passed(window=90), candidate("T1", "70.00")
            ),
        },
    )
    assert rows == [
        {
            **credit_columns("C1"),
            "reason_code": None,
            "reason_detail": None,
            "original_txn_id": "T1",
            "original_txn_date": D - DAY,
            "remaining_amount": money("70.00"),
            "card_token": "tok_T1",
            "card_last4": "1111",
        }
    ]


def test_int_credit_candidates_are_the_sales_of_the_same_client_and_account(unit):
    def sale(txn_id: str, client: str = "CL1", account: str = "A1") -> dict:
        return {
            "txn_id": txn_id,
            "client_id": client,
            "account_id": account,
            "remaining_amount": money("10.00"),
        }

    rows = unit.build(
        "int_credit_candidates",
        {
            "intermediate.int_credits_screened": [
                {**passed("C1"), "refund_window_days": 30},
                {**passed("C2"), "screen_outcome": "NOT_ENROLLED"},
            ],
            "intermediate.int_sales_remaining": [
                sale("T1"),
                sale("T2", client="CL2"),
                sale("T3", account="A2"),
            ],
        },
    )
    assert only(
        rows, "credit_id", "credit_amount", "refund_window_days", "txn_id", "remaining_amount"
    ) == [("C1", money("50.00"), 30, "T1", money("10.00"))]


# After rule 11: int_credits_allocated_to_sales shares a sale among its credits.


def proposed(
    credit_id: str, amount: str, credit_date: dt.date, txn_id: str = "T1", remaining: str = "100.00"
) -> dict:
    return {
        **credit_columns(credit_id, amount),
        "credit_date": credit_date,
        "reason_code": None,
        "original_txn_id": txn_id,
        "original_txn_date": D - DAY,
        "remaining_amount": money(remaining),
        "card_token": f"tok_{txn_id}",
        "card_last4": "1111",
    }


def test_allocation_admits_in_credit_date_then_id_order_within_remaining(unit):
    rows = unit.build(
        "int_credits_allocated_to_sales",
        {
            "intermediate.int_credits_matched_to_sales": [
                # 60 + 40 is exactly the remaining 100: both admitted.
                proposed("C2", "60.00", D - 2 * DAY),
                proposed("C1", "40.00", D - DAY),
                # Then no later credit fits, however small.
                proposed("C3", "30.00", D - DAY),
                proposed("C4", "0.01", D),
                # Another sale is shared on its own.
                proposed("C5", "5.00", D, txn_id="T2", remaining="5.00"),
                {**proposed("C6", "1.00", D), "reason_code": "CARD_EXPIRED"},
            ]
        },
    )
    assert only(rows, "credit_id", "reason_code", "reason_detail") == [
        ("C1", None, None),
        ("C2", None, None),
        (
            "C3",
            "CREDIT_EXCEEDS_TRANSACTION",
            "credit 30.00 plus 100.00 due to earlier credits exceeds remaining 100.00"
            " on sale T1 of 2026-01-04",
        ),
        (
            "C4",
            "CREDIT_EXCEEDS_TRANSACTION",
            "credit 0.01 plus 130.00 due to earlier credits exceeds remaining 100.00"
            " on sale T1 of 2026-01-04",
        ),
        ("C5", None, None),
    ]
    assert set(rows[0]) == {
        "credit_id",
        "client_id",
        "account_id",
        "credit_amount",
        "credit_date",
        "original_txn_id",
        "remaining_amount",
        "card_token",
        "card_last4",
        "reason_code",
        "reason_detail",
    }


# Staging: types the lines, and says in dq_error why a line cannot be read.


def landing_lines(source_file: str, *lines: str, file_date: dt.date | None = D) -> list[dict]:
    dated = {} if file_date is None else {"file_date": file_date}
    return [
        {"source_file": source_file, **dated, "line_number": number, "raw_line": line}
        for number, line in enumerate(lines, start=2)
    ]


def test_stg_imagineone__credits_types_the_snapshot_of_d(unit):
    rows = unit.build(
        "stg_imagineone__credits",
        {
            "landing.imagineone__credits": [
                *landing_lines(
                    "credits_20260105.csv",
                    "C1,CL1,,12.50,2026-01-04",
                    "C2,CL1,A1,1.234,2026-01-04",
                    "C3,CL1,A1,1.00,2026-02-30",
                    "C3,CL1,A1,1.00,2026-01-01",
                ),
                *landing_lines(
                    "credits_20260104.csv", "C9,CL1,A1,1.00,2026-01-01", file_date=D - DAY
                ),
            ]
        },
    )
    assert only(
        rows,
        "line_number",
        "credit_id",
        "account_id",
        "credit_amount",
        "credit_date",
        "raw_line",
        "dq_error",
    ) == [
        (2, "C1", None, money("12.50"), dt.date(2026, 1, 4), None, None),
        (
            3,
            "C2",
            "A1",
            None,
            dt.date(2026, 1, 4),
            "C2,CL1,A1,1.234,2026-01-04",
            "credit_amount has more than two decimals: 1.234",
        ),
        (
            4,
            "C3",
            "A1",
            money("1.00"),
            None,
            "C3,CL1,A1,1.00,2026-02-30",
            "credit_id C3 appears on 2 lines of this file; "
            "credit_date is not a date (YYYY-MM-DD): 2026-02-30",
        ),
        (
            5,
            "C3",
            "A1",
            money("1.00"),
            dt.date(2026, 1, 1),
            "C3,CL1,A1,1.00,2026-01-01",
            "credit_id C3 appears on 2 lines of this file",
        ),
    ]


def test_stg_imagineone__client_rules_types_and_leaves_defaults_to_the_rules(unit):
    rows = unit.build(
        "stg_imagineone__client_rules",
        {
            "landing.imagineone__client_rules": landing_lines(
                "client_rules.csv",
                "CL1,TRUE,,",
                "CL2,false,10.00,30",
                "CL3,yes,,ninety",
                file_date=None,
            )
        },
    )
    assert only(
        rows,
        "client_id",
        "auto_refunds_enabled",
        "min_balance_threshold",
        "refund_window_days",
        "dq_error",
    ) == [
        # An empty window stays empty here: its 180 days is rule 10's (int_credits_matched).
        ("CL1", True, None, None, None),
        ("CL2", False, money("10.00"), 30, None),
        (
            "CL3",
            None,
            None,
            None,
            "auto_refunds_enabled must be true or false, found yes; "
            "refund_window_days is not a whole number of days: ninety",
        ),
    ]


def test_stg_imaginepay__transactions_types_each_registered_extract(unit):
    layout = unit.settings.layout
    files = {
        D - DAY: "T1,CL1,A1,SALE,,,100.00,2026-01-01,PENDING,CREDIT,PIN,12/27,tok_1,1111\n",
        D: (
            "T1,CL1,A1,SALE,,,100.00,2026-01-01,settled,credit,pin,12/27,tok_1,1111\n"
            "R1,CL1,A1,REFUND,T1,AR1,10.00,2026-01-02,SETTLED,,,,,\n"
            "T2,CL1,A1,SALE,,,0.00,2026-01-02,SETTLED,DEBIT,NONE,13/27,tok_2,1111\n"
        ),
    }
    registered = []
    for day, lines in files.items():
        path = layout.transactions(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "txn_id,client_id,account_id,txn_type,original_txn_id,merchant_reference,"
            "amount,txn_date,status,card_type,cvm,card_exp,card_token,card_last4\n" + lines
        )
        registered.append(
            {
                "source_file": path.name,
                "file_kind": "transactions",
                "file_date": day,
                "sha256": sha256_of(path),
                "data_lines": lines.count("\n"),
            }
        )
    rows = unit.build("stg_imaginepay__transactions", {"landing.files": registered})
    assert only(
        rows,
        "file_date",
        "line_number",
        "txn_id",
        "txn_type",
        "original_txn_id",
        "merchant_reference",
        "amount",
        "status",
        "card_type",
        "cvm",
        "card_exp",
        "dq_error",
        "superseded_on",
    ) == [
        (
            D - DAY,
            2,
            "T1",
            "SALE",
            None,
            None,
            money("100.00"),
            "PENDING",
            "CREDIT",
            "PIN",
            "12/27",
            None,
            D,
        ),
        (
            D,
            2,
            "T1",
            "SALE",
            None,
            None,
            money("100.00"),
            "SETTLED",
            "CREDIT",
            "PIN",
            "12/27",
            None,
            None,
        ),
        (
            D,
            3,
            "R1",
            "REFUND",
            "T1",
            "AR1",
            money("10.00"),
            "SETTLED",
            None,
            None,
            None,
            None,
            None,
        ),
        (
            D,
            4,
            "T2",
            "SALE",
            None,
            None,
            money("0.00"),
            "SETTLED",
            "DEBIT",
            "NONE",
            "13/27",
            "amount must be above zero, found 0.00; card_exp is not MM/YY",
            None,
        ),
    ]
    assert [row["raw_line"] is None for row in rows] == [True, True, True, False]


def test_int_imaginepay__transactions_known_at_date_is_the_latest_readable_version(unit):
    def typed(txn_id: str, file_date: dt.date, **values) -> dict:
        return {
            "txn_id": txn_id,
            "file_date": file_date,
            "source_file": f"t_{file_date}.csv",
            "line_number": 2,
            "dq_error": None,
            "superseded_on": None,
            **values,
        }

    rows = unit.build(
        "int_imaginepay__transactions_known_at_date",
        {
            "staging.stg_imaginepay__transactions": [
                typed("T1", D - DAY, status="PENDING", superseded_on=D),
                typed("T1", D, status="SETTLED"),
                typed("T2", D - DAY, status="PENDING", superseded_on=D + DAY),
                typed("T2", D + DAY, status="VOIDED"),
                typed("T3", D, dq_error="amount is empty"),
                typed("T4", D + DAY),
            ]
        },
    )
    assert only(rows, "txn_id", "status", "source_file") == [
        ("T1", "SETTLED", f"t_{D}.csv"),
        ("T2", "PENDING", f"t_{D - DAY}.csv"),
    ]


def test_int_sales_remaining_less_every_refund_counted_once(unit):
    def known(txn_id: str, txn_type: str = "SALE", amount: str = "100.00", **values) -> dict:
        return {
            "txn_id": txn_id,
            "client_id": "CL1",
            "account_id": "A1",
            "txn_type": txn_type,
            "amount": money(amount),
            "txn_date": D - DAY,
            "status": "SETTLED",
            "card_type": "CREDIT",
            "cvm": "PIN",
            "card_exp": "12/27",
            "card_token": f"tok_{txn_id}",
            "card_last4": "1111",
            **values,
        }

    def processor_refund(txn_id, original, amount, status="SETTLED", reference=None):
        return known(
            txn_id,
            "REFUND",
            amount,
            original_txn_id=original,
            status=status,
            merchant_reference=reference,
        )

    rows = unit.build(
        "int_sales_remaining",
        {
            "intermediate.int_imaginepay__transactions_known_at_date": [
                known("T1"),
                processor_refund("P1", "T1", "10.00"),
                processor_refund("P2", "T1", "5.00", status="PENDING"),
                processor_refund("P3", "T1", "7.00", status="DECLINED"),
                processor_refund("P4", "T1", "8.00", status="VOIDED"),
                # Our refund AR1 seen by the processor: counted once, at its amount.
                processor_refund("P5", "T1", "20.00", reference="AR1"),
                # The echo of a refund of D's own run is not counted: D decides it again.
                processor_refund("P6", "T1", "30.00", reference="ARD"),
                known("T2", amount="40.00"),
                known("T3", status="PENDING"),
                known("T4", txn_date=D + DAY),
                known("T5", account_id="A2"),
            ],
            "main.refund_ledger": [
                ledger_row("AR1", original_txn_id="T1", refund_amount=money("25.00")),
                ledger_row("AR2", original_txn_id="T2", refund_amount=money("15.00")),
                ledger_row("AR3", original_txn_id="T2", status="DECLINED"),
                ledger_row("ARD", original_txn_id="T2", requested_date=D),
            ],
        },
    )
    # T5's account has no credit: int_credit_candidates leaves it out.
    assert only(rows, "txn_id", "amount", "remaining_amount") == [
        ("T1", money("100.00"), money("65.00")),
        ("T2", money("40.00"), money("25.00")),
        ("T5", money("100.00"), money("100.00")),
    ]
    assert set(rows[0]) == {
        "txn_id",
        "client_id",
        "account_id",
        "txn_date",
        "amount",
        "card_type",
        "cvm",
        "card_exp",
        "card_token",
        "card_last4",
        "remaining_amount",
    }


# Marts: every credit's one outcome, the ticklers, the quarantine.


def allocated(credit_id: str) -> dict:
    """A credit of int_credits_allocated_to_sales, admitted against T1."""
    row = proposed(credit_id, "50.00", D - DAY)
    del row["original_txn_date"]
    return row


def test_credit_outcomes_one_outcome_per_credit(unit):
    rows = unit.build(
        "credit_outcomes",
        {
            "intermediate.int_credits_screened": [
                {
                    **passed("C1"),
                    "screen_outcome": "NOT_ENROLLED",
                    "screen_reason_detail": "client CL1 has not enabled auto-refunds",
                },
                {
                    **passed("C2"),
                    "screen_outcome": "EXCEPTION",
                    "screen_reason_code": "MISSING_REQUIREMENTS",
                    "screen_reason_detail": "credit has no account_id",
                },
                passed("C3"),
                passed("C4"),
                passed("C5"),
            ],
            "intermediate.int_credits_matched_to_sales": [
                {
                    **proposed("C3", "50.00", D - DAY),
                    "reason_code": "CARD_EXPIRED",
                    "reason_detail": "card expired",
                    "original_txn_id": None,
                },
                proposed("C4", "50.00", D - DAY),
                proposed("C5", "50.00", D - DAY),
            ],
            "intermediate.int_credits_allocated_to_sales": [
                allocated("C4"),
                {
                    **allocated("C5"),
                    "reason_code": "CREDIT_EXCEEDS_TRANSACTION",
                    "reason_detail": "exceeds",
                },
            ],
        },
    )
    assert only(
        rows, "credit_id", "outcome", "reason_code", "reason_detail", "original_txn_id", "refund_id"
    ) == [
        ("C1", "NOT_ENROLLED", None, "client CL1 has not enabled auto-refunds", None, None),
        ("C2", "EXCEPTION", "MISSING_REQUIREMENTS", "credit has no account_id", None, None),
        ("C3", "EXCEPTION", "CARD_EXPIRED", "card expired", None, None),
        ("C4", "DUE", None, None, "T1", refund_id_for("C4")),
        ("C5", "EXCEPTION", "CREDIT_EXCEEDS_TRANSACTION", "exceeds", "T1", None),
    ]
    assert {row["as_of_date"] for row in rows} == {D}


def outcome(credit_id: str, outcome_: str, reason_code: str | None = None) -> dict:
    """A row of marts.credit_outcomes of D."""
    due = outcome_ == "DUE"
    return {
        "as_of_date": D,
        **credit_columns(credit_id),
        "outcome": outcome_,
        "reason_code": reason_code,
        "reason_detail": reason_code and f"why {credit_id}",
        "original_txn_id": "T1" if due else None,
        "refund_id": refund_id_for(credit_id) if due else None,
        "card_token": "tok_T1" if due else None,
        "card_last4": "1111" if due else None,
    }


OUTCOMES = [
    outcome("C1", "DUE"),
    outcome("C2", "EXCEPTION", "CARD_EXPIRED"),
    outcome("C3", "NOT_ENROLLED"),
    outcome("C4", "ALREADY_REQUESTED"),
]


def test_tickler_true_refunds_due_one_refund_of_the_whole_credit_per_due_credit(unit):
    rows = unit.build("tickler_true_refunds_due", {"marts.credit_outcomes": OUTCOMES})
    assert rows == [
        {
            "as_of_date": D,
            "refund_id": refund_id_for("C1"),
            "credit_id": "C1",
            "client_id": "CL1",
            "account_id": "A1",
            "original_txn_id": "T1",
            "card_token": "tok_T1",
            "card_last4": "1111",
            "refund_amount": money("50.00"),
        }
    ]


def test_tickler_refund_exceptions_the_eligibility_exceptions(unit):
    rows = unit.build("tickler_refund_exceptions", {"marts.credit_outcomes": OUTCOMES})
    assert rows == [
        {
            "as_of_date": D,
            "credit_id": "C2",
            "client_id": "CL1",
            "account_id": "A1",
            "credit_amount": money("50.00"),
            "reason_code": "CARD_EXPIRED",
            "reason_detail": "why C2",
            "source": "ELIGIBILITY",
            "refund_id": None,
        }
    ]


def test_quarantine_rows_every_unreadable_line_of_the_run_masked(unit):
    def line(source_file: str, number: int, error: str | None, **values) -> dict:
        return {
            "source_file": source_file,
            "line_number": number,
            "raw_line": error and f"{source_file} 4111111111111111",
            "dq_error": error,
            **values,
        }

    rows = unit.build(
        "quarantine_rows",
        {
            "staging.stg_imagineone__credits": [line("c.csv", 2, "bad"), line("c.csv", 3, None)],
            "staging.stg_imagineone__client_rules": [line("r.csv", 2, "worse")],
            "staging.stg_imaginepay__transactions": [
                line("t1.csv", 5, "worst", file_date=D),
                line("t2.csv", 2, "later", file_date=D + DAY),
            ],
        },
    )
    assert only(rows, "source_file", "line_number", "raw_line", "error") == [
        ("c.csv", 2, "c.csv ************1111", "bad"),
        ("r.csv", 2, "r.csv ************1111", "worse"),
        ("t1.csv", 5, "t1.csv ************1111", "worst"),
    ]


def test_quarantine_rows_keep_a_line_that_is_not_utf8_without_its_mark(unit):
    rows = unit.build(
        "quarantine_rows",
        {
            "staging.stg_imagineone__credits": [
                {
                    "source_file": "c.csv",
                    "line_number": 4,
                    "raw_line": "\x01C2,caf\\xe9",
                    "dq_error": "line is not valid UTF-8",
                },
            ],
        },
    )
    assert only(rows, "line_number", "raw_line", "error") == [
        (4, "C2,caf\\xe9", "line is not valid UTF-8")
    ]
