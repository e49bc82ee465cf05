"""The work items' walk in Python, row by row: the independent reference the SQL rebuild
(``worklist.items``) is compared with over random histories (test_work_items.py)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from auto_refunds.worklist.items import CLOSED, NAMES, OPEN, RESOLVED, Exception_, Resolution


@dataclass
class Item:
    credit_id: str
    client_id: str | None
    account_id: str | None
    credit_amount: Decimal
    reason_code: str
    reason_detail: str | None
    source: str
    refund_id: str | None
    first_seen: dt.date
    last_seen: dt.date
    due_on: dt.date | None = None
    status: str = OPEN
    closed_reason: str | None = None
    assigned_to: str | None = None
    follow_up_on: dt.date | None = None
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    _order: int = -1
    history: list = field(default_factory=list)

    def row(self) -> dict:
        return {name: getattr(self, name) for name in NAMES}

    def note(self, day: dt.date, event: str, row: Exception_ | None = None, detail=None) -> None:
        values = {
            name: getattr(row, name) if row is not None else None
            for name in ("reason_code", "reason_detail", "credit_amount", "source", "refund_id")
        }
        if row is not None:
            values["refund_id"] = row.refund_id or None
        self.history.append(
            {
                "credit_id": self.credit_id,
                "first_seen": self.first_seen,
                "seq": len(self.history) + 1,
                "as_of_date": day,
                "event": event,
                **values,
                "detail": detail,
            }
        )

    def take(self, row: Exception_) -> None:
        # The detail alone is no change: it names the date (e.g. "on or before D") each day.
        shown = (self.reason_code, self.credit_amount, self.source, self.refund_id or "")
        if shown != (row.reason_code, row.credit_amount, row.source, row.refund_id):
            self.note(row.as_of_date, "CHANGED", row)
        self.client_id, self.account_id = row.client_id, row.account_id
        self.credit_amount, self.reason_code = row.credit_amount, row.reason_code
        self.reason_detail, self.source = row.reason_detail, row.source
        self.refund_id = row.refund_id or None
        self.last_seen = row.as_of_date

    def resolve(self, day: dt.date, found: Resolution) -> None:
        if found.order > self._order:
            self.status = RESOLVED
            self.resolution, self.resolved_by = found.resolution, found.resolved_by
            self.resolved_at, self._order = found.resolved_at, found.order
            self.note(day, RESOLVED, detail=f"{found.resolution} by {found.resolved_by}")

    def close(self, day: dt.date, why: str) -> None:
        self.status, self.closed_reason = CLOSED, why
        self.note(day, CLOSED, detail=why)


def _same_problem(item: Item, row: Exception_) -> bool:
    return item.reason_code == row.reason_code and item.credit_amount == row.credit_amount


def walk(
    exceptions: Iterable[Exception_],
    snapshots: dict[dt.date, set[str]],
    refunded: Iterable[tuple[dt.date, str, str]] = (),
    resolutions: dict[tuple, Resolution] | None = None,
    due_on: dict[str, dt.date] | None = None,
) -> list[dict]:
    """The items, each with its history, sorted by credit_id and first_seen.

    exceptions: every date's exception rows. snapshots: for each date with a snapshot of
    ImagineOne, the credit_ids it held (only those with exceptions are needed). refunded: (date,
    credit_id, refund_id) of each refund that ended REFUNDED on that date. resolutions: the
    resolution in force of each exception row, by ``Exception_.key``. due_on: by credit_id.
    """
    resolutions = resolutions or {}
    due_on = due_on or {}
    rows_of: dict[str, list[Exception_]] = defaultdict(list)
    for row in exceptions:
        rows_of[row.credit_id].append(row)
    refunds_of: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    for day, credit_id, refund_id in refunded:
        refunds_of[credit_id].append((day, refund_id))
    snapshot_days = sorted(snapshots)

    items: list[Item] = []
    for credit_id in sorted(rows_of):
        # Within a date: ELIGIBILITY first (the daily run), then RECONCILIATION, each sorted.
        by_day: dict[dt.date, list[Exception_]] = defaultdict(list)
        for row in sorted(
            rows_of[credit_id], key=lambda r: (r.as_of_date, r.source, r.reason_code, r.refund_id)
        ):
            by_day[row.as_of_date].append(row)
        refunds = sorted(refunds_of.get(credit_id, []))
        days = sorted(set(by_day) | set(snapshot_days) | {day for day, _ in refunds})
        current: Item | None = None
        for day in days:
            for row in by_day.get(day, []):
                if current is not None and (
                    current.status == OPEN
                    or (current.status == RESOLVED and _same_problem(current, row))
                ):
                    current.take(row)
                else:
                    current = Item(
                        credit_id=credit_id,
                        client_id=row.client_id,
                        account_id=row.account_id,
                        credit_amount=row.credit_amount,
                        reason_code=row.reason_code,
                        reason_detail=row.reason_detail,
                        source=row.source,
                        refund_id=row.refund_id or None,
                        first_seen=day,
                        last_seen=day,
                        due_on=due_on.get(credit_id),
                    )
                    current.note(day, "OPENED", row)
                    items.append(current)
                found = resolutions.get(row.key)
                if found is not None:
                    current.resolve(day, found)
            if current is None or current.status != OPEN or current.last_seen >= day:
                continue
            if day in snapshots and credit_id not in snapshots[day]:
                current.close(day, f"credit no longer in the snapshot of {day}")
                continue
            for refunded_on, refund_id in refunds:
                if refunded_on == day:
                    current.close(day, f"refund {refund_id} ended REFUNDED on {day}")
                    break
    return sorted(items, key=lambda i: (i.credit_id, i.first_seen))


def build(*args, **kwargs) -> list[dict]:
    return [item.row() for item in walk(*args, **kwargs)]
