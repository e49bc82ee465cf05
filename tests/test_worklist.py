"""The worklist's data: snapshots written by the refresh after each publish, and the resolutions
store."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import stat

import pytest
from worklist_server import data_env, small_worklist

from auto_refunds.worklist import columns, overview, resolutions, snapshot, story
from auto_refunds.worklist.queries import Filters, Reader


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    return small_worklist(tmp_path_factory)


def _open(reader: Reader, day: dt.date, **filters) -> list[dict]:
    page = reader.page("exceptions", Filters(start=day, end=day, page_size=250, **filters))
    return page.rows


def test_each_run_writes_a_private_snapshot_of_its_date(worklist):
    data_dir, dates = worklist
    assert snapshot.snapshot_dates(data_dir) == dates[:2]
    for day in dates[:2]:
        folder = snapshot.current(data_dir, day)
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted(f"{name}.parquet" for name in snapshot.TABLES)
        for path in [folder, folder.parent, *folder.iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, path
    with Reader(data_dir) as reader:
        facts = overview.of_date(reader, dates[0])
    assert facts["credits"] > 0 and facts["due_count"] > 0
    assert facts["reconciliation"]["approved"] > 0


def _snapshot_rows(folder) -> dict[str, list[tuple]]:
    import duckdb

    with duckdb.connect() as con:
        return {
            name: sorted(
                con.execute(f"select * from read_parquet('{folder / name}.parquet')").fetchall(),
                key=repr,
            )
            for name in columns.SNAPSHOT_FILES
        }


def test_a_refresh_rewrites_the_same_snapshot_and_says_what_it_wrote(worklist, caplog):
    import json

    from auto_refunds.settings import Settings

    data_dir, dates = worklist
    before = snapshot.current(data_dir, dates[0])
    with data_env(data_dir), caplog.at_level(logging.INFO):
        summary = snapshot.refresh(dates[0], Settings.from_env())
    after = snapshot.current(data_dir, dates[0])
    assert after != before and str(after) == summary["path"]
    assert json.loads(json.dumps(summary)) == summary
    assert summary["as_of_date"] == dates[0].isoformat()
    rows = _snapshot_rows(after)
    assert rows == _snapshot_rows(before)
    assert summary["rows"] == {name: len(found) for name, found in rows.items()}
    assert summary["rows"]["exceptions"] > 0
    assert [r.getMessage() for r in caplog.records if r.name == snapshot.__name__] == [
        f"Worklist snapshot of {dates[0]} written: {after} ("
        + ", ".join(f"{name} {count} rows" for name, count in summary["rows"].items())
        + ")"
    ]


def test_the_snapshot_files_have_the_columns_and_types_of_their_empty_frames(worklist):
    """The columns are defined once (``columns``): what a refresh writes and what the pages read
    for a date without a snapshot have the same shape; the resolutions store's too."""
    import dataclasses
    from contextlib import closing

    import duckdb

    data_dir, dates = worklist
    folder = snapshot.current(data_dir, dates[0])
    with duckdb.connect() as con:
        for name, file in columns.SNAPSHOT_FILES.items():
            written = con.execute(
                f"describe select * from read_parquet('{folder / name}.parquet')"
            ).fetchall()
            empty = con.execute(f"describe {file.empty()}").fetchall()
            assert [row[:2] for row in written] == [row[:2] for row in empty], name
            assert con.execute(f"select count(*) from ({file.empty()})").fetchone() == (0,)
    assert tuple(f.name for f in dataclasses.fields(resolutions.ExceptionKey)) == (
        columns.EXCEPTION_KEY
    )
    with closing(resolutions.connect(data_dir)) as store:
        table = [row[1] for row in store.execute("pragma table_info(resolutions)")]
    assert tuple(table) == resolutions.COLUMNS
    with Reader(data_dir) as reader:
        queue = reader.resolved_exceptions(dates[0], dates[0])
        shown = [row[0] for row in reader.con.execute(f"describe {queue}").fetchall()]
    assert shown == [*columns.EXCEPTIONS.names, *columns.RESOLUTION_SHOWN]


@pytest.mark.parametrize(
    "crash_at", ["worklist_snapshot_mid_write", "worklist_snapshot_before_current"]
)
def test_a_refresh_killed_midway_leaves_the_last_snapshot_and_the_next_one_writes(
    worklist, crash_at
):
    import os
    import signal
    import subprocess
    import sys
    import time

    from worklist_server import REPO

    from auto_refunds.layout import ymd
    from auto_refunds.settings import Settings

    data_dir, dates = worklist
    day = dates[1]
    before = snapshot.current(data_dir, day)
    rows = _snapshot_rows(before)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import datetime as dt, sys; "
            "from auto_refunds.worklist.snapshot import refresh; "
            "refresh(dt.date.fromisoformat(sys.argv[1]))",
            day.isoformat(),
        ],
        env={
            **os.environ,
            "PYTHONPATH": str(REPO / "plugins"),
            "AUTO_REFUNDS_DATA_DIR": str(data_dir),
            "AUTO_REFUNDS_CRASH_AT": crash_at,
        },
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert snapshot.current(data_dir, day) == before
    assert snapshot.snapshot_dates(data_dir)[:2] == dates[:2]
    with Reader(data_dir) as reader:
        assert overview.of_date(reader, day)["credits"] == len(rows["outcomes"])
    folder = snapshot.dates_folder(data_dir) / ymd(day)
    left = {item for item in folder.iterdir() if item.name not in ("current", before.name)}
    assert left, "the kill left nothing behind: it did not stop the refresh midway"
    # Once older than any request, what the kill left goes with the next refresh of D.
    old = time.time() - 3600
    for item in left:
        os.utime(item, (old, old), follow_symlinks=False)
    with data_env(data_dir):
        summary = snapshot.refresh(day, Settings.from_env())
    after = snapshot.current(data_dir, day)
    assert str(after) == summary["path"] and _snapshot_rows(after) == rows
    assert not any(item.exists() for item in left if item.name.startswith("."))


def test_a_refresh_that_fails_raises_and_leaves_the_last_snapshot(worklist, monkeypatch):
    from auto_refunds.layout import ymd
    from auto_refunds.settings import Settings

    data_dir, dates = worklist
    before = snapshot.current(data_dir, dates[0])
    monkeypatch.setitem(snapshot.TABLES, "broken", "select * from main.no_such_table")
    with data_env(data_dir), pytest.raises(Exception, match="no_such_table"):
        snapshot.refresh(dates[0], Settings.from_env())
    assert snapshot.current(data_dir, dates[0]) == before
    folder = snapshot.dates_folder(data_dir) / ymd(dates[0])
    assert not list(folder.glob(".*.tmp"))


def test_resolutions_are_append_only_and_mask_card_numbers(worklist):
    data_dir, dates = worklist
    with Reader(data_dir) as reader:
        row = _open(reader, dates[0])[0]
    key = resolutions.ExceptionKey(
        row["as_of_date"],
        row["source"],
        row["credit_id"],
        row["reason_code"],
        row["refund_id"] or "",
    )
    resolutions.record(data_dir, [key], "OTHER", "card 4111 1111 1111 1111 on file", "clerk")
    stored = resolutions.of_credit(data_dir, row["credit_id"])[-1]
    assert stored["note"] == "card ************1111 on file"
    assert stored["resolved_by"] == "clerk"
    con = sqlite3.connect(resolutions.path(data_dir))
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("update resolutions set note = 'changed'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("delete from resolutions")
    finally:
        con.close()
    with pytest.raises(resolutions.ResolutionError):
        resolutions.record(data_dir, [key], "OTHER", "  ", "clerk")
    with pytest.raises(resolutions.ResolutionError):
        resolutions.record(data_dir, [key], "FORGIVEN", "", "clerk")
    assert stat.S_IMODE(resolutions.path(data_dir).stat().st_mode) & 0o007 == 0


def _key(row: dict) -> resolutions.ExceptionKey:
    return resolutions.ExceptionKey(
        row["as_of_date"],
        row["source"],
        row["credit_id"],
        row["reason_code"],
        row["refund_id"] or "",
    )


def test_resolutions_survive_reruns_and_a_credit_back_later_is_open_again(worklist):
    from auto_refunds import daily, reconciliation
    from auto_refunds.settings import Settings

    data_dir, dates = worklist
    earlier, day = dates[1], dates[2]
    with data_env(data_dir):
        settings = Settings.from_env()
        daily.run_all(day, settings)
    with Reader(data_dir) as reader:
        today = _open(reader, day, source="ELIGIBILITY")
        seen_today = {(r["credit_id"], r["reason_code"]) for r in today}
        before = [
            r
            for r in _open(reader, earlier, source="ELIGIBILITY")
            if (r["credit_id"], r["reason_code"]) in seen_today
        ]
        declined = _open(reader, earlier, source="RECONCILIATION")
    back, resolved_today = before[0], today[-1]
    resolutions.record(data_dir, [_key(back)], "KEPT_AS_CREDIT", "patient asked", "clerk")
    resolutions.record(data_dir, [_key(resolved_today)], "TRANSFERRED", "to A1", "clerk")
    resolutions.record(data_dir, [_key(declined[0])], "REFUNDED_BY_CHECK", "check 1", "clerk")

    # Reruns of both dates, both DAGs.
    with data_env(data_dir):
        daily.run_all(day, settings)
        reconciliation.run_all(earlier, settings)

    with Reader(data_dir) as reader:
        open_today = _open(reader, day)
        resolved = _open(reader, day, status="resolved") + _open(reader, earlier, status="resolved")
        facts = overview.of_date(reader, day)
        told = story.of_credit(reader, back["credit_id"])
    assert {(r["credit_id"], r["resolution"]) for r in resolved} == {
        (back["credit_id"], "KEPT_AS_CREDIT"),
        (resolved_today["credit_id"], "TRANSFERRED"),
        (declined[0]["credit_id"], "REFUNDED_BY_CHECK"),
    }
    assert resolved_today["credit_id"] not in {r["credit_id"] for r in open_today}
    # Resolved on the earlier date, back with an exception today: open again.
    assert (back["credit_id"], back["reason_code"]) in {
        (r["credit_id"], r["reason_code"]) for r in open_today
    }
    assert sum(r["resolved"] for r in facts["by_reason"]) == 1
    assert sum(r["open"] for r in facts["by_reason"]) == len(open_today)
    assert [
        (e["as_of_date"], e["resolution"])
        for e in told["exceptions"]
        if e["reason_code"] == back["reason_code"]
    ][-2:] == [(earlier, "KEPT_AS_CREDIT"), (day, None)]


def test_the_plugin_imports_nothing_heavy_where_airflow_loads_it():
    """Every Airflow component loads plugins; only the API server builds the app."""
    import subprocess
    import sys

    from worklist_server import REPO

    probe = (
        "import sys, auto_refunds_worklist as p; "
        "print(sorted(m for m in ('fastapi', 'duckdb', 'great_expectations', 'pandas', "
        "'pyarrow', 'airflow.api_fastapi.core_api.security') if m in sys.modules)); "
        "print(p.AutoRefundsWorklistPlugin.external_views[0]['name'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "plugins")},
    ).stdout.split("\n")
    assert out[:2] == ["[]", "Auto-Refunds"]


def test_the_work_items_list_open_items_oldest_first_and_a_resolution_shows_at_once(worklist):
    """The refresh after each publish rebuilt the items; the pages read them with the
    resolutions recorded since (an open item resolved now is resolved on the page at once)."""
    from decimal import Decimal

    from auto_refunds.worklist.items import items_file
    from auto_refunds.worklist.queries import ItemFilters, item_counts, items_page

    data_dir, dates = worklist
    assert items_file(data_dir).is_file()
    today = dates[-1]
    with Reader(data_dir) as reader:
        page = items_page(reader, ItemFilters(page_size=250), today)
        counts = item_counts(reader, today)
        everything = items_page(reader, ItemFilters(status="all", page_size=250), today)
    assert page.rows and {r["status"] for r in page.rows} == {"OPEN"}
    assert [r["first_seen"] for r in page.rows] == sorted(r["first_seen"] for r in page.rows)
    assert counts["open"] == page.total_rows and counts["open_amount"] == page.total_amount
    assert isinstance(counts["open_amount"], Decimal)
    # One item per credit and problem: a credit never has two open items.
    open_credits = [r["credit_id"] for r in everything.rows if r["status"] == "OPEN"]
    assert len(open_credits) == len(set(open_credits))

    first = page.rows[0]
    key = resolutions.ExceptionKey(
        first["last_seen"],
        first["source"],
        first["credit_id"],
        first["reason_code"],
        first["refund_id"] or "",
    )
    resolutions.record(data_dir, [key], "KEPT_AS_CREDIT", "patient asked", "clerk")
    with Reader(data_dir) as reader:
        after = items_page(reader, ItemFilters(page_size=250), today)
        resolved = items_page(reader, ItemFilters(status="resolved", page_size=250), today)
        counts_after = item_counts(reader, today)
    assert after.total_rows == page.total_rows - 1
    assert (first["credit_id"], first["first_seen"]) not in {
        (r["credit_id"], r["first_seen"]) for r in after.rows
    }
    assert (first["credit_id"], "KEPT_AS_CREDIT", "clerk") in {
        (r["credit_id"], r["resolution"], r["resolved_by"]) for r in resolved.rows
    }
    assert counts_after["open"] == counts["open"] - 1


# -- what a clerk reads -------------------------------------------------------------------


def test_money_and_counts_read_the_same_on_every_page():
    from auto_refunds.worklist.rendering import money, templates, thousands

    assert money("-1234.56") == "-$1,234.56" and money("-1234.5") == "-$1,234.50"
    assert money("1234567.891") == "$1,234,567.89" and money("0") == "$0.00"
    assert money(None) == "" and thousands(1234567) == "1,234,567" and thousands(7) == "7"
    env = templates()
    assert env.filters["money"] is env.filters["dollars"] is money


def test_every_reason_code_the_models_emit_has_a_label_and_a_next_step():
    import re
    from pathlib import Path

    from auto_refunds.worklist.reasons import REASONS, next_step, reason_label

    sql = Path(__file__).parent.parent / "include" / "sql"
    eligibility = (sql / "marts" / "tickler_refund_exceptions.expectations.yml").read_text()
    listed = re.search(r"reason_code not in \(([^)]*)\)", eligibility).group(1)
    codes = set(re.findall(r"'([A-Z_]+)'", listed))
    reconciliation = (sql / "marts" / "tickler_reconciliation_exceptions.sql").read_text()
    mapped = re.search(r"case[^;]*?end as reason_code", reconciliation, re.S).group(0)
    codes |= set(re.findall(r"then '([A-Z_]+)'", mapped))
    assert len(codes) >= 12, codes
    assert codes <= set(REASONS), codes - set(REASONS)
    for code in codes:
        assert reason_label(code) != code and next_step(code).endswith(".")
    assert reason_label("SOMETHING_NEW") == "SOMETHING_NEW" and next_step(None) == ""


# -- where and when the refund file went ------------------------------------------------------


def _page(template: str, data_dir, **context) -> str:
    """A page as the worklist renders it (``rendering.Renderer``), without a server."""
    from auto_refunds.worklist.rendering import templates

    return (
        templates()
        .get_template(template)
        .render(
            base="",
            user="clerk",
            may_resolve=False,
            snapshot_dates=snapshot.snapshot_dates(data_dir),
            request_query="",
            nav=template.removesuffix(".html"),
            **context,
        )
    )


def _overview_page(reader: Reader, data_dir, day: dt.date) -> tuple[dict, str]:
    facts = overview.of_date(reader, day)
    items = {"open": 0, "open_amount": 0, "overdue": 0, "overdue_amount": 0}
    return facts, _page("overview.html", data_dir, day=day, facts=facts, charts=[], items=items)


def _credit_page(reader: Reader, data_dir, credit_id: str) -> tuple[dict, str]:
    found = story.of_credit(reader, credit_id)
    page = _page("credit.html", data_dir, credit_id=credit_id, story=found, history=[], labels={})
    return found, page


def test_the_overview_and_a_credits_story_say_when_and_where_its_refund_file_was_delivered(
    worklist,
):
    from auto_refunds.settings import Settings
    from auto_refunds.warehouse import connect

    data_dir, dates = worklist
    day = dates[0]
    names = [f"refunds_{day:%Y%m%d}.csv", f"refunds_{day:%Y%m%d}.manifest.json"]
    with data_env(data_dir), connect(Settings.from_env()) as con:
        recorded = {
            file: (remote, finished.astimezone(dt.UTC).replace(tzinfo=None))
            for file, remote, finished in con.execute(
                "select file, remote_path, finished_at from main.file_deliveries "
                "where as_of_date = ? and destination = 'imaginepay_refunds' "
                "and outcome = 'DELIVERED'",
                [day],
            ).fetchall()
        }
    assert sorted(recorded) == names
    with Reader(data_dir) as reader:
        facts, page = _overview_page(reader, data_dir, day)
        sent = reader.con.execute(
            f"select credit_id, refund_id from {reader.relation('ledger_events', day, day)} "
            "where status = 'SENT' order by credit_id limit 1"
        ).fetchone()
        found, credit_page = _credit_page(reader, data_dir, sent[0])
    assert [(d["file"], d["delivered"], d["outcome"]) for d in facts["delivery"]] == [
        (name, True, "DELIVERED") for name in names
    ]
    for row in facts["delivery"]:
        assert (row["remote_path"], row["finished_at"]) == recorded[row["file"]]
        assert str(data_dir / "exchange" / "imaginepay_refunds" / row["file"]) in row["remote_path"]
        assert f'<time datetime="{row["finished_at"].isoformat()}">' in page
        assert row["remote_path"] in page
    assert "not delivered" not in page

    remote, finished = recorded[names[0]]
    assert [(d["as_of_date"], d["refund_id"], d["file"]) for d in found["deliveries"]] == [
        (day, sent[1], names[0])
    ]
    assert (found["deliveries"][0]["remote_path"], found["deliveries"][0]["finished_at"]) == (
        remote,
        finished,
    )
    assert f'delivered <time datetime="{finished.isoformat()}">' in credit_page
    assert remote in credit_page


def test_a_failed_delivery_shows_as_not_delivered_with_its_masked_error(
    scenario, settings, monkeypatch
):
    from scenario import D, credit, sale

    from auto_refunds import delivery, locations

    scenario.write_credits(D, credit("C1", "50.00"))
    scenario.write_transactions(D, sale("T1", "100.00"))
    scenario.run(D)

    def full(self, name):
        raise OSError("<disk> full near 4111 1111 1111 1111")

    monkeypatch.setattr(locations.LocalFolder, "open_write", full)
    with pytest.raises(locations.LocationError, match="writing failed"):
        delivery.deliver_refund_file(D, settings)
    # A later refresh of D (the reconciliation's, say) shows the failure.
    snapshot.refresh(D, settings)
    with Reader(settings.data_dir) as reader:
        facts, page = _overview_page(reader, settings.data_dir, D)
        found, credit_page = _credit_page(reader, settings.data_dir, "C1")
    [row] = facts["delivery"]
    assert (row["file"], row["delivered"], row["outcome"], row["attempts"]) == (
        f"refunds_{D:%Y%m%d}.csv",
        False,
        "FAILED",
        1,
    )
    assert "4111" not in row["error"] and "full near" in row["error"]
    [told] = found["deliveries"]
    assert (told["file"], told["delivered"], told["error"]) == (row["file"], False, row["error"])
    for html in (page, credit_page):
        assert "not delivered yet</span>: the last of 1 attempt to" in html
        assert "&lt;disk&gt; full near" in html and "<disk>" not in html
        assert "4111 1111 1111 1111" not in html
        assert f'<time datetime="{row["finished_at"].isoformat()}">' in html
