"""Collecting ImaginePay's payment files from its outbound location (CONTRACT 9).

The payment file of D is collected from the location ``imaginepay_payments`` into
``inbox/imaginepay/`` once it is complete there (CONTRACT 7): its size and modification time
unchanged for the settle interval, as seen by two looks that far apart (what each look saw is
kept beside the inbox file, so the sensor's pokes need no clock of the server). It is copied to
a hidden temporary file, checked against what the location showed (size unchanged while it was
read), flushed and renamed into place whole, private. A file already in the inbox is read as
before and nothing is collected over it: the inbox stays a working interface on its own.

Once D's reconciliation has committed, the remote file moves to ``processed/`` at the location
(``archive_payment_file``), and only when it is the very file that was reconciled (the SHA-256
recorded in ``payment_files``). Collecting a file again changes nothing: the inbox copy is the
same bytes, and the reconciliation of the same file changes nothing (CONTRACT 5).

A payment file offered encrypted (``payments_D.csv.pgp``) is decrypted with our private key (the
connection's ``pgp_private_key``) into a second hidden temporary file and only then linked into
the inbox, plain; a failure (another key, a wrong passphrase, an altered file) names the location
and the file and leaves nothing in the inbox. Its move to ``processed/`` compares the SHA-256 of
its plain text with the one reconciled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from auto_refunds import locations, pgp
from auto_refunds.fingerprints import sha256_of
from auto_refunds.layout import FILE_MODE, make_folder, open_private
from auto_refunds.locations import Location, LocationError, LocationMisconfigured, RemoteFile
from auto_refunds.settings import Settings

log = logging.getLogger(__name__)

IN_INBOX = "in the inbox"
COLLECTED = "collected"
CHANGING = "still changing at the location"
ABSENT = "not at the location yet"


def _seen_file(path: Path) -> Path:
    return path.with_name(f".{path.name}.seen")


def _settled(found: RemoteFile, seen_file: Path, settle_seconds: float) -> bool:
    """Whether ``found`` looked the same a settle interval ago (by our clock)."""
    now = time.time()
    look = {"size": found.size, "mtime": found.mtime}
    try:
        before = json.loads(seen_file.read_text())
    except (FileNotFoundError, ValueError):
        before = None
    if before is None or {k: before.get(k) for k in look} != look:
        with open_private(seen_file) as handle:
            json.dump({**look, "first_seen": now}, handle)
        return settle_seconds == 0
    return now - float(before["first_seen"]) >= settle_seconds


def _find(where: Location, name: str) -> RemoteFile | None:
    """The payment file at the location: ``name``, or else ``name.pgp``, encrypted."""
    found = where.stat(name)
    return found if found is not None else where.stat(name + pgp.SUFFIX)


def _decrypting(where: Location, name: str):
    if not where.pgp.private_key:
        raise LocationMisconfigured(
            f"{where.describe(name)}: the file is encrypted and the connection names no "
            "pgp_private_key to decrypt it"
        )
    return where.pgp


def _fetch(where: Location, found: RemoteFile, path: Path) -> None:
    """Copy the remote file to ``path`` whole: a temporary file, checked, renamed. An encrypted
    one (``.pgp``) is decrypted into a second temporary file first: the inbox gets the plain
    file whole, or nothing."""
    make_folder(path.parent)
    encrypted = found.name.endswith(pgp.SUFFIX)
    keys = _decrypting(where, found.name) if encrypted else None
    temporary = path.with_name(f".{found.name}.collecting")
    temporary.unlink(missing_ok=True)
    with open_private(temporary, "wb") as handle:
        where.download(found.name, handle)
        handle.flush()
        os.fsync(handle.fileno())
    after = where.stat(found.name)
    if after is None or (after.size, after.mtime) != (found.size, found.mtime):
        temporary.unlink(missing_ok=True)
        raise LocationError(
            f"{where.describe(found.name)}: changed while it was collected; collected again "
            "once it holds still"
        )
    if temporary.stat().st_size != found.size:
        temporary.unlink(missing_ok=True)
        raise LocationError(
            f"{where.describe(found.name)}: {temporary.stat().st_size} bytes arrived of "
            f"{found.size}; collected again at the next look"
        )
    if encrypted:
        plain = path.with_name(f".{path.name}.decrypting")
        try:
            pgp.decrypt(
                keys.private_key, keys.passphrase, temporary, plain, where.describe(found.name)
            )
        finally:
            temporary.unlink(missing_ok=True)
        temporary = plain
        os.chmod(temporary, FILE_MODE)
    # Never over a file put in the inbox meanwhile (by hand, or another transfer tool).
    try:
        os.link(temporary, path)
    except FileExistsError:
        log.warning("%s appeared in the inbox while it was collected: that one is read", path)
    temporary.unlink()


def collect_payment_file(as_of: dt.date, settings: Settings) -> str:
    """Collect D's payment file into the inbox when it is complete at the location; returns
    what is so (``IN_INBOX``, ``COLLECTED``, ``CHANGING``, ``ABSENT``). A location that cannot
    be reached raises ``LocationError`` naming it and the file."""
    path = settings.layout.payments(as_of)
    if path.is_file():
        return IN_INBOX
    where = locations.resolve(locations.PAYMENTS, settings.data_dir)
    try:
        with where.session():
            found = _find(where, path.name)
            if found is None:
                return ABSENT
            if not _settled(found, _seen_file(path), settings.payment_file_settle_seconds):
                return CHANGING
            _fetch(where, found, path)
    except LocationError as error:
        if path.name in str(error):
            raise
        raise LocationError(f"{error} (collecting {path.name})") from error
    _seen_file(path).unlink(missing_ok=True)
    # Whole by construction: the inbox's own settle check must not wait for it again.
    settled_at = time.time() - settings.payment_file_settle_seconds
    os.utime(path, (settled_at, settled_at))
    log.info("Collected %s from %s into %s", path.name, where.describe(found.name), path)
    return COLLECTED


def _plain_sha256(where: Location, name: str) -> str:
    """The SHA-256 of the file at ``name``; of its plain text when it is encrypted (the
    reconciliation recorded the plain file's, and each encryption of a file differs)."""
    if not name.endswith(pgp.SUFFIX):
        return where.sha256(name)
    keys = _decrypting(where, name)
    with tempfile.TemporaryDirectory(prefix="auto-refunds-pgp-") as folder:
        encrypted, plain = Path(folder) / "file.pgp", Path(folder) / "file"
        with open_private(encrypted, "wb") as handle:
            where.download(name, handle)
        pgp.decrypt(keys.private_key, keys.passphrase, encrypted, plain, where.describe(name))
        return sha256_of(plain)


def archive_payment_file(as_of: dt.date, settings: Settings) -> str:
    """Move D's reconciled payment file to ``processed/`` at the location; says what it did."""
    from auto_refunds.warehouse import connect, scalar

    name = settings.layout.payments(as_of).name
    with connect(settings, as_of) as con:
        reconciled = scalar(
            con,
            "select f.sha256 from main.payment_files as f "
            "semi join main.postings_files as p using (as_of_date) where f.as_of_date = ?",
            [as_of],
        )
    if reconciled is None:
        return "not reconciled: left where it is"
    where = locations.resolve(locations.PAYMENTS, settings.data_dir)
    with where.session():
        found = _find(where, name)
        if found is None:
            return "nothing to move"
        name = found.name
        processed = f"processed/{name}"
        there = _plain_sha256(where, name)
        if there != reconciled:
            log.warning(
                "%s holds sha256 %s, not the file reconciled for %s (sha256 %s): left in place",
                where.describe(name),
                there,
                as_of,
                reconciled,
            )
            return "another file: left in place"
        where.make_folder("processed")
        try:
            where.rename(name, processed)
        except FileExistsError:
            if _plain_sha256(where, processed) != there:
                log.warning(
                    "%s: another file is already in processed/; %s left in place",
                    where.describe(processed),
                    name,
                )
                return "processed/ holds another file: left in place"
            # The same file offered again after it was processed: processed/ keeps it.
            where.remove(name)
    log.info("Moved %s to %s", name, where.describe(processed))
    return f"moved to {where.describe(processed)}"
