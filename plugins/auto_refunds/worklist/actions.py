"""People's actions on work items (CONTRACT 8): an append-only log beside the resolutions.

Each action (assign, take, follow_up, note, resolve, correct, reopen) is one row with who, when,
the item (credit_id, first_seen), a JSON payload and, for a correction, the id of the entry it
corrects. Nothing is ever updated or deleted (triggers refuse it): an item's assignee, follow-up
date and resolution are what its actions say, read in order. The log lives in the resolutions'
store (``resolutions.connect``: SQLite on the embedded default; the SQL here is plain, for any
store) so that a resolve writes its action and the resolution of the item's latest exception in
one transaction: the items' rebuild keeps reading resolutions only, and a resolved item stays
resolved while later dates report the same problem.

Stale pages: a form carries the id of the item's last action as the person saw it
(``version``) and that of the latest resolution of the item's latest exception (made here or on
the exceptions page). An action on an item whose last action or resolution since is someone
else's is refused, with who and when, in the same transaction that would append it.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from auto_refunds.card_numbers import mask
from auto_refunds.worklist import resolutions

ACTIONS = ("assign", "take", "follow_up", "note", "resolve", "correct", "reopen")
NAME_MAX = 200

SCHEMA = f"""
create table if not exists item_actions (
    id integer primary key autoincrement,
    credit_id text not null,
    first_seen text not null,
    action text not null check (action in ({", ".join(f"'{a}'" for a in ACTIONS)})),
    payload text not null,
    corrects integer references item_actions (id),
    acted_by text not null,
    acted_at text not null
);
create index if not exists item_actions_by_item on item_actions (credit_id, first_seen);
create trigger if not exists item_actions_append_only_update before update on item_actions
begin select raise(abort, 'item actions are append-only'); end;
create trigger if not exists item_actions_append_only_delete before delete on item_actions
begin select raise(abort, 'item actions are append-only'); end;
"""
COLUMNS = (
    "id",
    "credit_id",
    "first_seen",
    "action",
    "payload",
    "corrects",
    "acted_by",
    "acted_at",
)


class ActionError(ValueError):
    """An action that cannot be recorded as given (a 400)."""


class StaleItem(ActionError):
    """Someone else changed the item since the page was loaded (a 409)."""

    def __init__(self, by: str, at: str):
        super().__init__(f"changed by {by} at {at} since you loaded the page; reload and retry")
        self.by, self.at = by, at


@dataclass(frozen=True)
class ItemKey:
    credit_id: str
    first_seen: dt.date


@dataclass
class State:
    """What an item's actions say, in order."""

    version: int = 0
    assigned_to: str | None = None
    follow_up_on: dt.date | None = None
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None
    reopened_at: str | None = None
    last_by: str | None = None
    last_at: str | None = None


def fold(rows: list[dict]) -> State:
    """An item's state from its actions, oldest first."""
    state = State()
    for row in rows:
        payload = json.loads(row["payload"])
        state.version, state.last_by, state.last_at = row["id"], row["acted_by"], row["acted_at"]
        action = row["action"]
        if action in ("assign", "take"):
            state.assigned_to = payload["to"] or None
        elif action == "follow_up":
            on = payload.get("on")
            state.follow_up_on = dt.date.fromisoformat(on) if on else None
        elif action in ("resolve", "correct"):
            state.resolution = payload["resolution"]
            state.resolved_by, state.resolved_at = row["acted_by"], row["acted_at"]
            state.reopened_at = None
        elif action == "reopen":
            state.resolution = state.resolved_by = state.resolved_at = None
            state.reopened_at = row["acted_at"]
    return state


def _connect(data_dir: Path):
    con = resolutions.connect(data_dir)
    con.executescript(SCHEMA)
    return con


def _rows(con, where: str = "", params=()) -> list[dict]:
    cursor = con.execute(
        f"select {', '.join(COLUMNS)} from item_actions {where} order by id", list(params)
    )
    return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def of_item(data_dir: Path, item: ItemKey) -> list[dict]:
    """Every action on an item, oldest first."""
    if not resolutions.path(data_dir).exists():
        return []
    with closing(_connect(data_dir)) as con:
        return _rows(
            con, "where credit_id = ? and first_seen = ?", (item.credit_id, str(item.first_seen))
        )


def states(data_dir: Path) -> dict[ItemKey, State]:
    """Every item's state from the log (people's actions are few beside the items)."""
    if not resolutions.path(data_dir).exists():
        return {}
    with closing(_connect(data_dir)) as con:
        rows = _rows(con)
    by_item: dict[ItemKey, list[dict]] = {}
    for row in rows:
        key = ItemKey(row["credit_id"], dt.date.fromisoformat(row["first_seen"]))
        by_item.setdefault(key, []).append(row)
    return {key: fold(found) for key, found in by_item.items()}


def _payload(action: str, values: dict, user: str) -> dict:
    """The action's payload, checked; notes masked for card numbers."""
    note = mask((values.get("note") or "").strip())[: resolutions.NOTE_MAX]
    if action == "take":
        return {"to": user}
    if action == "assign":
        to = (values.get("to") or "").strip()[:NAME_MAX]
        if not to:
            raise ActionError("give the name of the person to assign the item to")
        return {"to": to}
    if action == "follow_up":
        on = (values.get("on") or "").strip()
        if on:
            try:
                on = dt.date.fromisoformat(on).isoformat()
            except ValueError:
                raise ActionError("a follow-up date is YYYY-MM-DD") from None
        return {"on": on or None}
    if action == "note":
        if not note:
            raise ActionError("a note needs some text")
        return {"note": note}
    if action in ("resolve", "correct"):
        resolution = values.get("resolution") or ""
        if resolution not in resolutions.RESOLUTIONS:
            raise ActionError(f"unknown resolution {resolution!r}")
        check = mask((values.get("check_number") or "").strip())[:50]
        if resolution == "REFUNDED_BY_CHECK" and not check:
            raise ActionError("'Refunded by check' needs the check number")
        if resolution == "OTHER" and not note:
            raise ActionError("a resolution 'Other' needs a note saying what was done")
        return {"resolution": resolution, "check_number": check or None, "note": note}
    if action == "reopen":
        return {"note": note}
    raise ActionError(f"unknown action {action!r}")


def act(
    data_dir: Path,
    item: ItemKey,
    action: str,
    values: dict,
    user: str,
    version: int,
    exception: resolutions.ExceptionKey | None = None,
    resolved: bool | None = None,
    seen_resolution: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Append one action on an item; returns its id.

    version: the id of the item's last action as the page showed it (0: none). exception: the
    item's latest exception row, which a resolve or correct also resolves. resolved: whether
    the page shows the item resolved (it may have been resolved on the exceptions page, outside
    this log); by default, whether its actions resolved it. A correction points at the item's
    resolve or correct entry in force (``corrects``), if its resolution came from this log.
    seen_resolution: the id of the latest resolution of that exception as the page showed it (0:
    none), so that a resolution made on the exceptions page since makes the page stale too.
    """
    payload = _payload(action, values, user)
    if action in ("resolve", "correct") and exception is None:
        raise ActionError("the item's latest exception is needed to resolve it")
    when = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    with closing(_connect(data_dir)) as con:
        con.execute("begin immediate")
        try:
            mine = _rows(
                con,
                "where credit_id = ? and first_seen = ?",
                (item.credit_id, str(item.first_seen)),
            )
            state = fold(mine)
            if state.version != version and state.last_by != user:
                raise StaleItem(state.last_by or "", state.last_at or "")
            if seen_resolution is not None and exception is not None:
                latest = con.execute(
                    "select id, resolved_by, resolved_at from resolutions where as_of_date = ?"
                    " and source = ? and credit_id = ? and reason_code = ? and refund_id = ?"
                    " order by id desc limit 1",
                    (
                        exception.as_of_date.isoformat(),
                        exception.source,
                        exception.credit_id,
                        exception.reason_code,
                        exception.refund_id,
                    ),
                ).fetchone()
                if latest and latest[0] != seen_resolution and latest[1] != user:
                    raise StaleItem(latest[1], latest[2])
            is_resolved = state.resolution is not None if resolved is None else resolved
            corrects = None
            if action in ("correct", "reopen") and not is_resolved:
                raise ActionError(f"only a resolved item can be {action}ed: resolve it")
            if action == "resolve" and is_resolved:
                raise ActionError("the item is resolved already: correct its resolution")
            if action == "correct" and state.resolution is not None:
                resolving = [r for r in mine if r["action"] in ("resolve", "correct")]
                corrects = resolving[-1]["id"]
            cursor = con.execute(
                "insert into item_actions (credit_id, first_seen, action, payload, corrects,"
                " acted_by, acted_at) values (?,?,?,?,?,?,?)",
                (
                    item.credit_id,
                    str(item.first_seen),
                    action,
                    json.dumps(payload, sort_keys=True),
                    corrects,
                    user,
                    when,
                ),
            )
            entry = cursor.lastrowid
            if action in ("resolve", "correct"):
                check = payload["check_number"]
                note = " ".join(
                    p for p in (f"check {check}" if check else "", payload["note"]) if p
                )
                resolutions.insert(con, [exception], payload["resolution"], note, user, when)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    return entry


def states_table(data_dir: Path):
    """Every item's state from the log as an Arrow table, for DuckDB to join to the items."""
    import pyarrow as pa

    found = states(data_dir)
    keys, values = list(found), list(found.values())
    text = pa.string()
    return pa.table(
        {
            "credit_id": pa.array([k.credit_id for k in keys], text),
            "first_seen": pa.array([k.first_seen for k in keys], pa.date32()),
            "version": pa.array([v.version for v in values], pa.int64()),
            "assigned_to": pa.array([v.assigned_to for v in values], text),
            "follow_up_on": pa.array([v.follow_up_on for v in values], pa.date32()),
            "reopened_at": pa.array([v.reopened_at for v in values], text),
        }
    )


def overlay(items: str, states: str) -> str:
    """A select of ``items`` with the columns the actions decide: assigned_to, follow_up_on, and
    an item reopened after its resolution in force open again; plus the item's ``version``.

    Resolutions themselves come with the items: a resolve or correct also resolved the item's
    latest exception, which the items are built from."""
    reopened = (
        "a.reopened_at is not null and i.status = 'RESOLVED' and i.resolved_at <= a.reopened_at"
    )
    return f"""select i.* replace (
            a.assigned_to as assigned_to,
            a.follow_up_on as follow_up_on,
            case when {reopened} then 'OPEN' else i.status end as status,
            case when {reopened} then null else i.resolution end as resolution,
            case when {reopened} then null else i.resolved_by end as resolved_by,
            case when {reopened} then null else i.resolved_at end as resolved_at
        ),
        coalesce(a.version, 0) as version
    from {items} as i
    left join {states} as a on i.credit_id = a.credit_id and i.first_seen = a.first_seen"""
