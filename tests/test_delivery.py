"""Delivery and collection on the local kind of location (CONTRACT 9): the embedded default
``$AUTO_REFUNDS_DATA_DIR/exchange/<connection id>/`` and a connection of type ``fs``.

The SFTP kind, against a real OpenSSH server, is tests/test_sftp.py; both run the same code
above the ``Location`` interface.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import types

import pytest

from auto_refunds import collect, delivery, locations, sensors
from auto_refunds.layout import PAYMENTS_HEADER, REFUNDS_HEADER
from auto_refunds.warehouse import connect

D = dt.date(2026, 3, 2)


def publish_fake_refund_file(settings, rows: int = 3, day: dt.date = D) -> tuple[bytes, bytes]:
    """A refund file and its manifest in the outbox, as the publish leaves them."""
    lines = [",".join(REFUNDS_HEADER)]
    lines += [f"AR-{n:08d},C1,A{n},CR{n},T{n},tok{n},{n % 90 + 10}.50" for n in range(rows)]
    content = ("\n".join(lines) + "\n").encode()
    layout = settings.layout
    layout.refunds_outbox.mkdir(parents=True, exist_ok=True)
    layout.refunds(day).write_bytes(content)
    manifest = {
        "file_name": layout.refunds(day).name,
        "as_of_date": day.isoformat(),
        "record_count": rows,
        "total_amount": "0.00",
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode()
    layout.refunds_manifest(day).write_bytes(manifest_bytes)
    return content, manifest_bytes


def deliveries(settings) -> list[tuple]:
    with connect(settings) as con:
        return con.execute(
            "select file, destination, attempt, outcome, error, started_at, finished_at "
            "from main.file_deliveries order by started_at, file"
        ).fetchall()


def exchange(settings, conn_id: str = locations.REFUNDS):
    return settings.data_dir / "exchange" / conn_id


def test_a_published_refund_file_is_delivered_whole_its_manifest_last(settings, monkeypatch):
    content, manifest = publish_fake_refund_file(settings)
    renamed = []
    rename = locations.LocalFolder.rename

    def spy(self, source, target):
        renamed.append(target)
        return rename(self, source, target)

    monkeypatch.setattr(locations.LocalFolder, "rename", spy)
    result = delivery.deliver_refund_file(D, settings)

    folder = exchange(settings)
    assert (folder / "refunds_20260302.csv").read_bytes() == content
    assert (folder / "refunds_20260302.manifest.json").read_bytes() == manifest
    assert renamed == ["refunds_20260302.csv", "refunds_20260302.manifest.json"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "refunds_20260302.csv",
        "refunds_20260302.manifest.json",
    ]
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o007 == 0
    assert result["file_outcome"] == result["manifest_outcome"] == delivery.DELIVERED
    rows = deliveries(settings)
    assert [row[:5] for row in rows] == [
        ("refunds_20260302.csv", locations.REFUNDS, 1, "DELIVERED", None),
        ("refunds_20260302.manifest.json", locations.REFUNDS, 1, "DELIVERED", None),
    ]
    assert rows[0][6] <= rows[1][5]


def test_delivering_the_identical_file_again_does_nothing(settings):
    publish_fake_refund_file(settings)
    delivery.deliver_refund_file(D, settings)
    target = exchange(settings) / "refunds_20260302.csv"
    before = target.stat()
    result = delivery.deliver_refund_file(D, settings)
    assert result["file_outcome"] == result["manifest_outcome"] == delivery.ALREADY_THERE
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert target.stat().st_ino == before.st_ino
    assert [row[2:4] for row in deliveries(settings)] == [
        (1, "DELIVERED"),
        (1, "DELIVERED"),
        (2, "ALREADY_THERE"),
        (2, "ALREADY_THERE"),
    ]


def test_a_different_file_at_that_name_is_never_overwritten_and_both_hashes_are_named(settings):
    content, _ = publish_fake_refund_file(settings)
    theirs = b"refund_id\nSOMETHING-ELSE\n"
    folder = exchange(settings)
    folder.mkdir(parents=True)
    (folder / "refunds_20260302.csv").write_bytes(theirs)
    ours_hash, their_hash = (hashlib.sha256(b).hexdigest() for b in (content, theirs))
    with pytest.raises(delivery.DeliveryConflict) as failure:
        delivery.deliver_refund_file(D, settings)
    message = str(failure.value)
    assert ours_hash in message and their_hash in message
    assert "imaginepay_refunds" in message and "refunds_20260302.csv" in message
    assert (folder / "refunds_20260302.csv").read_bytes() == theirs
    # The manifest never goes without its file.
    assert sorted(p.name for p in folder.iterdir()) == ["refunds_20260302.csv"]
    ((file, _, attempt, outcome, error, _, finished),) = deliveries(settings)
    assert (file, attempt, outcome) == ("refunds_20260302.csv", 1, "CONFLICT")
    assert ours_hash in error and their_hash in error and finished is not None


def test_a_file_that_is_not_published_is_not_delivered(settings):
    with pytest.raises(delivery.NothingToDeliver, match="not published"):
        delivery.deliver_refund_file(D, settings)
    publish_fake_refund_file(settings)
    settings.layout.refunds(D).write_bytes(b"altered\n")
    with pytest.raises(delivery.NothingToDeliver, match="does not match its manifest"):
        delivery.deliver_refund_file(D, settings)
    assert not exchange(settings).exists()


def test_a_kill_mid_upload_leaves_no_half_file_in_place_and_the_retry_delivers(settings):
    # Over one chunk (1 MiB), so the kill falls between two writes of the upload.
    content, manifest = publish_fake_refund_file(settings, rows=40_000)
    assert len(content) > locations.CHUNK
    script = textwrap.dedent(
        """
        import datetime as dt
        from auto_refunds import delivery
        delivery.deliver_refund_file(dt.date(2026, 3, 2))
        """
    )
    env = {**os.environ, "AUTO_REFUNDS_CRASH_AT": "mid_upload"}
    killed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    folder = exchange(settings)
    assert not (folder / "refunds_20260302.csv").exists()
    assert (folder / ".refunds_20260302.csv.1.part").stat().st_size < len(content)
    assert [row[2:4] for row in deliveries(settings)] == [(1, "STARTED")]

    result = delivery.deliver_refund_file(D, settings)
    assert result["file_outcome"] == delivery.DELIVERED
    assert (folder / "refunds_20260302.csv").read_bytes() == content
    assert (folder / "refunds_20260302.manifest.json").read_bytes() == manifest
    assert sorted(p.name for p in folder.iterdir()) == [
        "refunds_20260302.csv",
        "refunds_20260302.manifest.json",
    ]
    assert [row[2:4] for row in deliveries(settings)] == [
        (1, "INTERRUPTED"),
        (2, "DELIVERED"),
        (1, "DELIVERED"),
    ]


def test_a_connection_of_type_fs_names_the_folder(settings, tmp_path, monkeypatch):
    folder = tmp_path / "their-inbound"
    conn = {"conn_type": "fs", "extra": {"path": str(folder)}}
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPAY_REFUNDS", json.dumps(conn))
    content, _ = publish_fake_refund_file(settings)
    result = delivery.deliver_refund_file(D, settings)
    assert (folder / "refunds_20260302.csv").read_bytes() == content
    assert result["file"] == f"imaginepay_refunds ({folder / 'refunds_20260302.csv'})"
    assert not exchange(settings).exists()


@pytest.mark.parametrize(
    ("conn", "complaint"),
    [
        ({"conn_type": "sftp", "host": "h", "login": "u"}, "host_key"),
        ({"conn_type": "fs"}, "needs the extra path"),
        ({"conn_type": "http", "host": "h"}, "type sftp or fs"),
        (
            {
                "conn_type": "sftp",
                "host": "h",
                "login": "u",
                "extra": {"host_key": "x", "conn_timeout": "0"},
            },
            "conn_timeout",
        ),
    ],
    ids=["no-host-key", "fs-without-path", "other-type", "bad-timeout"],
)
def test_a_misconfigured_location_fails_naming_the_connection(
    settings, monkeypatch, conn, complaint
):
    monkeypatch.setenv("AIRFLOW_CONN_IMAGINEPAY_REFUNDS", json.dumps(conn))
    publish_fake_refund_file(settings)
    with pytest.raises(locations.LocationMisconfigured, match=complaint) as failure:
        delivery.deliver_refund_file(D, settings)
    assert "imaginepay_refunds" in str(failure.value)


def commit_reconciliation(settings, payments: bytes, day: dt.date = D) -> bytes:
    """What a reconciliation of D commits and writes, as far as delivery reads it."""
    postings = b"payment_id,client_id,account_id,txn_id,refund_id,payment_amount,processed_date\n"
    path = settings.layout.postings(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(postings)
    with connect(settings, day) as con:
        con.execute(
            "insert into main.postings_files values (?, ?, 0, 0, ?, true)",
            [day, path.name, hashlib.sha256(postings).hexdigest()],
        )
        con.execute(
            "insert into main.payment_files values (?, ?, ?, null)",
            [day, settings.layout.payments(day).name, hashlib.sha256(payments).hexdigest()],
        )
    return postings


def payment_file(extra_rows: int = 1) -> bytes:
    rows = [",".join(PAYMENTS_HEADER)]
    rows += [f"P{n},C1,A1,T{n},,10.00,APPROVED,00,ok,2026-03-02" for n in range(extra_rows)]
    return ("\n".join(rows) + "\n").encode()


def test_a_payment_file_is_collected_whole_into_the_inbox_and_moved_once_reconciled(settings):
    payments = payment_file()
    outbound = exchange(settings, locations.PAYMENTS)
    outbound.mkdir(parents=True)
    (outbound / "payments_20260302.csv").write_bytes(payments)

    assert collect.collect_payment_file(D, settings) == collect.COLLECTED
    inbox = settings.layout.payments(D)
    assert inbox.read_bytes() == payments
    assert inbox.stat().st_mode & 0o007 == 0
    assert sorted(p.name for p in inbox.parent.iterdir()) == ["payments_20260302.csv"]
    assert sensors.payment_file_ready(D, settings)
    # Collected again: the inbox copy stands, nothing changes.
    assert collect.collect_payment_file(D, settings) == collect.IN_INBOX
    assert inbox.read_bytes() == payments
    # Not moved before the reconciliation committed.
    assert collect.archive_payment_file(D, settings).startswith("not reconciled")
    assert (outbound / "payments_20260302.csv").exists()

    postings = commit_reconciliation(settings, payments)
    result = delivery.deliver_postings(D, settings)
    assert (
        exchange(settings, locations.POSTINGS) / "payment_postings_20260302.csv"
    ).read_bytes() == (postings)
    assert result["payment_file"].startswith("moved to")
    assert not (outbound / "payments_20260302.csv").exists()
    assert (outbound / "processed" / "payments_20260302.csv").read_bytes() == payments

    # The same file offered again: processed/ keeps it, nothing else changes.
    (outbound / "payments_20260302.csv").write_bytes(payments)
    assert delivery.deliver_postings(D, settings)["file_outcome"] == delivery.ALREADY_THERE
    assert not (outbound / "payments_20260302.csv").exists()
    assert (outbound / "processed" / "payments_20260302.csv").read_bytes() == payments


def test_a_payment_file_still_being_written_is_not_collected_until_it_holds_still(settings):
    settings = dataclasses.replace(settings, payment_file_settle_seconds=0.5)
    outbound = exchange(settings, locations.PAYMENTS)
    outbound.mkdir(parents=True)
    remote = outbound / "payments_20260302.csv"
    remote.write_bytes(payment_file(1)[:40])
    assert collect.collect_payment_file(D, settings) == collect.CHANGING
    time.sleep(0.6)
    remote.write_bytes(payment_file(3))  # it grew meanwhile
    assert collect.collect_payment_file(D, settings) == collect.CHANGING
    assert not settings.layout.payments(D).exists()
    time.sleep(0.6)
    assert collect.collect_payment_file(D, settings) == collect.COLLECTED
    assert settings.layout.payments(D).read_bytes() == payment_file(3)
    assert not list(settings.layout.payments_inbox.glob(".*"))


def test_a_file_already_in_the_inbox_is_read_and_nothing_is_collected_over_it(settings):
    inbox = settings.layout.payments(D)
    inbox.parent.mkdir(parents=True)
    inbox.write_bytes(payment_file(2))
    outbound = exchange(settings, locations.PAYMENTS)
    outbound.mkdir(parents=True)
    (outbound / "payments_20260302.csv").write_bytes(payment_file(1))
    assert collect.collect_payment_file(D, settings) == collect.IN_INBOX
    assert inbox.read_bytes() == payment_file(2)
    # Reconciled from the inbox's file: the other one at the location stays where it is.
    commit_reconciliation(settings, payment_file(2))
    assert collect.archive_payment_file(D, settings) == "another file: left in place"
    assert (outbound / "payments_20260302.csv").read_bytes() == payment_file(1)


def test_file_deliveries_is_a_warehouse_table(settings):
    with connect(settings) as con:
        columns = [row[0] for row in con.execute("describe main.file_deliveries").fetchall()]
    assert columns == [
        "as_of_date",
        "file",
        "sha256",
        "destination",
        "remote_path",
        "attempt",
        "started_at",
        "finished_at",
        "outcome",
        "error",
    ]


def test_a_manual_run_collects_a_file_waiting_at_the_location_and_fails_without_one(settings):
    run = types.SimpleNamespace(start_date=dt.datetime.now(dt.UTC), run_after=None)
    day = dt.timedelta(hours=24)
    with pytest.raises(sensors.PaymentFileMissing, match="nor at ImaginePay's location"):
        sensors.poke_payment_file(D, run, day, False)
    outbound = exchange(settings, locations.PAYMENTS)
    outbound.mkdir(parents=True)
    (outbound / "payments_20260302.csv").write_bytes(payment_file(2))
    assert sensors.poke_payment_file(D, run, day, False)
    assert settings.layout.payments(D).read_bytes() == payment_file(2)


def test_a_file_still_changing_at_the_location_is_looked_at_again_once_it_can_have_settled(
    settings, monkeypatch
):
    from airflow.sdk.exceptions import AirflowRescheduleException

    monkeypatch.setenv("AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS", "30")
    run = types.SimpleNamespace(start_date=dt.datetime.now(dt.UTC), run_after=None)
    outbound = exchange(settings, locations.PAYMENTS)
    outbound.mkdir(parents=True)
    (outbound / "payments_20260302.csv").write_bytes(payment_file(2))
    with pytest.raises(AirflowRescheduleException) as later:
        sensors.poke_payment_file(D, run, dt.timedelta(hours=24), True)
    wait = (later.value.reschedule_date - dt.datetime.now(dt.UTC)).total_seconds()
    assert 25 < wait <= 31
    assert not settings.layout.payments(D).exists()


def test_a_file_left_undelivered_is_named_by_every_later_delivery(settings):
    publish_fake_refund_file(settings)
    folder = exchange(settings)
    folder.mkdir(parents=True)
    (folder / "refunds_20260302.csv").write_bytes(b"theirs\n")
    with pytest.raises(delivery.DeliveryConflict):
        delivery.deliver_refund_file(D, settings)
    later = D + dt.timedelta(days=1)
    publish_fake_refund_file(settings, day=later)
    result = delivery.deliver_refund_file(later, settings)
    assert result["undelivered_elsewhere"] == ["refunds_20260302.csv"]
