"""The pipe feed: how DuckDB reads a file of which some lines are not UTF-8.

DuckDB refuses a whole file for one line that is not UTF-8. Such a file is streamed to DuckDB
through a named pipe instead, line for line, each such line marked (``NOT_UTF8_MARK``) and its
undecodable bytes escaped, so that staging quarantines it (CONTRACT 2) and the other lines go on.
A file that is all UTF-8 is read as it is. Part of ``file_lines.LINES_VERSION``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auto_refunds import card_numbers
from auto_refunds.file_lines import InputFileError

# A line that is not valid UTF-8 reaches staging as this mark and the line, its undecodable bytes
# escaped (\xff): staging quarantines it (CONTRACT 2) and the other lines go on.
NOT_UTF8_MARK = "\x01"


def is_not_utf8(line: str) -> bool:
    """Whether ``line`` was read from a line that is not UTF-8 (marked by the feed)."""
    return line.startswith(NOT_UTF8_MARK)


@contextmanager
def readable(path: Path, valid_utf8: bool) -> Iterator[Path]:
    """The file DuckDB reads for ``path``: the file itself; or, when some of its lines are not
    UTF-8 (DuckDB refuses the whole file then), a named pipe fed line for line, in which each
    such line is ``NOT_UTF8_MARK`` and its text with the undecodable bytes escaped.

    A pipe rather than a copy: the file may hold card numbers (a card_token that staging
    quarantines), and no file the product writes may (CONTRACT 7). DuckDB reads the pipe with
    the same reader as any file, so its lines split exactly as theirs do. Read it once, to its
    end, inside the context.
    """
    if valid_utf8:
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
                for line in source:
                    try:
                        line.decode("utf-8")
                    except UnicodeDecodeError:
                        text = line.rstrip(b"\r\n")
                        line = (NOT_UTF8_MARK + _escaped(text)).encode() + line[len(text) :]
                    target.write(line)
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


def _escaped(text: bytes) -> str:
    """``text`` decoded, each undecodable byte escaped (``\\xff``) and the card numbers of the
    decoded runs between them masked (CONTRACT 7), but for its first field, its id, when that
    decodes: kept as it is, so that a line repeating another's id still counts (CONTRACT 2;
    staging masks the raw line it quarantines, ids included). A byte that does not decode is no
    letter or digit, so it ends a card number; once escaped, its letters (``xff``) would join the
    digits that follow into one word that hides the number."""
    first, comma, rest = text.partition(b",")
    if comma:
        try:
            return first.decode("utf-8") + "," + _escaped_and_masked(rest)
        except UnicodeDecodeError:
            pass
    return _escaped_and_masked(text)


def _escaped_and_masked(text: bytes) -> str:
    pieces = []
    while True:
        try:
            pieces.append(card_numbers.mask(text.decode("utf-8")))
            return "".join(pieces)
        except UnicodeDecodeError as exc:
            pieces.append(card_numbers.mask(text[: exc.start].decode("utf-8")))
            pieces.append(text[exc.start : exc.end].decode("utf-8", "backslashreplace"))
            text = text[exc.end :]
