"""Delivering published files to their locations, exactly once in effect (CONTRACT 9).

A delivery reads the file the publish already wrote in the outbox (it never publishes again:
a retry of the delivery task repeats the transfer, not the decision) and, at the location:

1. when the file's name is taken: the identical file (same SHA-256) means there is nothing to
   do; a different file is never overwritten, the delivery fails naming both hashes;
2. uploads it under a temporary name of its own attempt (``.NAME.N.part``: two attempts never
   write one temporary file; what a killed attempt left is removed by the next), checks that
   the size and the SHA-256 of what arrived are ours;
3. renames it into place, a rename that never replaces an existing file.

The refund file goes before its manifest, so a manifest at the location always means its file
is there whole. Every attempt and its outcome is a row of ``main.file_deliveries``, written
before the transfer starts and completed after it, each in a short transaction: the warehouse
is not held while bytes travel.

A location whose connection names a recipient public key gets each file encrypted to it
(``NAME.pgp``, ``auto_refunds.pgp``), the outbox's copy staying plain. The size and SHA-256
checked after the upload, and recorded in ``file_deliveries.sha256``, are those of the encrypted
bytes sent; ``file`` stays the plain file's name. Each encryption differs, so a ``NAME.pgp``
already there counts as ours when its SHA-256 is one an attempt of this file recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from auto_refunds import card_numbers, collect, locations, pgp
from auto_refunds.errors import NeedsAPerson
from auto_refunds.fingerprints import sha256_of
from auto_refunds.locations import Location, LocationError
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect, scalar, transaction

log = logging.getLogger(__name__)

DELIVERED = "DELIVERED"
ALREADY_THERE = "ALREADY_THERE"
CONFLICT = "CONFLICT"
FAILED = "FAILED"
STARTED = "STARTED"
INTERRUPTED = "INTERRUPTED"


class DeliveryConflict(NeedsAPerson):
    action = (
        "a file at the location is never overwritten: ask its owner which file is right; if "
        "ours must replace it, have them remove theirs, then clear the delivery task"
    )


class NothingToDeliver(NeedsAPerson):
    action = "run (or clear) the publish of that date first, then clear the delivery task"


class DeliveryFailed(RuntimeError):
    """The transfer failed (network, key, host key, disk, ...): a retry may succeed."""


@dataclass(frozen=True)
class Delivery:
    file: str
    destination: str
    remote_path: str
    sha256: str
    outcome: str
    attempt: int


def _temporary(name: str, attempt: int) -> str:
    return f".{name}.{attempt}.part"


def _start(
    settings: Settings, as_of: dt.date, file: str, remote: str, digest: str, where: Location
) -> tuple[int, list[int], set[str]]:
    """Record an attempt as started; returns its number, those of the attempts that were
    interrupted (left STARTED: killed), whose temporary files may still be at the location, and
    the SHA-256s every attempt of this file to this location sent (an encrypted file differs
    at each attempt)."""
    with connect(settings, as_of) as con, transaction(con):
        key = [file, where.conn_id]
        con.execute(
            "update main.file_deliveries set outcome = ? "
            "where file = ? and destination = ? and outcome = ?",
            [INTERRUPTED, *key, STARTED],
        )
        attempt = 1 + scalar(
            con,
            "select count(*) from main.file_deliveries where file = ? and destination = ?",
            key,
        )
        interrupted = [
            row[0]
            for row in con.execute(
                "select attempt from main.file_deliveries "
                "where file = ? and destination = ? and outcome = ? order by 1",
                [*key, INTERRUPTED],
            ).fetchall()
        ]
        sent = {
            row[0]
            for row in con.execute(
                "select distinct sha256 from main.file_deliveries "
                "where file = ? and destination = ?",
                key,
            ).fetchall()
        }
        con.execute(
            "insert into main.file_deliveries values (?, ?, ?, ?, ?, ?, ?, null, ?, null)",
            [
                as_of,
                file,
                digest,
                where.conn_id,
                where.describe(remote),
                attempt,
                dt.datetime.now(dt.UTC),
                STARTED,
            ],
        )
    return attempt, interrupted, sent | {digest}


def _finish(
    settings: Settings,
    as_of: dt.date,
    file: str,
    where: Location,
    attempt: int,
    outcome: str,
    error: str | None = None,
) -> None:
    with connect(settings, as_of) as con, transaction(con):
        con.execute(
            "update main.file_deliveries set finished_at = ?, outcome = ?, error = ? "
            "where file = ? and destination = ? and attempt = ?",
            [
                dt.datetime.now(dt.UTC),
                outcome,
                card_numbers.mask(error) if error else None,
                file,
                where.conn_id,
                attempt,
            ],
        )


def _put(
    where: Location,
    path: Path,
    digest: str,
    attempt: int,
    interrupted: list[int],
    ours: set[str],
) -> str:
    """Put ``path`` at ``where`` under its own name; returns DELIVERED or ALREADY_THERE (the
    file there has one of the SHA-256s in ``ours``)."""
    name = path.name
    size = path.stat().st_size
    for earlier in interrupted:
        where.remove(_temporary(name, earlier))
    if where.stat(name) is not None:
        return _compare(where, name, digest, ours)
    temporary = _temporary(name, attempt)
    try:
        where.upload(path, temporary)
    except LocationError:
        # A full disk: what was written of it would only hold the space the retry needs.
        with contextlib.suppress(LocationError):
            where.remove(temporary)
        raise
    arrived = where.stat(temporary)
    arrived_digest = where.sha256(temporary) if arrived and arrived.size == size else None
    if arrived_digest != digest:
        where.remove(temporary)
        what = (
            "nothing"
            if arrived is None
            else f"{arrived.size} bytes" + (f", sha256 {arrived_digest}" if arrived_digest else "")
        )
        raise LocationError(
            f"{where.describe(temporary)}: what arrived ({what}) is not what was sent "
            f"({size} bytes, sha256 {digest}); removed, not renamed into place"
        )
    try:
        where.rename(temporary, name)
    except FileExistsError:
        # Someone put a file at that name while we uploaded.
        where.remove(temporary)
        return _compare(where, name, digest, ours)
    return DELIVERED


def _compare(where: Location, name: str, digest: str, ours: set[str]) -> str:
    there = where.sha256(name)
    if there in ours:
        return ALREADY_THERE
    raise DeliveryConflict(
        f"{where.describe(name)}: a different file is already there (sha256 {there}); ours "
        f"has sha256 {digest}. It was not overwritten"
    )


def deliver_file(
    settings: Settings, as_of: dt.date, where: Location, path: Path, digest: str | None = None
) -> Delivery:
    """Deliver one file of ours to ``where`` (inside its session), recording the attempt. A
    location with a recipient key gets it encrypted (``NAME.pgp``); the outbox keeps it plain."""
    digest = digest or sha256_of(path)
    if not where.pgp.public_key:
        return _deliver(settings, as_of, where, path.name, path, digest)
    with tempfile.TemporaryDirectory(prefix="auto-refunds-pgp-") as folder:
        sent = Path(folder) / f"{path.name}{pgp.SUFFIX}"
        try:
            pgp.encrypt(where.pgp.public_key, path, sent, where.describe(sent.name))
        except pgp.PgpFailed as error:
            attempt, _, _ = _start(settings, as_of, path.name, sent.name, digest, where)
            _finish(settings, as_of, path.name, where, attempt, FAILED, str(error))
            raise
        return _deliver(settings, as_of, where, path.name, sent, sha256_of(sent))


def _deliver(
    settings: Settings, as_of: dt.date, where: Location, file: str, path: Path, digest: str
) -> Delivery:
    """Deliver ``path`` (``file`` itself, or its encryption) as ``path.name``."""
    attempt, interrupted, ours = _start(settings, as_of, file, path.name, digest, where)
    try:
        outcome = _put(where, path, digest, attempt, interrupted, ours)
    except DeliveryConflict as error:
        _finish(settings, as_of, file, where, attempt, CONFLICT, str(error))
        raise
    except (LocationError, NeedsAPerson) as error:
        _finish(settings, as_of, file, where, attempt, FAILED, str(error))
        raise
    except Exception as error:
        message = f"{where.describe(path.name)}: {type(error).__name__}: {error}"
        _finish(settings, as_of, file, where, attempt, FAILED, message)
        raise DeliveryFailed(message) from error
    _finish(settings, as_of, file, where, attempt, outcome)
    delivery = Delivery(file, where.conn_id, where.describe(path.name), digest, outcome, attempt)
    if outcome == DELIVERED:
        log.info("Delivered %s to %s (sha256 %s)", file, delivery.remote_path, digest)
    else:
        log.info(
            "%s is at %s already, the identical file: nothing to do",
            file,
            delivery.remote_path,
        )
    return delivery


@contextlib.contextmanager
def _session(
    settings: Settings, as_of: dt.date, where: Location, path: Path, digest: str
) -> Iterator[None]:
    """A session with ``where`` for delivering ``path``. A failure to reach the location names
    the file, and an attempt that could not even connect is recorded as one; a failure once
    connected is each delivery's own, recorded by it."""
    connected = False
    try:
        with where.session():
            connected = True
            yield
    except LocationError as error:
        if connected:
            raise
        message = f"{error} (delivering {path.name})"
        remote = path.name + (pgp.SUFFIX if where.pgp.public_key else "")
        attempt, _, _ = _start(settings, as_of, path.name, remote, digest, where)
        _finish(settings, as_of, path.name, where, attempt, FAILED, message)
        raise DeliveryFailed(message) from error


def warn_of_undelivered(settings: Settings, as_of: dt.date, where: Location) -> list[str]:
    """Files an attempt was made to deliver to ``where`` and none succeeded: a run stopped
    before its delivery's retries ended (killed, or failed and never cleared). Logged on every
    delivery to that location until someone clears their tasks."""
    with connect(settings, as_of) as con:
        undelivered = [
            row[0]
            for row in con.execute(
                "select file from main.file_deliveries where destination = ? group by file "
                "having not bool_or(outcome in (?, ?)) order by file",
                [where.conn_id, DELIVERED, ALREADY_THERE],
            ).fetchall()
        ]
    if undelivered:
        log.warning(
            "Not delivered to %s after an attempt: %s. Clear the delivery task of their dates",
            where.describe(),
            ", ".join(undelivered),
        )
    return undelivered


def deliver_refund_file(as_of: dt.date, settings: Settings | None = None) -> dict:
    """Deliver D's published refund file, then its manifest, to ``imaginepay_refunds``."""
    settings = settings or Settings.from_env()
    layout = settings.layout
    csv_path, manifest_path = layout.refunds(as_of), layout.refunds_manifest(as_of)
    if not manifest_path.is_file():
        raise NothingToDeliver(f"{manifest_path}: the refund file of {as_of} is not published")
    manifest = json.loads(manifest_path.read_text())
    if sha256_of(csv_path) != manifest["sha256"]:
        raise NothingToDeliver(
            f"{csv_path}: its content does not match its manifest's sha256 {manifest['sha256']}; "
            "nothing was delivered"
        )
    where = locations.resolve(locations.REFUNDS, settings.data_dir)
    with _session(settings, as_of, where, csv_path, manifest["sha256"]):
        refunds = deliver_file(settings, as_of, where, csv_path, manifest["sha256"])
        sent_manifest = deliver_file(settings, as_of, where, manifest_path)
    result = {
        "file": refunds.remote_path,
        "file_outcome": refunds.outcome,
        "manifest": sent_manifest.remote_path,
        "manifest_outcome": sent_manifest.outcome,
        "undelivered_elsewhere": warn_of_undelivered(settings, as_of, where),
    }
    log.info("Delivery of the refund file of %s: %s", as_of, result)
    return result


def deliver_postings(as_of: dt.date, settings: Settings | None = None) -> dict:
    """Deliver D's committed postings file to ``imagineone_postings``, then move the payment
    file collected for D to ``processed/`` at ImaginePay's location (D is reconciled)."""
    settings = settings or Settings.from_env()
    path = settings.layout.postings(as_of)
    with connect(settings, as_of) as con:
        recorded = con.execute(
            "select sha256, delivered from main.postings_files where as_of_date = ?", [as_of]
        ).fetchone()
    if recorded is None or not recorded[1] or not path.is_file():
        raise NothingToDeliver(f"{path}: the reconciliation of {as_of} has not published it")
    if sha256_of(path) != recorded[0]:
        raise NothingToDeliver(
            f"{path}: its content does not match the sha256 {recorded[0]} its reconciliation "
            "committed; nothing was delivered"
        )
    where = locations.resolve(locations.POSTINGS, settings.data_dir)
    with _session(settings, as_of, where, path, recorded[0]):
        postings = deliver_file(settings, as_of, where, path, recorded[0])
    result = {
        "file": postings.remote_path,
        "file_outcome": postings.outcome,
        "undelivered_elsewhere": warn_of_undelivered(settings, as_of, where),
        "payment_file": collect.archive_payment_file(as_of, settings),
    }
    log.info("Delivery of the postings of %s: %s", as_of, result)
    return result
