"""Field masking of landed lines (CONTRACT 7): the card numbers of every field of a line but its
identifiers are masked before the line is stored.

The identifiers stay as they are, so that staging types the real ids. Masking is done in SQL,
which calls into Python (``mask_fields``, registered by ``masking``) only for the lines that may
hold a card number. Part of ``file_lines.LINES_VERSION``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb

from auto_refunds import card_numbers
from auto_refunds.csv_records import quote_field, split_fields
from auto_refunds.layout import is_identifier
from auto_refunds.pipe_feed import is_marked

# Nearly every line holds no 13 digits in a row and costs only card_numbers.MAYBE_A_CARD_NUMBER.
_MASK_FUNCTION = "mask_card_numbers_in_fields"


def masked_line_sql(raw_line: str, header: Sequence[str]) -> str:
    """SQL of the line ``raw_line`` (a SQL expression) of a file with ``header``, with the card
    numbers of every field but the identifiers masked. Needs ``masking`` on the connection."""
    kept = [at for at, field in enumerate(header, 1) if is_identifier(field)]
    return (
        f"case when regexp_matches({raw_line}, '{card_numbers.MAYBE_A_CARD_NUMBER}') "
        f"then {_MASK_FUNCTION}({raw_line}, {len(header)}, {kept}) "
        f"else {raw_line} end"
    )


def mask_fields(line: str | None, width: int, kept: list[int]) -> str | None:
    """``line`` with the card numbers of its fields masked, but those at the 1-based positions
    ``kept``, which stay as they are so that staging types the real ids. A line that does not
    split into ``width`` fields, or that the pipe feed marked, is quarantined whatever it holds:
    it is masked whole. A line rewritten loses its fields' surrounding blanks and the quotes they
    did not need, which staging ignores anyway."""
    if line is None:
        return None
    if is_marked(line):
        # Its first field is its id, kept so that it still counts when repeated (CONTRACT 2);
        # the rest was masked before its bytes were escaped (pipe_feed), and is masked again.
        first, comma, rest = line.partition(",")
        return first + comma + card_numbers.mask(rest) if comma else card_numbers.mask(line)
    fields = split_fields(line)
    if fields is None or len(fields) != width:
        return card_numbers.mask(line)
    masked = [
        value if at in kept else card_numbers.mask(value) for at, value in enumerate(fields, 1)
    ]
    return line if masked == fields else ",".join(quote_field(value) for value in masked)


@contextmanager
def masking(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """``masked_line_sql`` can run on ``con`` meanwhile. Only the lines that may hold a card
    number call into Python."""
    con.create_function(
        _MASK_FUNCTION,
        mask_fields,
        ["VARCHAR", "INTEGER", "INTEGER[]"],
        "VARCHAR",
        side_effects=False,
    )
    yield
    # Not after a failure: the statement aborted the caller's transaction (see insertion_order).
    con.remove_function(_MASK_FUNCTION)
