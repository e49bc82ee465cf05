"""A credit's story across every date: its outcomes, its refunds' ledger events, when and where
the refund files holding its refunds were delivered, its postings, and its exceptions with the
resolution in force of each."""

from __future__ import annotations

from auto_refunds.worklist.queries import Reader


def of_credit(reader: Reader, credit_id: str) -> dict:
    dates = reader.dates()
    if not dates:
        return {
            "outcomes": [],
            "events": [],
            "deliveries": [],
            "postings": [],
            "exceptions": [],
        }
    start, end = dates[0], dates[-1]
    found = {}
    for name, order in (
        ("outcomes", "as_of_date"),
        # States only move up (ledger_state_rank in macros.sql), at most once a date after SENT.
        (
            "ledger_events",
            "as_of_date, refund_id, "
            "case status when 'SENT' then 0 when 'UNANSWERED' then 1 else 2 end",
        ),
        ("postings", "as_of_date, payment_id"),
    ):
        reader.relation(name, start, end)
        found[name] = _rows(
            reader, f"select * from {name} where credit_id = ? order by {order}", credit_id
        )
    # A refund is in the refund file its SENT event names (``source_file``), of that date.
    reader.relation("deliveries", start, end)
    deliveries = _rows(
        reader,
        "select e.as_of_date, e.refund_id, e.source_file as file, d.destination, "
        "d.remote_path, d.outcome, d.delivered, d.attempts, d.finished_at, d.error "
        "from ledger_events as e left join deliveries as d "
        "on d.as_of_date = e.as_of_date and d.file = e.source_file "
        "where e.credit_id = ? and e.status = 'SENT' order by e.as_of_date, e.refund_id",
        credit_id,
    )
    queue = reader.resolved_exceptions(start, end)
    return {
        "outcomes": found["outcomes"],
        "events": found["ledger_events"],
        "deliveries": deliveries,
        "postings": found["postings"],
        "exceptions": _rows(
            reader,
            f"select * from {queue} where credit_id = ? order by as_of_date, source",
            credit_id,
        ),
    }


def _rows(reader: Reader, query: str, credit_id: str) -> list[dict]:
    cursor = reader.con.execute(query, [credit_id])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
