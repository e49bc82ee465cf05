"""A file's fingerprint: its SHA-256, and what else the one read that hashes it tells.

Neutral ground: landing registers input files by it, the outbox compares published files by it,
and the ledger checks a sent file against its manifest by it. It reads bytes and knows nothing of
what a file holds.
"""

from __future__ import annotations

import codecs
import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path

# The longest line DuckDB is given (file_lines): a file with a longer one is read through the pipe
# feed, which cuts it and marks it, so that staging quarantines that line alone.
MAX_LINE_BYTES = 16 << 20


class Reading(enum.Enum):
    """How DuckDB reads a file's lines (pipe_feed.readable, file_lines.physical_lines_query)."""

    # The file itself, with DuckDB's parallel reader: all UTF-8, every line ending alike.
    AS_IT_IS = "as it is"
    # The file itself, with DuckDB's reader told that a line ends in LF or in CRLF, which it can
    # only read in one thread: all UTF-8, lines ending in both, no CR or NUL byte of a line's own.
    # Files written partly by Windows tools look like this, and the pipe feed costs several
    # times this reading.
    LINE_ENDS_MIXED = "line ends mixed"
    # Through the pipe feed, which marks the lines that cannot be typed: not all UTF-8, or some
    # line holds a bare CR or a NUL byte, or is longer than MAX_LINE_BYTES.
    FED = "fed"


def reading_of(valid_utf8: bool, plain_lines: bool | None, mixed_line_ends: bool | None) -> Reading:
    """How a file is read, from what its fingerprint (or its registration) tells; what is not
    known is read the careful way."""
    if not valid_utf8:
        return Reading.FED
    if plain_lines:
        return Reading.AS_IT_IS
    if mixed_line_ends:
        return Reading.LINE_ENDS_MIXED
    return Reading.FED


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    valid_utf8: bool
    # Whether the file holds a double quote anywhere: only then can a quoted field hold a line
    # break. Not kept with the file's registration: unknown is taken as quoted.
    quoted: bool = True
    # Whether every line ends alike, all in LF or all in CRLF, no line holds a CR or a NUL byte
    # of its own, and none is longer than MAX_LINE_BYTES: DuckDB reads such a file's lines as
    # they are (pipe_feed.readable).
    plain_lines: bool = True
    # Whether its lines end in both LF and CRLF, and otherwise are as plain_lines says.
    mixed_line_ends: bool = False

    @property
    def reading(self) -> Reading:
        return reading_of(self.valid_utf8, self.plain_lines, self.mixed_line_ends)


def fingerprint(path: Path) -> Fingerprint:
    """The file's SHA-256, whether all of it is UTF-8, whether it holds a quote and how its lines
    end, in one read. ASCII blocks (nearly all) are not decoded; a block without a
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
    # A line longer than a block spans blocks: the bytes since the last LF, and the longest such.
    since_lf = longest = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            first_lf = block.find(b"\n")
            if first_lf == -1:
                since_lf += len(block)
            else:
                longest = max(longest, since_lf + first_lf)
                since_lf = len(block) - block.rfind(b"\n") - 1
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
    readable = not nul and max(longest, since_lf) <= MAX_LINE_BYTES
    # All LF, or all CRLF: a last line without its line end is either.
    plain = readable and (crs == 0 or (not bare_lf and crs == crlfs == lfs))
    # Every CR followed by an LF: each line ends in one or the other.
    mixed = readable and not plain and crs == crlfs
    return Fingerprint(digest.hexdigest(), valid, quoted, plain, mixed)


def sha256_of(path: Path) -> str:
    """The file's SHA-256 alone (what the outbox and the ledger compare): none of the UTF-8 and
    line checks an input file's ``fingerprint`` makes in the same read."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
