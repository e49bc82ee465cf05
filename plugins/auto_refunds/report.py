"""Plain-language summaries of a day, for people who manage the refunds, not the code."""

from __future__ import annotations

import datetime as dt

from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

_LABELS = {
    "DUE": "refunds sent to ImaginePay",
    "ALREADY_REQUESTED": "already requested on an earlier day",
    "NOT_ENROLLED": "client not enrolled in auto-refunds",
}


def _line(count: int, amount, label: str) -> str:
    money = "" if amount is None else f"{amount:,.2f}"
    return f"  {count:>9,}  {money:>16}  {label}"


def daily_summary(as_of: dt.date, settings: Settings | None = None) -> str:
    settings = settings or Settings.from_env()
    with connect(settings, as_of) as con:
        outcomes = con.execute(
            """
            select outcome, reason_code, count(*), sum(credit_amount)
            from credit_outcomes where as_of_date = ?
            group by all order by outcome, reason_code
            """,
            [as_of],
        ).fetchall()
        answers = con.execute(
            """
            select refund_ledger_events.status, count(*), sum(refund_amount)
            from refund_ledger_events
            inner join refund_ledger using (refund_id)
            where refund_ledger_events.as_of_date = ? and refund_ledger_events.status <> 'SENT'
            group by all order by 1
            """,
            [as_of],
        ).fetchall()
        still_open = con.execute(
            "select count(*), sum(refund_amount) from refund_ledger where status = 'SENT'"
        ).fetchone()
        postings = con.execute(
            """
            select refund_id is not null, count(*), sum(payment_amount)
            from payment_postings where as_of_date = ? group by all order by 1
            """,
            [as_of],
        ).fetchall()
        unmatched = con.execute(
            "select count(*) from unmatched_returns where as_of_date = ?", [as_of]
        ).fetchone()[0]
        quarantined = con.execute(
            """
            select quarantine_rows.source_file, count(*)
            from quarantine_rows
            inner join landing.files using (source_file)
            where files.file_date = ? or files.file_kind = 'client_rules'
            group by all order by 1
            """,
            [as_of],
        ).fetchall()
    if not outcomes:
        return f"{as_of}: no published run"
    total = sum(count for _, _, count, _ in outcomes)
    lines = [f"{as_of}: {total:,} credit balances in ImagineOne's snapshot"]
    for outcome, reason, count, amount in outcomes:
        lines.append(_line(count, amount, _LABELS.get(outcome) or f"exception: {reason}"))
    if answers or postings:
        lines.append("  ImaginePay's answers reconciled today:")
        names = {
            "REFUNDED": "refunds approved and posted",
            "DECLINED": "refunds declined (exception REFUND_DECLINED)",
            "AMOUNT_MISMATCH": "refunds approved for another amount (RETURN_AMOUNT_MISMATCH)",
            "UNANSWERED": "refunds unanswered for 3 days (NO_PROCESSOR_RESPONSE)",
        }
        for status, count, amount in answers:
            lines.append(_line(count, amount, names.get(status, status)))
        for is_refund, count, amount in postings:
            label = "refund postings" if is_refund else "ordinary card payments posted"
            lines.append(_line(count, amount, f"{label} for ImagineOne"))
        if unmatched:
            lines.append(_line(unmatched, None, "returns for refunds we never sent (not posted)"))
        lines.append(_line(still_open[0], still_open[1], "refunds still awaiting an answer"))
    for source_file, count in quarantined:
        lines.append(_line(count, None, f"unreadable lines quarantined in {source_file}"))
    return "\n".join(lines)
