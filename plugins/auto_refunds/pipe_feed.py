"""The pipe feed: how DuckDB reads a file whose lines it cannot read as they are.

DuckDB refuses a whole file for one line that is not UTF-8, for a bare CR and for a line longer
than it is given; a NUL byte it reads into the field. Such a file is streamed to DuckDB through a
named pipe instead: each line's CRLF becomes LF, and each line that is not UTF-8, holds a NUL byte
or a CR that does not end it, or is too long (cut to its start), is marked (``MARKS``) with its bad
bytes escaped, so that staging quarantines it (CONTRACT 2) and the other lines go on. A file that
is all UTF-8, whose lines only end in LF or CRLF (alike or mixed) and none too long
(``fingerprints.Reading``), is read as it is. Part of ``file_lines.LINES_VERSION``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auto_refunds import card_numbers
from auto_refunds.file_lines import InputFileError
from auto_refunds.fingerprints import MAX_LINE_BYTES, Reading

# A line that cannot be typed reaches staging as one of these marks and the line, its bad bytes
# escaped (\xff, \r, \x00): staging quarantines it with the reason its mark names (the macro
# line_shape_error) and the other lines go on. One mark a line, the first that applies.
NOT_UTF8_MARK = "\x01"
BARE_CR_MARK = "\x02"
NUL_MARK = "\x03"
# A line longer than DuckDB is given: only its first LONG_LINE_KEPT bytes reach staging.
LONG_LINE_MARK = "\x04"
MARKS = (NOT_UTF8_MARK, BARE_CR_MARK, NUL_MARK, LONG_LINE_MARK)
LONG_LINE_KEPT = 1 << 10


def is_marked(line: str) -> bool:
    """Whether ``line`` was read from a line that cannot be typed (marked by the feed)."""
    return line[:1] in MARKS


@contextmanager
def readable(path: Path, reading: Reading) -> Iterator[Path]:
    """The file DuckDB reads for ``path``: the file itself unless ``reading`` is
    ``Reading.FED``; then a named pipe fed its lines, each ending in LF, and each that cannot be
    typed marked.

    A pipe rather than a copy: the file may hold card numbers (a card_token that staging
    quarantines), and no file the product writes may (CONTRACT 7). DuckDB reads the pipe with
    the same reader as any file, so its lines split exactly as theirs do. Read it once, to its
    end, inside the context.
    """
    if reading is not Reading.FED:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="auto-refunds-not-utf8-"))
    try:
        pipe = folder / path.name
        os.mkfifo(pipe, 0o600)
        feed = _PipeFeed(path, pipe)
        try:
            yield pipe
            feed.finished()
        finally:
            feed.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _PipeFeed:
    """Writes ``path``'s lines, escaped where they are not UTF-8, into the named pipe ``pipe``
    from a thread, while DuckDB reads the pipe."""

    def __init__(self, path: Path, pipe: Path) -> None:
        self.path, self.pipe = path, pipe
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._feed, name="not-utf8-feed", daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        try:
            # The pipe first, always: DuckDB waits in its open() until a writer opens it. This
            # open waits for DuckDB's, or for stop()'s.
            target = open(self.pipe, "wb")  # noqa: SIM115 (closed by the with below)
        except BaseException as exc:
            self.error = exc
            return
        try:
            with target, open(self.path, "rb") as source:
                rest = b""
                # Within a line too long to hold: its start is written, the rest of it skipped.
                skipping = False
                for block in iter(lambda: source.read(_BLOCK_BYTES), b""):
                    if skipping:
                        skipped, line_end, block = block.partition(b"\n")
                        skipping = not line_end
                    lines, line_end, rest = (rest + block).rpartition(b"\n")
                    if line_end:
                        target.write(_fed(lines + line_end))
                    if len(rest) > MAX_LINE_BYTES:
                        target.write(_fed_line(rest) + b"\n")
                        rest, skipping = b"", True
                if rest:
                    target.write(_fed(rest))
        except BaseException as exc:
            self.error = exc

    def finished(self) -> None:
        """After DuckDB's read succeeded: it read every line only if the feed wrote them all.
        A feed cut short (the file unreadable half way) would have looked like a shorter file."""
        self.thread.join(_FEED_JOIN_SECONDS)
        if self.thread.is_alive() or self.error is not None:
            reason = self.error or "DuckDB stopped reading before its end"
            raise InputFileError(f"{self.path}: cannot be read: {reason}")

    def stop(self) -> None:
        """End the feed. One whose reader failed, or never opened the pipe, waits in its open()
        or a write(): opening the read end ends the open(), reading what is written lets the
        write() return, and once no reader holds the pipe the next write fails."""
        while self.thread.is_alive():
            drain = os.open(self.pipe, os.O_RDONLY | os.O_NONBLOCK)
            try:
                while True:
                    try:
                        if not os.read(drain, 1 << 16):
                            break
                    except BlockingIOError:
                        break
            finally:
                os.close(drain)
            self.thread.join(0.05)


# The feed has written its last line once DuckDB has read it; it only has to close the pipe.
_FEED_JOIN_SECONDS = 5.0


_BLOCK_BYTES = 1 << 20


def _fed(lines: bytes) -> bytes:
    """Whole lines (the last may lack its LF only at the end of the file) as they are fed: each
    CRLF made LF, and each line that cannot be typed marked. Lines are looked at one by one only
    in a block that holds such a line: nearly every block is written whole."""
    # Lines end within MAX_LINE_BYTES and a block of the rest: only a chunk that long can hold
    # one too long.
    short = len(lines) <= MAX_LINE_BYTES or all(
        len(line) <= MAX_LINE_BYTES for line in lines.split(b"\n")
    )
    if short and b"\0" not in lines and lines.count(b"\r") == lines.count(b"\r\n"):
        try:
            lines.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return lines.replace(b"\r\n", b"\n")
    *ended, last = lines.split(b"\n")
    return b"".join([*(_fed_line(line) + b"\n" for line in ended), _fed_line(last)])


def _fed_line(line: bytes) -> bytes:
    """One line without its LF: its CR that ends it (CRLF, or a CR that ends the file) left out,
    and the line marked, its bad bytes escaped, when it is not UTF-8 or holds a NUL byte or
    another CR."""
    text = line[:-1] if line.endswith(b"\r") else line
    if len(text) > MAX_LINE_BYTES:
        return (LONG_LINE_MARK + _escaped(text[:LONG_LINE_KEPT])).encode()
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        mark = NOT_UTF8_MARK
    else:
        if b"\0" in text:
            mark = NUL_MARK
        elif b"\r" in text:
            mark = BARE_CR_MARK
        else:
            return text
    return (mark + _escaped(text)).encode()


# The bytes of a line escaped by the feed besides those that are not UTF-8: no CR or NUL byte
# reaches DuckDB, which would end the line there or type it into a field.
_ESCAPED_BYTES = re.compile("([\r\0])")


def _escaped(text: bytes) -> str:
    """``text`` decoded, each undecodable byte, CR and NUL escaped (``\\xff``, ``\\r``,
    ``\\x00``) and the card numbers of the decoded runs between them masked (CONTRACT 7), but
    for its first field, its id, when that decodes and holds no CR or NUL: kept as it is, so that
    a line repeating another's id still counts (CONTRACT 2; staging masks the raw line it
    quarantines, ids included). A byte escaped is no letter or digit, so it ends a card number;
    once escaped, its letters (``xff``) would join the digits that follow into one word that
    hides the number."""
    first, comma, rest = text.partition(b",")
    if comma and b"\r" not in first and b"\0" not in first:
        try:
            return first.decode("utf-8") + "," + _escaped_and_masked(rest)
        except UnicodeDecodeError:
            pass
    return _escaped_and_masked(text)


def _escaped_and_masked(text: bytes) -> str:
    pieces = []
    while True:
        try:
            pieces.append(_masked_and_escaped_controls(text.decode("utf-8")))
            return "".join(pieces)
        except UnicodeDecodeError as exc:
            pieces.append(_masked_and_escaped_controls(text[: exc.start].decode("utf-8")))
            pieces.append(text[exc.start : exc.end].decode("utf-8", "backslashreplace"))
            text = text[exc.end :]


def _masked_and_escaped_controls(text: str) -> str:
    """``text``'s card numbers masked between its CR and NUL bytes, which are escaped."""
    # The pieces between the bytes escaped are at even places, those bytes at odd ones.
    return "".join(
        piece.encode("unicode_escape").decode() if at % 2 else card_numbers.mask(piece)
        for at, piece in enumerate(_ESCAPED_BYTES.split(text))
    )
