"""OpenPGP for the locations that ask for it (CONTRACT 9), through GnuPG.

A delivery location whose connection names a recipient public key (extra ``pgp_public_key``,
ASCII-armored) gets every file encrypted to that key; a collection location whose connection
names our private key (extra ``pgp_private_key``, ASCII-armored, and ``pgp_passphrase`` when it
has one) has the encrypted files it offers decrypted with it. Keys come from the connection (so
from Airflow's connections or its secrets backend), never from the repository.

GnuPG does the work (the ``gpg`` binary, Debian's ``gnupg`` package, driven by python-gnupg):
it streams files of any size through a subprocess, and it is the implementation the other side
most likely runs. Each operation gets a keyring of its own in a private temporary folder
(``--homedir``), holding the one key of the connection, removed with its agent when the
operation ends: no key stays on the worker's disk, and no operation sees another's keys. The
recipient key is trusted because the connection names it (``--trust-model always``), as the SFTP
host key is trusted because the connection pins it.

Nothing here logs a key, a passphrase or a line of a file: python-gnupg's own logger, whose
debug records carry the first bytes of what it imports and reads, is held at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from auto_refunds.errors import NeedsAPerson

SUFFIX = ".pgp"

logging.getLogger("gnupg").setLevel(logging.WARNING)


class PgpFailed(NeedsAPerson):
    """A file could not be encrypted or decrypted; the message names the location and file."""

    action = (
        "check the connection's OpenPGP key (README, Delivery: PGP) with the other side, or "
        "ask them to send the file again; nothing was put in place, then clear the failed task"
    )


@contextlib.contextmanager
def _keyring() -> Iterator:
    import gnupg

    home = tempfile.mkdtemp(prefix="auto-refunds-gpg-")
    os.chmod(home, 0o700)
    try:
        yield gnupg.GPG(gnupghome=home)
    finally:
        # gpg starts an agent for a private key's keyring; it ends with the keyring.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["gpgconf", "--homedir", home, "--kill", "gpg-agent"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _import(gpg, key: str, what: str, where: str) -> list[str]:
    result = gpg.import_keys(key)
    if not result.fingerprints:
        raise PgpFailed(f"{where}: the extra {what} is not an ASCII-armored OpenPGP key")
    return result.fingerprints


def _status(result) -> str:
    return getattr(result, "status", None) or "gpg failed"


def encrypt(public_key: str, source: Path, target: Path, where: str) -> None:
    """Encrypt ``source`` to ``public_key`` into ``target`` (binary OpenPGP, created private)."""
    with _keyring() as gpg:
        fingerprints = _import(gpg, public_key, "pgp_public_key", where)
        with open(source, "rb") as handle:
            result = gpg.encrypt_file(
                handle,
                recipients=fingerprints[:1],
                armor=False,
                always_trust=True,
                output=str(target),
            )
        if not result.ok:
            target.unlink(missing_ok=True)
            raise PgpFailed(f"{where}: encrypting {source.name} failed ({_status(result)})")
    os.chmod(target, 0o640)


def decrypt(private_key: str, passphrase: str | None, source: Path, target: Path, where: str):
    """Decrypt ``source`` into ``target`` with our ``private_key``. On any failure (another
    key's file, a wrong passphrase, a damaged or altered file: OpenPGP's integrity check)
    ``target`` is removed, whatever gpg wrote of it, and ``PgpFailed`` names ``where``."""
    with _keyring() as gpg:
        _import(gpg, private_key, "pgp_private_key", where)
        # Created private before gpg writes the plain text into it (--yes: over this file).
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600))
        with open(source, "rb") as handle:
            result = gpg.decrypt_file(
                handle, passphrase=passphrase or None, output=str(target), extra_args=["--yes"]
            )
        # gpg refuses a file without an integrity check (MDC): it could be altered unseen.
        if not result.ok or "DECRYPTION_OKAY" not in result.stderr or "BADMDC" in result.stderr:
            target.unlink(missing_ok=True)
            raise PgpFailed(
                f"{where}: decrypting it failed ({_status(result)}): not our key, a wrong "
                "pgp_passphrase, or a damaged or altered file"
            )
