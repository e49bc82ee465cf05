"""The worklist's data: snapshots written by publish, and the resolutions store."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import stat

import pytest
from worklist_server import data_env, small_worklist

from auto_refunds.worklist import resolutions, snapshot
from auto_refunds.worklist.queries import Filters, Reader


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    return small_worklist(tmp_path_factory)


def _open(reader: Reader, day: dt.date, **filters) -> list[dict]:
    page = reader.page("exceptions", Filters(start=day, end=day, page_size=250, **filters))
    return page.rows


def test_each_publish_writes_a_private_snapshot_of_its_date(worklist):
    data_dir, dates = worklist
    assert snapshot.snapshot_dates(data_dir) == dates[:2]
    for day in dates[:2]:
        folder = snapshot.current(data_dir, day)
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted(f"{name}.parquet" for name in snapshot.TABLES)
        for path in [folder, folder.parent, *folder.iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0, path
    with Reader(data_dir) as reader:
        facts = reader.overview(dates[0])
    assert facts["credits"] > 0 and facts["due_count"] > 0
    assert facts["reconciliation"]["approved"] > 0


def test_a_snapshot_that_cannot_be_written_never_fails_the_run(worklist, tmp_path, caplog):
    import duckdb

    con = duckdb.connect()
    with caplog.at_level(logging.ERROR):
        snapshot.after_publish(con, tmp_path, dt.date(2026, 3, 2))
    assert "not written" in caplog.text
    assert snapshot.snapshot_dates(tmp_path) == []


def test_resolutions_are_append_only_and_mask_card_numbers(worklist):
    data_dir, dates = worklist
    with Reader(data_dir) as reader:
        row = _open(reader, dates[0])[0]
    key = resolutions.ExceptionKey(
        row["as_of_date"], row["source"], row["credit_id"], row["reason_code"],
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
    return resolutions.ExceptionKey(row["as_of_date"], row["source"], row["credit_id"],
                                    row["reason_code"], row["refund_id"] or "")


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
        before = [r for r in _open(reader, earlier, source="ELIGIBILITY")
                  if (r["credit_id"], r["reason_code"]) in seen_today]
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
        resolved = _open(reader, day, status="resolved") + _open(
            reader, earlier, status="resolved"
        )
        facts = reader.overview(day)
        story = reader.story(back["credit_id"])
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
    assert [(e["as_of_date"], e["resolution"]) for e in story["exceptions"]
            if e["reason_code"] == back["reason_code"]][-2:] == [
        (earlier, "KEPT_AS_CREDIT"), (day, None)
    ]


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
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "plugins")},
    ).stdout.split("\n")
    assert out[:2] == ["[]", "Auto-Refunds"]
