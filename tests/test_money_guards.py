"""Guards the database keeps whatever the models compute (issue: money stays safe), each tried
directly, and the failures that need a person failing at once instead of being retried."""

from __future__ import annotations

import datetime as dt
import os
import stat

import duckdb
import pytest
from scenario import Scenario, credit, sale

from auto_refunds import daily, ledger, runtime
from auto_refunds.errors import NeedsAPerson
from auto_refunds.outbox import UnsafePath
from auto_refunds.warehouse import WarehouseBusy, connect, transaction

D0 = dt.date(2026, 1, 4)
D = dt.date(2026, 1, 5)


@pytest.fixture
def published(settings) -> Scenario:
    """C1 refunded against T1 in the file of D0."""
    scenario = Scenario(settings)
    scenario.write_credits(D0, credit("C1", "50.00"))
    scenario.write_transactions(D0, sale("T1", "500.00"))
    scenario.run(D0)
    return scenario


def ledger_row(scenario: Scenario) -> tuple:
    return scenario.query("select * from refund_ledger")[0]


def test_a_refund_id_is_in_the_ledger_once(published):
    with pytest.raises(duckdb.ConstraintException, match="AR"):
        published.query("insert into refund_ledger select * from refund_ledger")


def test_a_state_is_logged_once_per_refund(published):
    with pytest.raises(duckdb.ConstraintException, match="SENT"):
        published.query("insert into refund_ledger_events select * from refund_ledger_events")


def test_a_payment_is_posted_once(published):
    row = "(date '{}', 'P1', 'CL1', 'A1', 'T1', null, 10.00, date '2026-01-05')"
    published.query(f"insert into payment_postings values {row.format('2026-01-05')}")
    with pytest.raises(duckdb.ConstraintException, match="P1"):
        published.query(f"insert into payment_postings values {row.format('2026-01-06')}")


def test_a_credit_holds_one_live_refund(published):
    with (
        connect(published.settings) as con,
        pytest.raises(ledger.LedgerConflict, match=r"C1 \(AR-SECOND, AR[0-9A-F]{20}\)"),
        transaction(con),
    ):
        con.execute(
            "insert into refund_ledger select * replace ('AR-SECOND' as refund_id) "
            "from refund_ledger"
        )
        ledger.check_guards(con, "select 'C1' as credit_id")
    assert published.query("select count(*) from refund_ledger") == [(1,)]


def test_recording_a_refund_file_guards_the_credits_of_the_file(published, monkeypatch):
    """Behind the conflict check (passed over here, as a fault in it would): the file of D0
    recorded again while the ledger holds another live refund of its credit C1."""
    statement = ledger.statement
    monkeypatch.setattr(
        ledger,
        "statement",
        lambda name: (
            "select 1 where false" if name == "publish/refund_file_conflicts" else statement(name)
        ),
    )
    published.query("update refund_ledger set refund_id = 'AR-OTHER'")
    published.query("delete from refund_files")
    published.query("delete from refund_ledger_events")
    with (
        connect(published.settings) as con,
        pytest.raises(ledger.LedgerConflict, match=r"C1 \(AR-OTHER, AR[0-9A-F]{20}\)"),
        transaction(con),
    ):
        ledger.record_refund_file(con, published.layout, D0)


# A posted approval is never undone by a later answer, nor aged.
@pytest.mark.parametrize("to_status", ["DECLINED", "AMOUNT_MISMATCH", "UNANSWERED"])
def test_the_ledger_moves_only_forward(published, to_status):
    refund_id = ledger_row(published)[0]
    published.query("update refund_ledger set status = 'REFUNDED'")
    with connect(published.settings, D) as con:
        con.execute(
            """
            create or replace table marts.refund_ledger_transitions as
            select date '2026-01-05' as as_of_date, ? as refund_id, ? as status,
                'payments_20260105.csv' as source_file, 2::bigint as line_number,
                '05' as response_code, 'declined' as response_message, 'declined' as detail
            """,
            [refund_id, to_status],
        )
        with (
            pytest.raises(ledger.LedgerConflict, match=f"{refund_id} REFUNDED -> {to_status}"),
            transaction(con),
        ):
            ledger.apply_transitions(con)
        # The statement itself refuses the move too, whoever calls it.
        from auto_refunds.sql import statement

        with transaction(con):
            con.execute(statement("publish/ledger_apply_transitions"))
    assert published.query("select status from refund_ledger") == [("REFUNDED",)]


def test_a_conflict_with_the_ledger_is_found_before_anything_is_in_the_outbox(published):
    """A decision that somehow refunds C1 again (here: the ledger row hidden while D decided)
    fails at publish with nothing of D in the outbox."""
    published.query("create table main.hidden as select * from refund_ledger")
    published.query("delete from refund_ledger")
    published.write_credits(D, credit("C1", "50.00"))
    assert published.decide(D) == {"C1": ("DUE", "T1")}
    daily.audit(D, published.settings)
    published.query("insert into refund_ledger select * from main.hidden")
    with pytest.raises(ledger.LedgerConflict, match="credits already refunded"):
        daily.publish(D, published.settings)
    outbox = published.layout.refunds_outbox
    assert sorted(path.name for path in outbox.iterdir()) == [
        "refunds_20260104.csv",
        "refunds_20260104.manifest.json",
    ]


@pytest.mark.parametrize("planted_at", ["candidate", "final"])
def test_a_link_planted_in_the_outbox_fails_the_publish_and_its_target_is_untouched(
    settings, tmp_path, planted_at
):
    scenario = Scenario(settings)
    scenario.write_credits(D, credit("C1", "50.00"))
    scenario.write_transactions(D, sale("T1", "500.00"))
    scenario.decide(D)
    target = tmp_path / "elsewhere.txt"
    target.write_text("not yours")
    final = scenario.layout.refunds(D)
    final.parent.mkdir(parents=True, exist_ok=True)
    link = final if planted_at == "final" else final.with_name(f".{final.name}.candidate")
    link.symlink_to(target)
    with pytest.raises(UnsafePath, match="symbolic link"):
        daily.publish(D, settings)
    assert target.read_text() == "not yours"
    assert not scenario.layout.refunds_manifest(D).exists()


def test_nothing_written_grants_anything_to_others_whatever_the_umask(settings):
    scenario = Scenario(settings)
    scenario.write_credits(D, credit("C1", "50.00"))
    scenario.write_transactions(D, sale("T1", "500.00"))
    previous = os.umask(0)
    try:
        scenario.run(D, audit=True)
    finally:
        os.umask(previous)
    written = [
        path
        for path in settings.data_dir.rglob("*")
        if not path.is_relative_to(settings.data_dir / "landing")
    ]
    assert written
    for path in written:
        assert stat.S_IMODE(path.lstat().st_mode) & 0o007 == 0, path


def test_a_failure_that_needs_a_person_fails_at_once_and_the_others_are_retried():
    from airflow.sdk.exceptions import AirflowFailException

    def needs_a_person(day):
        raise ledger.LedgerConflict(f"refunds of {day}")

    def busy(day):
        raise WarehouseBusy("held by pid 1")

    context = {"params": {"as_of_date": "2026-01-05"}}
    with pytest.raises(AirflowFailException, match="refunds of 2026-01-05.*What to do"):
        runtime.call(needs_a_person, context)
    with pytest.raises(WarehouseBusy):
        runtime.call(busy, context)
    assert not issubclass(WarehouseBusy, NeedsAPerson)
