"""``make soak`` in small: a few nights with every event of the year in them keep the books, and
the books' checks fail on books that are wrong."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2026, 3, 2)
NIGHTS = 6
BACKFILL_DAYS = 1


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", REPO / "benchmarks" / "soak.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module
    spec.loader.exec_module(module)
    return module


soak = _soak_module()


@pytest.fixture(scope="module")
def short_soak(tmp_path_factory) -> tuple[Path, int, str]:
    """A six-night soak with one backfilled date: (its data folder, exit code, what it printed)."""
    data_dir = tmp_path_factory.mktemp("soak") / "data"
    argv = ["--nights", str(NIGHTS), "--credits", "60", "--backfill-days", str(BACKFILL_DAYS)]
    argv += ["--start", START.isoformat(), "--data-dir", str(data_dir)]
    with pytest.MonkeyPatch.context() as env:
        # main points these at the soak's folder; the other tests keep their own.
        env.setenv("AUTO_REFUNDS_DATA_DIR", str(data_dir))
        env.setenv("AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS", "0")
        from io import StringIO

        printed = StringIO()
        env.setattr(sys, "stdout", printed)
        code = soak.main(argv)
    return data_dir, code, printed.getvalue()


def _dates() -> list[dt.date]:
    first = START - dt.timedelta(days=BACKFILL_DAYS)
    return [first + dt.timedelta(days=d) for d in range(BACKFILL_DAYS + NIGHTS)]


def test_the_events_of_a_year_in_six_nights_keep_the_books(short_soak):
    data_dir, code, printed = short_soak
    assert code == 0, printed
    for event in ("late payment file", "sent twice", "re-sent under another date", "backfill"):
        assert event in printed, printed
    assert ": killed, then retried" in printed, printed
    assert printed.count("  PASS  ") == 6 and "FAIL" not in printed, printed


def _broken_copy(short_soak, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(short_soak[0], data_dir, symlinks=True)
    return data_dir


def _failed(data_dir: Path) -> dict[str, list[str]]:
    return {
        check.name: check.problems for check in soak.check_books(data_dir, _dates()) if not check.ok
    }


def test_a_payment_posted_twice_fails_the_books(short_soak, tmp_path):
    data_dir = _broken_copy(short_soak, tmp_path)
    path = sorted((data_dir / "outbox" / "imagineone").glob("payment_postings_*.csv"))[0]
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join([*lines, lines[1]]))
    failed = _failed(data_dir)
    postings = "approved answers = postings files = payment_postings, in count and amount"
    assert any("posted 2 times" in problem for problem in failed[postings]), failed
    assert set(failed) == {postings}, failed


def test_a_second_live_refund_and_a_lost_outcome_fail_the_books(short_soak, tmp_path):
    data_dir = _broken_copy(short_soak, tmp_path)
    con = duckdb.connect(str(data_dir / "warehouse" / "auto_refunds.duckdb"))
    try:
        refund_id, credit_id = con.execute(
            "select refund_id, credit_id from refund_ledger where status = 'REFUNDED' "
            "order by refund_id limit 1"
        ).fetchone()
        con.execute(
            "insert into refund_ledger select * replace ('AR-SECOND' as refund_id) "
            "from refund_ledger where refund_id = ?",
            [refund_id],
        )
        day, lost = con.execute(
            "select as_of_date, credit_id from credit_outcomes where outcome = 'NOT_ENROLLED' "
            "order by all limit 1"
        ).fetchone()
        con.execute(
            "delete from credit_outcomes where as_of_date = ? and credit_id = ?", [day, lost]
        )
    finally:
        con.close()
    failed = _failed(data_dir)
    assert failed["no credit with two live refunds, no refund sent twice"] == [
        f"credit {credit_id}: live refunds {sorted([refund_id, 'AR-SECOND'])}"
    ]
    assert "refund files = manifests = ledger = DUE, in count and amount" in failed
    outcomes = failed["every credit of every snapshot has exactly one outcome"]
    assert any(f"{day} credit {lost!r}" in problem for problem in outcomes), outcomes
