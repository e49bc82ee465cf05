"""Throwaway OpenPGP keys for the tests, made by GnuPG in a temporary keyring (ed25519 for
signing, cv25519 for encryption: quick to generate). No key is kept in the repository."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyPair:
    public: str
    private: str
    passphrase: str


def generate(name: str = "ImaginePay Test", passphrase: str = "correct horse") -> KeyPair:
    with tempfile.TemporaryDirectory(prefix="pgp-test-") as home:

        def gpg(*args: str) -> str:
            return subprocess.run(
                [
                    "gpg",
                    "--homedir",
                    home,
                    "--batch",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    passphrase,
                    *args,
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout

        uid = f"{name} <test@example.invalid>"
        gpg("--quick-gen-key", uid, "future-default", "default", "never")
        public = gpg("--armor", "--export", uid)
        private = gpg("--armor", "--export-secret-keys", uid)
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False)
    return KeyPair(public, private, passphrase)
