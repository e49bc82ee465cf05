"""The card-number detector and masker (CONTRACT 7), for messages and logs.

The models and the scanner call it from SQL, through the macros ``has_card_number`` and
``mask_card_numbers`` of ``include/sql/warehouse/card_numbers.sql``, which ``register`` makes
callable on a DuckDB connection; tests/test_card_numbers.py checks that SQL and Python give the
same answer on the same cases and on random strings.

Definition, precisely:

- A *word* is a maximal run of ASCII letters and digits (``[0-9A-Za-z]+``). Any other
  character (punctuation, ``_``, blanks, a non-ASCII letter) ends a word.
- A *chain* is words joined by single separators, a space or a dash (``[ -]``). Two separators
  in a row, or any other character, end a chain.
- A *card number* is one or more consecutive words of a chain, every one of them all digits,
  holding 13 to 19 digits together, whose digits pass the Luhn check. Because a word is
  maximal, the number stands alone: it is never part of a longer run of letters and digits
  (``a4111111111111111f`` and 20 or more digits in a row hold none). A number may sit next to
  other digit groups: ``4111 1111 1111 1111 12 27`` holds the card number of its first four
  groups, so a card number followed by an expiry date or a reference is still found.

Masking: the words of overlapping or touching card numbers form one masked region, written
as one ``*`` per digit but the last four, then the last four digits; the separators inside
the region are dropped, so ``4111 1111 1111 1111`` and ``4111-1111-1111-1111`` both become
``************1111``. When the region is followed in its chain by a separator and more digits,
its last four digits are masked too (``****************-1234``), so that the digits kept can
never join what follows into a new card number: ``contains(mask(text))`` is always False.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

_CHAIN = re.compile(r"[0-9A-Za-z]+(?:[ -][0-9A-Za-z]+)*")
_WORD = re.compile(r"[0-9A-Za-z]+")
# Cheap test: a text without 13 digits in a row (single separators allowed) holds no card.
# RE2 reads it too: SQL uses it to call into Python only for the texts that may hold one.
MAYBE_A_CARD_NUMBER = r"[0-9](?:[ -]?[0-9]){12}"
_MAYBE = re.compile(MAYBE_A_CARD_NUMBER)
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
MIN_DIGITS, MAX_DIGITS, KEPT = 13, 19, 4


class CardNumber(NamedTuple):
    start: int
    """Offset of its first digit in the text."""
    end: int
    """Offset just past its last digit."""
    digits: str
    """The number without separators."""


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        total += _DOUBLED[value] if position % 2 else value
    return total % 10 == 0


def _cards_in_chain(words: list[re.Match]) -> Iterator[tuple[int, int]]:
    """(first, last) word indexes of every card number among a chain's words."""
    for first in range(len(words)):
        digits = ""
        for last in range(first, min(len(words), first + MAX_DIGITS)):
            word = words[last][0]
            if not word.isdigit():
                break
            digits += word
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn_ok(digits):
                yield first, last


def _chains(text: str) -> Iterator[list[re.Match]]:
    if not _MAYBE.search(text):
        return
    for chain in _CHAIN.finditer(text):
        if _MAYBE.search(chain[0]):
            yield list(_WORD.finditer(text, chain.start(), chain.end()))


def find(text: str) -> list[CardNumber]:
    """Every card number in ``text``, in order of its start (they may overlap)."""
    found = []
    for words in _chains(text):
        for first, last in _cards_in_chain(words):
            digits = "".join(word[0] for word in words[first : last + 1])
            found.append(CardNumber(words[first].start(), words[last].end(), digits))
    return found


def contains(text: str) -> bool:
    return any(next(_cards_in_chain(words), None) for words in _chains(text))


def mask(text: str) -> str:
    """``text`` with every card number masked to its last four digits (see the module doc)."""
    if text is None:
        return None
    pieces = []
    done = 0
    for words in _chains(text):
        covered = [False] * len(words)
        for first, last in _cards_in_chain(words):
            covered[first : last + 1] = [True] * (last + 1 - first)
        index = 0
        while index < len(words):
            if not covered[index]:
                index += 1
                continue
            end = index
            while end + 1 < len(words) and covered[end + 1]:
                end += 1
            digits = "".join(word[0] for word in words[index : end + 1])
            followed_by_digits = end + 1 < len(words) and words[end + 1][0].isdigit()
            kept = 0 if followed_by_digits else KEPT
            pieces += [text[done : words[index].start()], "*" * (len(digits) - kept)]
            pieces.append(digits[len(digits) - kept :])
            done = words[end].end()
            index = end + 1
    pieces.append(text[done:])
    return "".join(pieces)


# The functions include/sql/warehouse/card_numbers.sql calls, and what they return.
SQL_FUNCTIONS = {
    "card_number_in_text": (contains, "BOOLEAN"),
    "card_numbers_masked": (mask, "VARCHAR"),
}


def register(con: Any, sql_dir: Path) -> None:
    """Make ``has_card_number`` and ``mask_card_numbers`` callable on the DuckDB connection
    ``con``: this module's functions, then the macros of ``sql_dir`` that guard them."""
    for name, (function, returns) in SQL_FUNCTIONS.items():
        con.create_function(name, function, ["VARCHAR"], returns, side_effects=False)
    con.execute((sql_dir / "warehouse" / "card_numbers.sql").read_text())


def mask_value(value: Any, float_decimals: int | None = None) -> Any:
    """``value`` with every string in it masked: a string, or lists, tuples and dicts of them.

    With ``float_decimals``, floats are rounded to that many decimals too: a ratio printed in
    full (``0.17316017316017315``) can hold a run of digits that reads as a card number.
    """
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, float) and float_decimals is not None:
        return round(value, float_decimals)
    if isinstance(value, dict):
        return {key: mask_value(item, float_decimals) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(item, float_decimals) for item in value)
    return value


class CardNumberFilter(logging.Filter):
    """Masks the card numbers of a record's message, and of the exception text it will print.

    The record's message is formatted once (``msg % args``), masked, and kept with no args; a
    record with an exception gets its traceback text masked into ``exc_text``, which the stdlib
    ``Formatter`` prints instead of formatting the exception again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        masked = mask(message)
        if masked != record.msg or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def mask_event_dict(logger: Any, method_name: str, event_dict: dict) -> dict:
    """A structlog processor: masks every string in the event, its exception included.

    An exception already rendered (Airflow's JSON logs turn it into a list of dicts before the
    renderer) is masked as data; one still held as ``exc_info`` is rendered here to masked text,
    which structlog's console renderer prints as it is.
    """
    exc_info = event_dict.pop("exc_info", None)
    if exc_info and "exception" not in event_dict:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info[0] is not None:
            event_dict["exception"] = "".join(traceback.format_exception(*exc_info))
    return mask_value(event_dict)


class MaskedStream:
    """A text stream (stdout, stderr) that masks the card numbers of each line it passes on.

    Text is held until its line ends (or the stream is flushed), so that a number printed in
    pieces is still seen whole. Everything but writing goes to the wrapped stream.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        complete, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self._stream.write(mask(complete + newline))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def mask_standard_streams() -> None:
    """Masks what this process prints to stdout and stderr from Python. A C library writing to
    file descriptor 1 or 2 itself is not covered (DuckDB reports errors as exceptions)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, MaskedStream):
            setattr(sys, name, MaskedStream(stream))


_FILTER = CardNumberFilter()


def _insert_before_renderer(processors: list | tuple) -> list:
    processors = list(processors)
    if mask_event_dict not in processors:
        processors.insert(max(len(processors) - 1, 0), mask_event_dict)
    return processors


def install_log_filter() -> None:
    """Masks card numbers in everything this process logs. Idempotent; call it when a task starts.

    Airflow 3.3 runs a task in a child process that sends its logs as JSON to the supervisor
    (``airflow.sdk.log.configure_logging(json_output=True, sending_to_supervisor=True)``):

    - structlog events (the task runner's own, e.g. ``Task failed with exception`` with the
      exception rendered to a dict, which is where a DuckDB error quoting a line ends up) go
      through structlog's configured processors: ``mask_event_dict`` is inserted before the
      final renderer, in place, so loggers already created see it too;
    - stdlib records (ours, and libraries') reach the root logger's handler, whose
      ``structlog.stdlib.ProcessorFormatter`` renders them and their exception: the same
      processor is inserted before its renderer, and the handler also gets ``CardNumberFilter``
      (which alone covers plain ``logging.Formatter`` handlers, e.g. the CLI's).

    - what Python prints to stdout and stderr (``print``, warnings), which the supervisor logs
      as it reads it, goes through ``MaskedStream``.

    Not covered: a C library writing to file descriptor 1 or 2 itself; and a reconfiguration of
    logging after this call (call it again).
    """
    import structlog  # comes with Airflow; imported here to keep this module light

    mask_standard_streams()
    processors = structlog.get_config()["processors"]
    if mask_event_dict not in processors:
        processors.insert(max(len(processors) - 1, 0), mask_event_dict)
    for logger in (logging.getLogger(), logging.getLogger("airflow.task")):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
            if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter):
                handler.formatter.processors = _insert_before_renderer(handler.formatter.processors)
