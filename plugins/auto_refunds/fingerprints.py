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
    # Whether every line ends alike, all in LF or all in CRLF, and no line holds a CR or a NUL
    # byte of its own: DuckDB reads such a file's lines as they are (pipe_feed.readable).
    plain_lines: bool = True

    @property
    def read_as_it_is(self) -> bool:
        """Whether DuckDB reads the file itself, rather than its lines fed through a pipe."""
        return self.valid_utf8 and self.plain_lines


def fingerprint(path: Path) -> Fingerprint:
    """The file's SHA-256, whether all of it is UTF-8, whether it holds a quote and whether its
    lines are plain, in one read. ASCII blocks (nearly all) are not decoded; a block without a
    CR costs one count of its LFs."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    valid = True
    quoted = False
    nul = False
    # Line ends: every CR, every LF, and every CR that an LF follows (across blocks too), counted
    # in the blocks that hold a CR; a block without one only needs to show whether it holds an
    # LF (bare, then), which memchr finds at once.
    crs = lfs = crlfs = 0
    bare_lf = False
    last = b""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            quoted = quoted or b'"' in block
            nul = nul or b"\0" in block
            boundary = last == b"\r" and block.startswith(b"\n")
            if b"\r" in block:
                crs += block.count(b"\r")
                crlfs += block.count(b"\r\n") + boundary
                lfs += block.count(b"\n")
            else:
                crlfs += boundary
                lfs += boundary
                bare_lf = bare_lf or block.find(b"\n", boundary) != -1
            last = block[-1:]
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
    # All LF, or all CRLF: a last line without its line end is either.
    plain = not nul and (crs == 0 or (not bare_lf and crs == crlfs == lfs))
    return Fingerprint(digest.hexdigest(), valid, quoted, plain)


def sha256_of(path: Path) -> str:
    """The file's SHA-256 alone (what the outbox and the ledger compare): none of the UTF-8 and
    line checks an input file's ``fingerprint`` makes in the same read."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
