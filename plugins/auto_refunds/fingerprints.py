"""A file's fingerprint: its SHA-256, and what else the one read that hashes it tells.

Neutral ground: landing registers input files by it, the outbox compares published files by it,
and the ledger checks a sent file against its manifest by it. It reads bytes and knows nothing of
what a file holds.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    valid_utf8: bool
    # Whether the file holds a double quote anywhere: only then can a quoted field hold a line
    # break. Not kept with the file's registration: unknown is taken as quoted.
    quoted: bool = True


def fingerprint(path: Path) -> Fingerprint:
    """The file's SHA-256, whether all of it is UTF-8 and whether it holds a quote, in one read.
    ASCII blocks (nearly all) are not decoded."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid = True
    quoted = False
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            quoted = quoted or b'"' in block
            if valid and not (block.isascii() and not decoder.getstate()[0]):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    valid = False
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    return Fingerprint(digest.hexdigest(), valid, quoted)


def sha256_of(path: Path) -> str:
    return fingerprint(path).sha256
