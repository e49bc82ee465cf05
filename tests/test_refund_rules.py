"""The refund rules of CONTRACT 3, one test per rule and per boundary: given small inputs, the
exact outcome of every credit. Grep a reason code to find the test that pins it.

Over 300 lines: one test per rule and boundary, in the contract's order.
"""

from __future__ import annotations

import datetime as dt

import pytest
from scenario import D, credit, refund, sale


def test_due_against_the_one_settled_sale(scenario):
    scenario.write_credits(D, credit("C1", "50.00"))
    scenario.write_transactions(D, sale("T1", "100.00"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}


def test_not_enrolled_when_client_disabled_or_missing(scenario):
    scenario.write_rules(("CL1", "false", "", ""))
    scenario.write_credits(D, credit("C1"), credit("C2", client="CL9"))
    scenario.write_transactions(D, sale("T1"), sale("T9", client="CL9"))
    assert scenario.decide() == {"C1": ("NOT_ENROLLED", None), "C2": ("NOT_ENROLLED", None)}


def test_not_enrolled_wins_over_every_later_rule(scenario):
    scenario.write_rules(("CL1", "false", "100.00", ""))
    scenario.write_credits(D, credit("C1", "0.00", account=""))
    assert scenario.decide() == {"C1": ("NOT_ENROLLED", None)}


def test_missing_requirements_for_empty_account_zero_and_negative_credits(scenario):
    scenario.write_credits(D, credit("C1", account=""), credit("C2", "0.00"), credit("C3", "-5.00"))
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {
        "C1": ("MISSING_REQUIREMENTS", None),
        "C2": ("MISSING_REQUIREMENTS", None),
        "C3": ("MISSING_REQUIREMENTS", None),
    }


def test_below_min_threshold_and_a_credit_equal_to_the_threshold(scenario):
    # A cent below the threshold is out, exactly at it is in; an empty threshold is none at all.
    scenario.write_rules(("CL1", "true", "5.00", ""), ("CL2", "true", "", ""))
    scenario.write_credits(
        D, credit("C1", "4.99"), credit("C2", "5.00"), credit("C3", "0.01", client="CL2")
    )
    scenario.write_transactions(D, sale("T1"), sale("T2", client="CL2"))
    assert scenario.decide() == {
        "C1": ("BELOW_MIN_THRESHOLD", None),
        "C2": ("DUE", "T1"),
        "C3": ("DUE", "T2"),
    }


def test_missing_requirements_comes_before_the_threshold(scenario):
    scenario.write_rules(("CL1", "true", "5.00", ""))
    scenario.write_credits(D, credit("C1", "-1.00"))
    assert scenario.decide() == {"C1": ("MISSING_REQUIREMENTS", None)}


def test_no_matching_transaction(scenario):
    scenario.write_credits(D, credit("C1", account="A2"))
    scenario.write_transactions(D, sale("T1", account="A1"))
    assert scenario.decide() == {"C1": ("NO_MATCHING_TRANSACTION", None)}


def test_same_account_id_under_another_client_does_not_match(scenario):
    scenario.write_credits(D, credit("C1", client="CL2", account="A1"))
    scenario.write_transactions(D, sale("T1", client="CL1", account="A1"))
    assert scenario.decide() == {"C1": ("NO_MATCHING_TRANSACTION", None)}


@pytest.mark.parametrize("status", ["PENDING", "VOIDED", "DECLINED"])
def test_only_settled_sales_are_candidates(scenario, status):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1", status=status))
    assert scenario.decide() == {"C1": ("NO_MATCHING_TRANSACTION", None)}


def test_a_sale_dated_after_the_run_date_is_not_a_candidate(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1", txn_date="2026-01-06"))
    assert scenario.decide() == {"C1": ("NO_MATCHING_TRANSACTION", None)}


def test_the_latest_file_decides_a_transactions_status(scenario):
    scenario.write_credits(D, credit("C1"), credit("C2", account="A2"))
    scenario.write_transactions(
        dt.date(2026, 1, 3), sale("T1", status="PENDING"), sale("T2", account="A2")
    )
    scenario.write_transactions(D, sale("T1"), sale("T2", account="A2", status="VOIDED"))
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("NO_MATCHING_TRANSACTION", None)}


def test_files_dated_after_the_run_date_are_not_known(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario.write_transactions(dt.date(2026, 1, 6), sale("T1", status="VOIDED"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}


def test_credit_exceeds_transaction(scenario):
    scenario.write_credits(D, credit("C1", "100.01"))
    scenario.write_transactions(D, sale("T1", "100.00"))
    assert scenario.decide() == {"C1": ("CREDIT_EXCEEDS_TRANSACTION", None)}


def test_credit_equal_to_remaining_is_due(scenario):
    scenario.write_credits(D, credit("C1", "60.00"))
    scenario.write_transactions(D, sale("T1", "100.00"), refund("R1", "T1", "40.00"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}


def test_a_prior_partial_refund_reduces_remaining(scenario):
    scenario.write_credits(D, credit("C1", "60.01"))
    scenario.write_transactions(D, sale("T1", "100.00"), refund("R1", "T1", "40.00"))
    assert scenario.decide() == {"C1": ("CREDIT_EXCEEDS_TRANSACTION", None)}


def test_pending_refunds_count_and_declined_or_voided_refunds_do_not(scenario):
    scenario.write_credits(D, credit("C1", "70.00"), credit("C2", "70.00", account="A2"))
    scenario.write_transactions(
        D,
        sale("T1", "100.00"),
        refund("R1", "T1", "40.00", status="PENDING"),
        sale("T2", "100.00", account="A2"),
        refund("R2", "T2", "40.00", status="DECLINED", account="A2"),
        refund("R3", "T2", "40.00", status="VOIDED", account="A2"),
    )
    assert scenario.decide() == {
        "C1": ("CREDIT_EXCEEDS_TRANSACTION", None),
        "C2": ("DUE", "T2"),
    }


def test_debit_pin_transaction(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1", card_type="DEBIT", cvm="PIN"))
    assert scenario.decide() == {"C1": ("DEBIT_PIN_TRANSACTION", None)}


def test_debit_with_signature_and_credit_with_pin_are_refundable(scenario):
    scenario.write_credits(D, credit("C1"), credit("C2", account="A2"))
    scenario.write_transactions(
        D,
        sale("T1", card_type="DEBIT", cvm="SIGNATURE"),
        sale("T2", account="A2", card_type="CREDIT", cvm="PIN"),
    )
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("DUE", "T2")}


def test_debit_pin_is_judged_only_among_sales_that_cover_the_credit(scenario):
    # T2 is not DEBIT/PIN but too small: the covering candidates are all DEBIT/PIN.
    scenario.write_credits(D, credit("C1", "50.00"))
    scenario.write_transactions(
        D, sale("T1", "100.00", card_type="DEBIT", cvm="PIN"), sale("T2", "20.00")
    )
    assert scenario.decide() == {"C1": ("DEBIT_PIN_TRANSACTION", None)}


def test_card_expiring_this_month_is_valid_and_last_month_is_expired(scenario):
    # D is 2026-01-05: 01/26 is valid through 2026-01-31, 12/25 expired on 2025-12-31, and
    # 12/99 is December 2099 (YY is 20YY), not 1999.
    scenario.write_credits(D, credit("C1"), credit("C2", account="A2"), credit("C3", account="A3"))
    scenario.write_transactions(
        D,
        sale("T1", card_exp="01/26"),
        sale("T2", account="A2", card_exp="12/25"),
        sale("T3", account="A3", card_exp="12/99"),
    )
    assert scenario.decide() == {
        "C1": ("DUE", "T1"),
        "C2": ("CARD_EXPIRED", None),
        "C3": ("DUE", "T3"),
    }


def test_card_valid_through_the_last_day_of_its_month_and_expired_the_day_after(scenario):
    end_of_month, next_day = dt.date(2026, 1, 31), dt.date(2026, 2, 1)
    scenario.write_credits(end_of_month, credit("C1"))
    scenario.write_transactions(end_of_month, sale("T1", card_exp="01/26"))
    assert scenario.decide(end_of_month) == {"C1": ("DUE", "T1")}
    scenario.write_credits(next_day, credit("C1"))
    assert scenario.decide(next_day) == {"C1": ("CARD_EXPIRED", None)}


@pytest.mark.parametrize(
    ("refund_window_days", "days"),
    [("", 180), ("30", 30), ("0", 0)],
    ids=["empty-is-180", "client-30", "client-0"],
)
def test_a_sale_exactly_the_window_old_is_in_and_a_day_older_is_out(
    scenario, refund_window_days, days
):
    # Expired when D - txn_date > refund_window_days; a window of 0 is the day itself, not empty.
    scenario.write_rules(("CL1", "true", "", refund_window_days))
    scenario.write_credits(D, credit("C1"), credit("C2", account="A2"))
    scenario.write_transactions(
        D,
        sale("T1", txn_date=str(D - dt.timedelta(days=days))),
        sale("T2", account="A2", txn_date=str(D - dt.timedelta(days=days + 1))),
    )
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("REFUND_WINDOW_EXPIRED", None)}


def test_rules_narrow_the_candidates_in_order(scenario):
    # T1 expired card, T2 outside the window, T3 debit PIN: card expiry is checked before the
    # window, so with T1 and T2 left after rule 8, rule 9 removes T1 and rule 10 removes T2.
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(
        D,
        sale("T1", card_exp="11/25"),
        sale("T2", txn_date="2025-01-01"),
        sale("T3", card_type="DEBIT", cvm="PIN"),
    )
    assert scenario.decide() == {"C1": ("REFUND_WINDOW_EXPIRED", None)}


def test_choice_latest_date_then_largest_amount_then_smallest_txn_id(scenario):
    scenario.write_credits(
        D,
        credit("C1", "10.00"),
        credit("C2", "10.00", account="A2"),
        credit("C3", "10.00", account="A3"),
    )
    scenario.write_transactions(
        D,
        sale("T1", "50.00", "2025-12-01"),
        sale("T2", "20.00", "2025-12-02"),
        sale("T3", "20.00", "2025-12-02", account="A2"),
        sale("T4", "30.00", "2025-12-02", account="A2"),
        # Same date, same amount: the smallest txn_id as text, "T10" < "T9".
        sale("T9", "30.00", "2025-12-02", account="A3"),
        sale("T10", "30.00", "2025-12-02", account="A3"),
    )
    assert scenario.decide() == {
        "C1": ("DUE", "T2"),
        "C2": ("DUE", "T4"),
        "C3": ("DUE", "T10"),
    }


def test_two_credits_sharing_one_sale_in_credit_date_then_id_order(scenario):
    scenario.write_credits(
        D,
        credit("C3", "30.00", credit_date="2026-01-01"),
        credit("C1", "50.00", credit_date="2026-01-02"),
        credit("C2", "20.00", credit_date="2026-01-02"),
    )
    scenario.write_transactions(D, sale("T1", "100.00"))
    # 30 + 50 = 80 within 100; 80 + 20 = 100 still within: all three are admitted.
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("DUE", "T1"), "C3": ("DUE", "T1")}


def test_credits_beyond_the_remaining_of_a_shared_sale_exceed_it(scenario):
    scenario.write_credits(
        D,
        credit("C1", "60.00", credit_date="2026-01-01"),
        credit("C2", "30.00", credit_date="2026-01-02"),
        credit("C3", "5.00", credit_date="2026-01-03"),
    )
    scenario.write_transactions(D, sale("T1", "80.00"))
    # 60 fits; 60 + 30 = 90 > 80; 60 + 30 + 5 = 95 > 80: the prefix sum decides, so C3 is
    # out too although 60 + 5 would fit.
    assert scenario.decide() == {
        "C1": ("DUE", "T1"),
        "C2": ("CREDIT_EXCEEDS_TRANSACTION", "T1"),
        "C3": ("CREDIT_EXCEEDS_TRANSACTION", "T1"),
    }


def test_already_requested_and_refund_ids_are_stable(scenario):
    first = dt.date(2026, 1, 4)
    scenario.write_credits(first, credit("C1", "50.00"))
    scenario.write_transactions(first, sale("T1", "100.00"))
    scenario.run(first)
    scenario.write_credits(D, credit("C1", "50.00"), credit("C2", "50.00"))
    # Our refund of C1 was requested against T1 in another run: remaining(T1) is 50.
    assert scenario.decide() == {"C1": ("ALREADY_REQUESTED", None), "C2": ("DUE", "T1")}
    rerun_ids = scenario.query("select refund_id from marts.credit_outcomes where credit_id='C2'")
    scenario.run(D)
    assert (
        scenario.query("select refund_id from tickler_true_refunds_due where credit_id = 'C2'")
        == rerun_ids
    )


def test_our_refund_seen_by_the_processor_counts_once(scenario):
    first = dt.date(2026, 1, 4)
    scenario.write_credits(first, credit("C1", "50.00"))
    scenario.write_transactions(first, sale("T1", "100.00"))
    scenario.run(first)
    (refund_id,) = scenario.query("select refund_id from refund_ledger")[0]
    scenario.write_credits(D, credit("C2", "50.00"))
    scenario.write_transactions(
        D, refund("R1", "T1", "50.00", status="SETTLED", merchant_reference=refund_id)
    )
    # Counted twice, remaining(T1) would be 0; counted once it is 50.
    assert scenario.decide() == {"C2": ("DUE", "T1")}


def test_previously_declined(scenario):
    first = dt.date(2026, 1, 4)
    scenario.write_credits(first, credit("C1", "50.00"))
    scenario.write_transactions(first, sale("T1", "100.00"))
    scenario.run(first)
    scenario.query("update refund_ledger set status = 'DECLINED'")
    scenario.write_credits(D, credit("C1", "50.00"), credit("C2", "100.00"))
    # A declined refund leaves remaining(T1) whole for C2.
    assert scenario.decide() == {
        "C1": ("PREVIOUSLY_DECLINED", None),
        "C2": ("DUE", "T1"),
    }


def test_previously_declined_comes_after_enrolment_and_before_requirements(scenario):
    first = dt.date(2026, 1, 4)
    scenario.write_credits(first, credit("C1", "50.00"))
    scenario.write_transactions(first, sale("T1", "100.00"))
    scenario.run(first)
    scenario.query("update refund_ledger set status = 'DECLINED'")
    scenario.write_credits(D, credit("C1", "0.00"))
    assert scenario.decide() == {"C1": ("PREVIOUSLY_DECLINED", None)}


def test_reason_detail_is_human_readable(scenario):
    scenario.write_credits(D, credit("C1", "120.00"))
    scenario.write_transactions(
        D, sale("T123", "100.00", "2025-12-01"), refund("R1", "T123", "20.00")
    )
    scenario.decide()
    assert scenario.query("select reason_detail from marts.tickler_refund_exceptions") == [
        ("credit 120.00 exceeds remaining 80.00 on sale T123 of 2025-12-01",)
    ]
