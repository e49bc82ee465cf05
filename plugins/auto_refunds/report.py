"""Plain-language summaries of a day's run, for people who manage the refunds, not the code."""

from __future__ import annotations

import datetime as dt

from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect


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
        quarantined = con.execute(
            """
            select quarantine_rows.source_file, count(*)
            from quarantine_rows
            inner join landing.files using (source_file)
            where (files.file_kind = 'credits' and files.file_date = ?)
                or files.file_kind = 'client_rules'
                or (files.file_kind = 'transactions' and files.file_date = ?)
            group by all order by 1
            """,
            [as_of, as_of],
        ).fetchall()
    if not outcomes:
        return f"{as_of}: no published run"
    total = sum(count for _, _, count, _ in outcomes)
    lines = [f"{as_of}: {total} credits in the snapshot"]
    labels = {
        "DUE": "refunds due (sent to ImaginePay)",
        "ALREADY_REQUESTED": "already requested on an earlier day",
        "NOT_ENROLLED": "client not enrolled",
    }
    for outcome, reason, count, amount in outcomes:
        label = labels.get(outcome) or f"exception {reason}"
        lines.append(f"  {count:>9,}  {amount:>16,.2f}  {label}")
    for source_file, count in quarantined:
        lines.append(f"  {count:>9,}  {'':>16}  quarantined lines in {source_file}")
    return "\n".join(lines)
