"""A throwaway OpenSSH SFTP server for the tests: Debian's sshd on a free loopback port.

Everything is the test's own: its sshd_config (``-f``), its ed25519 host key and client key,
generated here, its authorized_keys file and pid file, in a temporary folder. The one account it
lets in is the current user's, by key only, and only to SFTP (``ForceCommand internal-sftp``):
no shell, no password, no forwarding. Run as root, sshd needs its privilege-separation folder
``/run/sshd``; when ``/usr/sbin/sshd`` is missing, root installs ``openssh-server`` (as .ci/run
does), anyone else is told to.

``Sftpd.start`` starts it in the foreground of its own process (``-D``), ``stop`` ends it by its
pid; the fixture that owns one stops it in a finalizer, whatever the test did.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


def ensure_sshd() -> Path:
    """Debian's sshd, installed when missing and this process may (root)."""
    if SSHD.is_file():
        return SSHD
    if os.geteuid() != 0:
        raise RuntimeError(
            f"{SSHD} is missing: install Debian's openssh-server (apt-get install openssh-server)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "openssh-server"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return SSHD


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path`` (and ``.pub``); returns the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "auto-refunds-test", "-f", str(path)],
        check=True,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sftpd:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self.sshd = ensure_sshd()
        self.user = getpass.getuser()
        self.port = free_port()
        self.remote = folder / "remote"
        self.remote.mkdir(mode=0o750)
        self.client_key = folder / "client_ed25519"
        self.client_public = keygen(self.client_key)
        self.host_key_file = folder / "host_ed25519"
        self.host_key = keygen(self.host_key_file)
        (folder / "authorized_keys").write_text(self.client_public + "\n")
        os.chmod(folder / "authorized_keys", 0o600)
        self.process: subprocess.Popen | None = None
        self.log = folder / "sshd.log"

    def config(self) -> Path:
        path = self.folder / "sshd_config"
        path.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key_file}",
                    f"PidFile {self.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
                    # The test's folders sit under /tmp, which others may write (sticky).
                    "StrictModes no",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AuthenticationMethods publickey",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    f"AllowUsers {self.user}",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    "PermitTTY no",
                    "Subsystem sftp internal-sftp",
                    "ForceCommand internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        return path

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.config()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.sshd), "-D", "-e", "-f", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd ended at its start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    if probe.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # Its own session: the listener and any per-connection child end with it.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def new_host_key(self) -> None:
        """The server gets another host key (as after a reinstall, or an impostor)."""
        for path in (self.host_key_file, self.host_key_file.with_suffix(".pub")):
            path.unlink()
        self.host_key = keygen(self.host_key_file)

    def connection(self, folder: str = "", **extra) -> dict:
        """An Airflow connection (JSON form) for a location in ``remote/<folder>``."""
        path = self.remote / folder
        path.mkdir(parents=True, exist_ok=True)
        fields = {
            "path": str(path),
            "host_key": self.host_key,
            "private_key": self.client_key.read_text(),
            "conn_timeout": 5,
            "transfer_timeout": 10,
        }
        fields.update(extra)
        fields = {name: value for name, value in fields.items() if value is not None}
        return {
            "conn_type": "sftp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": self.user,
            "extra": fields,
        }

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
