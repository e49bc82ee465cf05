"""What each reason code means to a clerk, and the next step to take: one table, shown in the
lists and on an item's page. A test checks every reason code the SQL models emit is here."""

from __future__ import annotations

from typing import NamedTuple


class Reason(NamedTuple):
    label: str
    next_step: str


REASONS = {
    # Eligibility: why a credit was not refunded automatically.
    "PREVIOUSLY_DECLINED": Reason(
        "A refund to this card was declined before",
        "Refund by check or another way, or ask the patient for another card.",
    ),
    "MISSING_REQUIREMENTS": Reason(
        "No account or no amount to refund",
        "Fix the account or the balance in ImagineOne; the next run picks it up.",
    ),
    "BELOW_MIN_THRESHOLD": Reason(
        "Below the client's minimum refund",
        "Keep it as credit, or refund by hand if the client asks.",
    ),
    "NO_MATCHING_TRANSACTION": Reason(
        "No card payment to refund it to",
        "Find how the patient paid; refund by check or transfer the credit.",
    ),
    "CREDIT_EXCEEDS_TRANSACTION": Reason(
        "The credit is larger than the card payment left to refund",
        "Check the account's payments; refund the rest by check or transfer it.",
    ),
    "DEBIT_PIN_TRANSACTION": Reason(
        "Paid by debit card with PIN, which cannot take a refund",
        "Refund by check or another way.",
    ),
    "CARD_EXPIRED": Reason(
        "The card paid with has expired",
        "Refund by check, or ask the patient for a current card.",
    ),
    "REFUND_WINDOW_EXPIRED": Reason(
        "The payment is too old to refund to the card",
        "Refund by check or another way.",
    ),
    # Reconciliation: what ImaginePay answered to a refund sent.
    "REFUND_DECLINED": Reason(
        "ImaginePay declined the refund",
        "Refund by check or another way; the card will not take it.",
    ),
    "RETURN_AMOUNT_MISMATCH": Reason(
        "ImaginePay refunded another amount than sent",
        "Compare the refund in ImaginePay with the credit; correct the balance in ImagineOne.",
    ),
    "NO_PROCESSOR_RESPONSE": Reason(
        "No answer from ImaginePay yet",
        "Look the refund up in ImaginePay; if it went through, nothing to do.",
    ),
    "APPROVED_AFTER_DECLINE": Reason(
        "Approved after an earlier decline",
        "Make sure the patient was not refunded twice (by card and by hand).",
    ),
}


def reason_label(code: str | None) -> str:
    found = REASONS.get(code or "")
    return found.label if found else (code or "")


def next_step(code: str | None) -> str:
    found = REASONS.get(code or "")
    return found.next_step if found else ""
