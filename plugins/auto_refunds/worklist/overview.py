"""A date's overview: its counts and totals, where and when its refund file and manifest were
delivered, the open and resolved exceptions by reason, the reconciliation's outcomes, and the
charts' series over the dates before it."""

from __future__ import annotations

import datetime as dt

from auto_refunds.locations import REFUNDS
from auto_refunds.worklist.queries import Reader


def of_date(reader: Reader, day: dt.date, chart_days: int = 30) -> dict:
    start = day - dt.timedelta(days=chart_days - 1)
    reader.relation("outcomes", day, day)
    reader.relation("refunds_due", day, day)
    reader.relation("postings", day, day)
    reader.relation("deliveries", day, day)
    reader.relation("ledger_events", start, day)
    queue = reader.resolved_exceptions(start, day)
    one = reader.con.execute
    credits = one("select count(*) from outcomes").fetchone()[0]
    due = one("select count(*), coalesce(sum(refund_amount), 0) from refunds_due").fetchone()
    postings = one("select count(*), coalesce(sum(payment_amount), 0) from postings").fetchone()
    by_reason = one(
        f"""select reason_code, count(*) as total,
            count(*) filter (where resolution is null) as open,
            count(*) filter (where resolution is not null) as resolved,
            coalesce(sum(credit_amount), 0) as amount
        from {queue} where as_of_date = ? group by reason_code order by total desc""",
        [day],
    ).fetchall()
    # The refund file sorts before its manifest (``.csv`` before ``.manifest.json``).
    cursor = one("select * from deliveries where destination = ? order by file", [REFUNDS])
    names = [d[0] for d in cursor.description]
    delivery = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    reconciliation = dict(
        one(
            "select status, count(*) from ledger_events where as_of_date = ? group by status",
            [day],
        ).fetchall()
    )
    days = [d for d in reader.dates() if start <= d <= day]
    per_day = {
        (row[0], row[1]): row[2]
        for row in one(
            "select as_of_date, status, count(*) from ledger_events group by all"
        ).fetchall()
    }
    exceptions_per_day = {
        (row[0], row[1]): row[2]
        for row in one(
            "select as_of_date, reason_code, count(*) from exceptions group by all"
        ).fetchall()
    }
    return {
        "day": day,
        "credits": credits,
        "due_count": due[0],
        "due_total": due[1],
        "postings_count": postings[0],
        "postings_total": postings[1],
        "delivery": delivery,
        "by_reason": [
            dict(zip(("reason", "total", "open", "resolved", "amount"), row, strict=True))
            for row in by_reason
        ],
        "reconciliation": {
            "approved": reconciliation.get("REFUNDED", 0),
            "declined": reconciliation.get("DECLINED", 0),
            "mismatched": reconciliation.get("AMOUNT_MISMATCH", 0),
            "unanswered": reconciliation.get("UNANSWERED", 0),
        },
        "chart_days": days,
        "refund_series": {
            label: [per_day.get((d, status), 0) for d in days]
            for label, status in (
                ("sent", "SENT"),
                ("approved", "REFUNDED"),
                ("declined", "DECLINED"),
            )
        },
        "exception_series": {
            reason: [exceptions_per_day.get((d, reason), 0) for d in days]
            for reason in sorted({r for (_, r) in exceptions_per_day})
        },
    }
