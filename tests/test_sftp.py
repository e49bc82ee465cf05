"""Delivery and collection over SFTP against the real thing (CONTRACT 9): OpenSSH's sshd from
Debian's packages, started for each test on a loopback port with throwaway host and client keys
(tests/sftp_server.py), an SFTP-only account.

Each fault ends with nothing delivered twice or half, and an error that names the location and
the file.
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

import pytest
from sftp_server import Sftpd
from test_delivery import (
    D,
    commit_reconciliation,
    deliveries,
    payment_file,
    publish_fake_refund_file,
)

from auto_refunds import collect, delivery, locations, sensors
from auto_refunds.locations import LocationError


@pytest.fixture
def sftpd(tmp_path):
    server = Sftpd(tmp_path / "sftpd")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def use(monkeypatch, conn_id: str, connection: dict) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def listing(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def test_a_refund_file_is_delivered_over_sftp_verified_and_again_is_a_no_op(
    settings, sftpd, monkeypatch
):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    content, manifest = publish_fake_refund_file(settings, rows=20_000)
    result = delivery.deliver_refund_file(D, settings)
    inbound = sftpd.remote / "inbound"
    assert (inbound / "refunds_20260302.csv").read_bytes() == content
    assert (inbound / "refunds_20260302.manifest.json").read_bytes() == manifest
    assert listing(inbound) == ["refunds_20260302.csv", "refunds_20260302.manifest.json"]
    assert result["file"] == (
        f"imaginepay_refunds (sftp://{sftpd.user}@127.0.0.1:{sftpd.port}"
        f"{inbound}/refunds_20260302.csv)"
    )
    assert (inbound / "refunds_20260302.csv").stat().st_mode & 0o007 == 0
    # Again, the identical file there: nothing happens.
    before = (inbound / "refunds_20260302.csv").stat()
    again = delivery.deliver_refund_file(D, settings)
    assert again["file_outcome"] == again["manifest_outcome"] == delivery.ALREADY_THERE
    assert (inbound / "refunds_20260302.csv").stat().st_mtime_ns == before.st_mtime_ns
    assert [row[2:4] for row in deliveries(settings)] == [
        (1, "DELIVERED"),
        (1, "DELIVERED"),
        (2, "ALREADY_THERE"),
        (2, "ALREADY_THERE"),
    ]


def test_a_different_file_at_that_name_is_refused_naming_both_hashes(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    content, _ = publish_fake_refund_file(settings)
    theirs = b"refund_id\nNOT-OURS\n"
    (sftpd.remote / "inbound" / "refunds_20260302.csv").write_bytes(theirs)
    with pytest.raises(delivery.DeliveryConflict) as failure:
        delivery.deliver_refund_file(D, settings)
    for digest in (hashlib.sha256(content).hexdigest(), hashlib.sha256(theirs).hexdigest()):
        assert digest in str(failure.value)
    assert f"127.0.0.1:{sftpd.port}" in str(failure.value)
    assert (sftpd.remote / "inbound" / "refunds_20260302.csv").read_bytes() == theirs
    assert listing(sftpd.remote / "inbound") == ["refunds_20260302.csv"]


def test_a_key_the_server_refuses_fails_naming_the_location_and_the_file(
    settings, sftpd, monkeypatch, tmp_path
):
    from sftp_server import keygen

    keygen(tmp_path / "stranger")
    stranger = (tmp_path / "stranger").read_text()
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound", private_key=stranger))
    publish_fake_refund_file(settings)
    with pytest.raises(delivery.DeliveryFailed) as failure:
        delivery.deliver_refund_file(D, settings)
    message = str(failure.value)
    assert "refused our key" in message
    assert "imaginepay_refunds" in message and "refunds_20260302.csv" in message
    assert listing(sftpd.remote / "inbound") == []
    assert [row[3] for row in deliveries(settings)] == ["FAILED"]


def test_a_key_file_authenticates_too(settings, sftpd, monkeypatch):
    connection = sftpd.connection("inbound", private_key=None, key_file=str(sftpd.client_key))
    use(monkeypatch, locations.REFUNDS, connection)
    content, _ = publish_fake_refund_file(settings)
    delivery.deliver_refund_file(D, settings)
    assert (sftpd.remote / "inbound" / "refunds_20260302.csv").read_bytes() == content


def test_a_changed_host_key_fails_and_is_never_accepted(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    publish_fake_refund_file(settings)
    sftpd.stop()
    sftpd.new_host_key()
    sftpd.start()
    for _ in range(2):  # the retry meets the same refusal: nothing was learned from the first
        with pytest.raises(delivery.DeliveryFailed) as failure:
            delivery.deliver_refund_file(D, settings)
        assert "not the one pinned" in str(failure.value)
        assert "refunds_20260302.csv" in str(failure.value)
    assert listing(sftpd.remote / "inbound") == []
    # A pin of the new key (checked with the server's owner) delivers.
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    assert delivery.deliver_refund_file(D, settings)["file_outcome"] == delivery.DELIVERED


def test_the_server_down_then_back_the_retry_delivers(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    content, manifest = publish_fake_refund_file(settings)
    sftpd.stop()
    with pytest.raises(delivery.DeliveryFailed) as failure:
        delivery.deliver_refund_file(D, settings)
    assert "cannot connect" in str(failure.value)
    assert f"127.0.0.1:{sftpd.port}" in str(failure.value)
    assert "refunds_20260302.csv" in str(failure.value)
    sftpd.start()
    assert delivery.deliver_refund_file(D, settings)["file_outcome"] == delivery.DELIVERED
    inbound = sftpd.remote / "inbound"
    assert (inbound / "refunds_20260302.csv").read_bytes() == content
    assert (inbound / "refunds_20260302.manifest.json").read_bytes() == manifest
    assert [row[2:4] for row in deliveries(settings)] == [
        (1, "FAILED"),
        (2, "DELIVERED"),
        (1, "DELIVERED"),
    ]


def test_a_full_remote_disk_fails_leaving_nothing_and_the_retry_delivers(
    settings, sftpd, monkeypatch
):
    if os.geteuid() != 0:
        pytest.skip("a tiny filesystem for the remote folder needs root (mount -t tmpfs)")
    inbound = sftpd.remote / "inbound"
    inbound.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(inbound)], check=True)
    try:
        use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
        content, _ = publish_fake_refund_file(settings, rows=8_000)
        assert len(content) > 128 * 1024
        with pytest.raises(LocationError) as failure:
            delivery.deliver_refund_file(D, settings)
        assert "imaginepay_refunds" in str(failure.value)
        assert "refunds_20260302.csv" in str(failure.value)
        # Neither the file nor its partial upload holds the space.
        assert listing(inbound) == []
        subprocess.run(["mount", "-o", "remount,size=4m", str(inbound)], check=True)
        assert delivery.deliver_refund_file(D, settings)["file_outcome"] == delivery.DELIVERED
        assert (inbound / "refunds_20260302.csv").read_bytes() == content
    finally:
        subprocess.run(["umount", "-l", str(inbound)], check=False)


def test_a_kill_mid_upload_then_the_retry_leaves_one_whole_file(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    content, _ = publish_fake_refund_file(settings, rows=40_000)
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
    inbound = sftpd.remote / "inbound"
    assert "refunds_20260302.csv" not in listing(inbound)
    assert delivery.deliver_refund_file(D, settings)["file_outcome"] == delivery.DELIVERED
    assert (inbound / "refunds_20260302.csv").read_bytes() == content
    assert listing(inbound) == ["refunds_20260302.csv", "refunds_20260302.manifest.json"]
    assert [row[2:4] for row in deliveries(settings)][:2] == [(1, "INTERRUPTED"), (2, "DELIVERED")]


def test_a_payment_file_is_collected_once_settled_then_processed_and_offered_again(
    settings, sftpd, monkeypatch
):
    use(monkeypatch, locations.PAYMENTS, sftpd.connection("outbound"))
    use(monkeypatch, locations.POSTINGS, sftpd.connection("postings"))
    slow = dataclasses.replace(settings, payment_file_settle_seconds=0.5)
    remote = sftpd.remote / "outbound" / "payments_20260302.csv"
    remote.write_bytes(payment_file(1)[:30])  # still being written
    assert collect.collect_payment_file(D, slow) == collect.CHANGING
    time.sleep(0.6)
    remote.write_bytes(payment_file(5))
    assert collect.collect_payment_file(D, slow) == collect.CHANGING
    assert not slow.layout.payments(D).exists()
    time.sleep(0.6)
    assert sensors.payment_file_ready(D, slow)
    inbox = slow.layout.payments(D)
    assert inbox.read_bytes() == payment_file(5)
    assert inbox.stat().st_mode & 0o007 == 0
    assert collect.collect_payment_file(D, slow) == collect.IN_INBOX

    postings = commit_reconciliation(settings, payment_file(5))
    result = delivery.deliver_postings(D, settings)
    assert (sftpd.remote / "postings" / "payment_postings_20260302.csv").read_bytes() == postings
    assert result["payment_file"].startswith("moved to")
    processed = sftpd.remote / "outbound" / "processed" / "payments_20260302.csv"
    assert processed.read_bytes() == payment_file(5)
    assert not remote.exists()
    # ImaginePay offers the same file again: nothing is collected or posted twice.
    remote.write_bytes(payment_file(5))
    assert collect.collect_payment_file(D, slow) == collect.IN_INBOX
    delivery.deliver_postings(D, settings)
    assert not remote.exists() and processed.read_bytes() == payment_file(5)


def test_the_sensor_keeps_waiting_while_the_server_is_down(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.PAYMENTS, sftpd.connection("outbound"))
    (sftpd.remote / "outbound" / "payments_20260302.csv").write_bytes(payment_file(2))
    sftpd.stop()
    assert not sensors.payment_file_ready(D, settings)
    sftpd.start()
    assert sensors.payment_file_ready(D, settings)
    assert settings.layout.payments(D).read_bytes() == payment_file(2)


def test_a_day_of_files_over_sftp_keeps_dates_apart(settings, sftpd, monkeypatch):
    use(monkeypatch, locations.REFUNDS, sftpd.connection("inbound"))
    for day in (D, D + dt.timedelta(days=1)):
        publish_fake_refund_file(settings, day=day)
        delivery.deliver_refund_file(day, settings)
    assert listing(sftpd.remote / "inbound") == [
        "refunds_20260302.csv",
        "refunds_20260302.manifest.json",
        "refunds_20260303.csv",
        "refunds_20260303.manifest.json",
    ]


def test_the_money_loop_over_sftp(settings, sftpd, monkeypatch):
    """Two days through every step the DAGs run, each location a folder of the SFTP server:
    the refund file travels, ImaginePay answers at its outbound location, the reconciliation
    collects, posts, delivers the postings and moves the payment file to processed/."""
    from auto_refunds import pipeline
    from auto_refunds.demo import imaginepay_simulator, sample_data

    for conn_id, folder in (
        (locations.REFUNDS, "inbound"),
        (locations.PAYMENTS, "outbound"),
        (locations.POSTINGS, "imagineone"),
    ):
        use(monkeypatch, conn_id, sftpd.connection(folder))
    days = sample_data.generate(settings.data_dir, sample_data.Spec(D, 2, 300, 1200, seed=7))
    remote = sftpd.remote
    for day in days:
        pipeline.run_daily(day, settings)
        refunds = settings.layout.refunds(day)
        assert (remote / "inbound" / refunds.name).read_bytes() == refunds.read_bytes()
        imaginepay_simulator.answer(
            settings.layout, day, refunds_from=remote / "inbound", payments_to=remote / "outbound"
        )
        assert not settings.layout.payments(day).exists()
        pipeline.run_reconciliation(day, settings)
        postings = settings.layout.postings(day)
        assert (remote / "imagineone" / postings.name).read_bytes() == postings.read_bytes()
        processed = remote / "outbound" / "processed" / settings.layout.payments(day).name
        assert processed.read_bytes() == settings.layout.payments(day).read_bytes()
    assert listing(remote / "outbound") == ["processed"]
    outcomes = {(row[0], row[3]) for row in deliveries(settings)}
    assert outcomes == {
        (name, "DELIVERED")
        for day in days
        for name in (
            settings.layout.refunds(day).name,
            settings.layout.refunds_manifest(day).name,
            settings.layout.postings(day).name,
        )
    }
