"""Where files travel to and from (CONTRACT 9): a location is an Airflow Connection.

Three locations, each by its connection id: ``imaginepay_refunds`` (refund files and their
manifests are delivered into it), ``imaginepay_payments`` (payment files are collected from it)
and ``imagineone_postings`` (postings files are delivered into it). Two kinds behind one small
interface, ``Location``:

- ``LocalFolder``: a connection of type ``fs`` whose extra ``path`` names the folder, or, when
  the connection is not defined, the embedded default ``$AUTO_REFUNDS_DATA_DIR/exchange/<id>/``
  (``make run`` and most tests: no server needed);
- ``SftpLocation``: a connection of type ``sftp`` (Airflow's SFTP provider registers the type),
  spoken through paramiko, the library the provider wraps. The provider's hook is not used: it
  accepts an unknown host key unless told otherwise, and falls back to a password or an agent;
  here the host key must be pinned in the extra ``host_key`` (a mismatch or a missing pin fails,
  never accepted on first use) and the only authentication is the key of the extra
  ``private_key`` (PEM text) or ``key_file``. The extra ``path`` is the remote folder;
  ``conn_timeout`` bounds connecting and authenticating, ``transfer_timeout`` each read or write
  of a transfer (a server that stops answering fails the transfer instead of hanging it).

Either kind may name OpenPGP keys (``Pgp``, README, Delivery: PGP): the extra
``pgp_public_key`` (the recipient's, ASCII-armored) has files delivered there encrypted to it;
the extras ``pgp_private_key`` and ``pgp_passphrase`` (ours) decrypt the encrypted files
collected from there (``auto_refunds.pgp``).

Names are relative to the location's folder (``processed/payments_20260302.csv``). Renames never
replace a file: on both kinds a rename onto an existing name fails (``FileExistsError``), which
is what lets a delivery refuse to overwrite a different file that is already there. Connections
are looked up when a task runs, never when a DAG file is parsed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import posixpath
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from auto_refunds.errors import NeedsAPerson
from auto_refunds.faults import crash_point
from auto_refunds.layout import FILE_MODE, make_folder

REFUNDS = "imaginepay_refunds"
PAYMENTS = "imaginepay_payments"
POSTINGS = "imagineone_postings"

CHUNK = 1024 * 1024
DEFAULT_CONN_TIMEOUT = 30.0
DEFAULT_TRANSFER_TIMEOUT = 300.0


class LocationError(RuntimeError):
    """A location could not be reached or a transfer failed; a retry may succeed. The message
    names the location and the file."""


class LocationMisconfigured(NeedsAPerson):
    action = (
        "fix the Airflow connection named above (README, Delivery: the connection's type, "
        "host, login, key and pinned host key), then clear the failed task"
    )


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Pgp:
    """The OpenPGP keys a connection names (README, Delivery: PGP): the recipient's public key
    (files sent there are encrypted to it), our private key and its passphrase (files collected
    from there that are encrypted are decrypted with it)."""

    public_key: str | None = None
    private_key: str | None = None
    passphrase: str | None = None

    def __repr__(self) -> str:  # never a key or a passphrase in a log or a traceback
        return f"Pgp(public_key={bool(self.public_key)}, private_key={bool(self.private_key)})"


class Location(ABC):
    """One place files travel to or from. Use it inside ``with location.session():``."""

    conn_id: str
    pgp: Pgp = Pgp()

    @abstractmethod
    def describe(self, name: str = "") -> str:
        """Where ``name`` is, for messages and ``file_deliveries.remote_path``."""

    @contextlib.contextmanager
    def session(self) -> Iterator[Location]:
        yield self

    @abstractmethod
    def stat(self, name: str) -> RemoteFile | None:
        """The regular file at ``name``, or None when there is none."""

    @abstractmethod
    def open_read(self, name: str): ...

    @abstractmethod
    def open_write(self, name: str):
        """A new or truncated file at ``name`` (a temporary name: never a delivered one)."""

    @abstractmethod
    def rename(self, source: str, target: str) -> None:
        """Rename, never replacing: ``FileExistsError`` when ``target`` exists."""

    @abstractmethod
    def remove(self, name: str) -> None: ...

    @abstractmethod
    def make_folder(self, name: str) -> None: ...

    def sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self._failing(name, "reading"), self.open_read(name) as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
        return digest.hexdigest()

    def upload(self, local: Path, name: str) -> None:
        """Copy ``local`` to ``name``, replacing whatever a killed upload left there."""
        with (
            self._failing(name, "writing"),
            open(local, "rb") as source,
            self.open_write(name) as target,
        ):
            first = True
            while block := source.read(CHUNK):
                target.write(block)
                if first:
                    crash_point("mid_upload")
                    first = False
            self._flush(target)

    def download(self, name: str, handle) -> None:
        with self._failing(name, "reading"), self.open_read(name) as source:
            while block := source.read(CHUNK):
                handle.write(block)

    def _flush(self, handle) -> None:
        handle.flush()

    @contextlib.contextmanager
    def _failing(self, name: str, doing: str) -> Iterator[None]:
        try:
            yield
        except (LocationError, NeedsAPerson, FileExistsError):
            raise
        except (OSError, EOFError) as error:
            raise LocationError(
                f"{self.describe(name)}: {doing} failed: {_reason(error)}"
            ) from error


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text


class LocalFolder(Location):
    """A folder of this machine (or a mount). Files are written private (CONTRACT 7, Files)."""

    def __init__(self, conn_id: str, root: Path):
        self.conn_id = conn_id
        self.root = root

    def describe(self, name: str = "") -> str:
        return f"{self.conn_id} ({self.root / name if name else self.root})"

    def _path(self, name: str) -> Path:
        return self.root / name

    def stat(self, name: str) -> RemoteFile | None:
        try:
            info = os.lstat(self._path(name))
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            raise LocationMisconfigured(
                f"{self.describe(name)}: is a link or not a regular file; nothing was moved"
            )
        return RemoteFile(name, info.st_size, info.st_mtime)

    def open_read(self, name: str):
        return open(self._path(name), "rb")

    def open_write(self, name: str):
        path = self._path(name)
        make_folder(path.parent)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(path, flags, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")

    def _flush(self, handle) -> None:
        handle.flush()
        os.fsync(handle.fileno())

    def rename(self, source: str, target: str) -> None:
        # A hard link fails on an existing name, where rename() would replace it.
        with self._failing(target, "renaming into place"):
            os.link(self._path(source), self._path(target))
            os.unlink(self._path(source))
            fd = os.open(self._path(target).parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def remove(self, name: str) -> None:
        with self._failing(name, "removing"):
            self._path(name).unlink(missing_ok=True)

    def make_folder(self, name: str) -> None:
        with self._failing(name, "creating the folder"):
            make_folder(self._path(name))


class SftpLocation(Location):
    """A folder on an SFTP server, its host key pinned, key authentication only."""

    def __init__(
        self,
        conn_id: str,
        host: str,
        port: int,
        login: str,
        folder: str,
        host_key: str,
        private_key: str | None = None,
        key_file: str | None = None,
        passphrase: str | None = None,
        conn_timeout: float = DEFAULT_CONN_TIMEOUT,
        transfer_timeout: float = DEFAULT_TRANSFER_TIMEOUT,
    ):
        self.conn_id = conn_id
        self.host, self.port, self.login = host, port, login
        self.folder = folder or "."
        self.host_key = host_key
        self.private_key, self.key_file, self.passphrase = private_key, key_file, passphrase
        self.conn_timeout, self.transfer_timeout = conn_timeout, transfer_timeout
        self._client = None
        self._sftp = None

    def describe(self, name: str = "") -> str:
        where = posixpath.join(self.folder, name) if name else self.folder
        return f"{self.conn_id} (sftp://{self.login}@{self.host}:{self.port}/{where.lstrip('/')})"

    def _path(self, name: str) -> str:
        return posixpath.join(self.folder, name)

    def _pinned_key(self):
        import paramiko

        fields = self.host_key.split()
        if len(fields) >= 3 and not fields[0].startswith(("ssh-", "ecdsa-")):
            fields = fields[1:]  # a known_hosts line: the host names come first
        try:
            key_type, data = fields[0], base64.b64decode(fields[1], validate=True)
            return paramiko.PKey.from_type_string(key_type, data)
        except (IndexError, ValueError, paramiko.SSHException) as error:
            raise LocationMisconfigured(
                f"{self.describe()}: the extra host_key is not a public key such as "
                f"'ssh-ed25519 AAAA...' ({_reason(error)})"
            ) from None

    def _client_key(self):
        import paramiko

        if not self.private_key:
            return None
        for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return kind.from_private_key(io.StringIO(self.private_key), self.passphrase)
            except paramiko.PasswordRequiredException:
                raise LocationMisconfigured(
                    f"{self.describe()}: the private key needs a passphrase (extra "
                    "private_key_passphrase)"
                ) from None
            except (paramiko.SSHException, ValueError):
                continue
        raise LocationMisconfigured(
            f"{self.describe()}: the extra private_key is not an Ed25519, ECDSA or RSA private "
            "key in PEM or OpenSSH format"
        )

    @contextlib.contextmanager
    def session(self) -> Iterator[Location]:
        import paramiko

        if not self.private_key and not self.key_file:
            raise LocationMisconfigured(
                f"{self.describe()}: no key (extra private_key or key_file); only key "
                "authentication is used"
            )
        client = paramiko.SSHClient()
        known = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        pinned = self._pinned_key()
        client.get_host_keys().add(known, pinned.get_name(), pinned)
        # Never trust on first use: a host key that is not the pinned one fails.
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.login,
                pkey=self._client_key(),
                key_filename=self.key_file,
                passphrase=self.passphrase,
                look_for_keys=False,
                allow_agent=False,
                timeout=self.conn_timeout,
                banner_timeout=self.conn_timeout,
                auth_timeout=self.conn_timeout,
                channel_timeout=self.conn_timeout,
            )
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(self.transfer_timeout)
        except paramiko.BadHostKeyException as error:
            client.close()
            raise LocationError(
                f"{self.describe()}: the server's host key is not the one pinned in the "
                f"connection (it offered {error.key.get_name()} "
                f"{error.key.get_base64()[:16]}...); nothing was sent or read. If the server's "
                "key really changed, check it with its owner and pin the new one"
            ) from None
        except paramiko.AuthenticationException as error:
            client.close()
            raise LocationError(
                f"{self.describe()}: the server refused our key ({_reason(error)}); "
                "nothing was sent or read"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as error:
            client.close()
            raise LocationError(
                f"{self.describe()}: cannot connect ({_reason(error)}); nothing was sent or read"
            ) from None
        self._client, self._sftp = client, sftp
        try:
            yield self
        finally:
            self._sftp = self._client = None
            client.close()

    @property
    def sftp(self):
        if self._sftp is None:
            raise RuntimeError("SftpLocation used outside its session()")
        return self._sftp

    def stat(self, name: str) -> RemoteFile | None:
        with self._failing(name, "looking"):
            try:
                info = self.sftp.lstat(self._path(name))
            except FileNotFoundError:
                return None
        if not stat.S_ISREG(info.st_mode or 0):
            raise LocationMisconfigured(
                f"{self.describe(name)}: is a link or not a regular file; nothing was moved"
            )
        return RemoteFile(name, info.st_size, float(info.st_mtime))

    def open_read(self, name: str):
        handle = self.sftp.open(self._path(name), "rb")
        handle.prefetch()
        return handle

    def open_write(self, name: str):
        handle = self.sftp.open(self._path(name), "wb")
        handle.set_pipelined(True)
        handle.chmod(FILE_MODE)
        return handle

    def rename(self, source: str, target: str) -> None:
        # SSH_FXP_RENAME (not the posix-rename extension) never replaces an existing target.
        with self._failing(target, "renaming into place"):
            if self.stat(target) is not None:
                raise FileExistsError(self._path(target))
            try:
                self.sftp.rename(self._path(source), self._path(target))
            except OSError:
                if self.stat(target) is not None:
                    raise FileExistsError(self._path(target)) from None
                raise

    def remove(self, name: str) -> None:
        with self._failing(name, "removing"), contextlib.suppress(FileNotFoundError):
            self.sftp.remove(self._path(name))

    def make_folder(self, name: str) -> None:
        with self._failing(name, "creating the folder"):
            try:
                self.sftp.mkdir(self._path(name), 0o750)
            except OSError:
                if self.stat_folder(name) is None:
                    raise

    def stat_folder(self, name: str):
        try:
            return self.sftp.stat(self._path(name))
        except FileNotFoundError:
            return None

    def _flush(self, handle) -> None:
        handle.flush()


def _connection(conn_id: str):
    """The Airflow connection ``conn_id``, or None when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _seconds(conn_id: str, extra: dict, name: str, default: float) -> float:
    value = extra.get(name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise LocationMisconfigured(f"{conn_id}: the extra {name}={value!r} is not seconds above 0")
    return seconds


def resolve(conn_id: str, data_dir: Path) -> Location:
    """The location of the connection ``conn_id``; the local default when it is not defined."""
    conn = _connection(conn_id)
    if conn is None:
        return LocalFolder(conn_id, data_dir / "exchange" / conn_id)
    extra = conn.extra_dejson or {}
    where = _resolve(conn_id, conn, extra)
    where.pgp = Pgp(
        extra.get("pgp_public_key") or None,
        extra.get("pgp_private_key") or None,
        extra.get("pgp_passphrase") or None,
    )
    return where


def _resolve(conn_id: str, conn, extra: dict) -> Location:
    if conn.conn_type == "fs":
        if not extra.get("path"):
            raise LocationMisconfigured(f"{conn_id}: a connection of type fs needs the extra path")
        return LocalFolder(conn_id, Path(extra["path"]).expanduser())
    if conn.conn_type == "sftp":
        missing = [
            what for what, value in (("host", conn.host), ("login", conn.login)) if not value
        ]
        if not extra.get("host_key"):
            missing.append("the extra host_key (the server's public key, pinned)")
        if missing:
            raise LocationMisconfigured(
                f"{conn_id}: the sftp connection has no {', '.join(missing)}"
            )
        return SftpLocation(
            conn_id,
            host=conn.host,
            port=int(conn.port or 22),
            login=conn.login,
            folder=extra.get("path") or ".",
            host_key=extra["host_key"],
            private_key=extra.get("private_key"),
            key_file=extra.get("key_file"),
            passphrase=extra.get("private_key_passphrase"),
            conn_timeout=_seconds(conn_id, extra, "conn_timeout", DEFAULT_CONN_TIMEOUT),
            transfer_timeout=_seconds(conn_id, extra, "transfer_timeout", DEFAULT_TRANSFER_TIMEOUT),
        )
    raise LocationMisconfigured(
        f"{conn_id}: connection type {conn.conn_type!r}; a location is of type sftp or fs"
    )
