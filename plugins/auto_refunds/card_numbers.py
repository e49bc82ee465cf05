"""The card-number detector and masker (CONTRACT 7): what a card number is, and how it is masked.

Everything that must not hold a card number masks with it: landed lines, messages, quality
results, and the logs and printed output (``log_masking``).

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

import re
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

# What a card number is and how it is masked, here and in include/sql/warehouse/card_numbers.sql.
# Part of every typed extract's version (typing_version): staging masks with it, and bumping it
# types every extract again. tests/test_typing_version.py fails until a change here bumps it.
CARD_NUMBERS_VERSION = 1


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
