"""The version of the typing of accumulating extracts, kept with every extract typed.

An extract typed by another version is typed again, every one of them: the whole history of
extracts. So the version is made of constants bumped on purpose, one per thing the typed rows
depend on, never of the code's text (editing a comment must not type every extract again):

- ``TRANSACTIONS_TYPING_VERSION`` (here): the per-file model of the transactions extracts, its
  SQL (include/sql/staging/stg_imaginepay__transactions.sql, ``.repeated_keys.sql``,
  ``.supersede.sql``), the parsing macros it calls (include/sql/warehouse/macros.sql), its key,
  its uncompressed columns, the extracts' header and landed line, and ``extract_typing``'s code
  that types a file;
- ``file_lines.LINES_VERSION``: how a file becomes numbered, joined, masked records;
- ``card_numbers.CARD_NUMBERS_VERSION``: what a card number is and how it is masked.

tests/test_typing_version.py fingerprints what each covers and fails, naming the constant to
bump, when one changed without its bump.
"""

from __future__ import annotations

from auto_refunds import card_numbers, file_lines

TRANSACTIONS_TYPING_VERSION = 3

# Per landing kind typed file by file (models.Model.per_file_kind).
_MODEL_VERSIONS = {"transactions": "TRANSACTIONS_TYPING_VERSION"}


def typing_version(kind: str) -> str:
    """The version the extracts of ``kind`` are typed by, as kept in staging.typed_files."""
    if kind not in _MODEL_VERSIONS:
        raise ValueError(f"no typing version for {kind!r}: add one to {__name__}")
    model = globals()[_MODEL_VERSIONS[kind]]
    return (
        f"{kind} typing {model}, lines {file_lines.LINES_VERSION}, "
        f"card numbers {card_numbers.CARD_NUMBERS_VERSION}"
    )
