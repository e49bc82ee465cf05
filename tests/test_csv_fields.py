"""The warehouse's reading of a line into fields (the macros csv_fields and line_id_text, each
taking the cheapest way that reads a line exactly) against csv_records.split_fields, Python's
reading of the same rules by one regular expression: the same fields, or the same broken
quoting, for any line."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from auto_refunds.csv_records import split_fields
from auto_refunds.pipe_feed import MARKS
from auto_refunds.warehouse import run_sql_file

MACROS = Path(__file__).resolve().parents[1] / "include" / "sql" / "warehouse" / "macros.sql"


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    run_sql_file(con, MACROS)
    return con


def as_id_reads_it(fields: list[str] | None) -> list[str] | None:
    """A line the pipe feed marked is quarantined whatever its fields hold: only its first field
    counts, as its id, which id_value reads without the mark and blanks."""
    if fields:
        fields[0] = fields[0].lstrip("".join(MARKS)).strip(" ")
    return fields


def expected_fields(line: str) -> list[str] | None:
    """split_fields, reading a line the pipe feed marked as the warehouse does: its quotes
    without the mark."""
    return as_id_reads_it(split_fields(line.lstrip("".join(MARKS)) if '"' in line else line))


def warehouse_fields(con, line: str) -> tuple[list[str] | None, str | None]:
    fields, line_id = con.execute(
        "select csv_fields($line), line_id_text($line)", {"line": line}
    ).fetchone()
    return as_id_reads_it(fields), line_id


def id_of(fields: list[str] | None) -> str | None:
    return (fields[0] or None) if fields else None


# Lines made of the characters that matter to the reading, in runs that look like fields:
# quoted or not, with quotes, commas, blanks and line breaks inside, a mark first or not.
FIELD = st.one_of(
    st.text(alphabet="a1 é", max_size=4),
    st.text(alphabet='a1 ,\n"é', max_size=5).map(lambda text: f'"{text}"'),
    st.text(alphabet='a1 ,"', max_size=5),
    st.sampled_from(['""', '" a "', '"a""b"', '"a,b"', '"a\nb"', " ", '"', 'a"b']),
)
LINE = st.builds(
    lambda mark, fields: mark + ",".join(fields),
    st.sampled_from(["", *MARKS]),
    st.lists(FIELD, min_size=1, max_size=6),
)


@hsettings(max_examples=600, deadline=None)
@given(line=LINE)
def test_the_warehouse_reads_a_line_as_split_fields_does(con, line):
    fields, line_id = warehouse_fields(con, line)
    expected = expected_fields(line)
    assert fields == expected
    assert line_id == id_of(expected)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"R1","CL1","",12.50,"2026-01-05"', ["R1", "CL1", "", "12.50", "2026-01-05"]),
        ('"R1","Front desk refund, R1",1.00', ["R1", "Front desk refund, R1", "1.00"]),
        ('"R1","say ""hi""",1.00', ["R1", 'say "hi"', "1.00"]),
        ('"R1","two\nlines",1.00', ["R1", "two\nlines", "1.00"]),
        ('" R1 ", "a" ,1', None),
        ('"R1" ,"a",1', None),
        ('"R1","a",1"', None),
        ('R1,"a,1', None),
        ('"R1,a,1', None),
    ],
)
def test_quoted_lines_read_every_way(con, line, expected):
    assert warehouse_fields(con, line) == (expected, id_of(expected))
    assert split_fields(line) == expected


# The typing finds an extract's repeated ids by grouping the lines' line_id_hash, then reads the
# lines whose hash repeats again for their ids: two lines of one id, however each is written,
# must have one hash.
def written(text: str, quoted: bool, blanks: str, mark: str) -> str:
    if quoted or any(char in text for char in ',"\n'):
        return mark + '"' + blanks + text.replace('"', '""') + blanks + '"'
    return mark + blanks + text + blanks


WAY = st.tuples(st.booleans(), st.sampled_from(["", " ", "  "]), st.sampled_from(["", *MARKS]))


@hsettings(max_examples=400, deadline=None)
@given(
    text=st.text(alphabet='a1 ,"\né', min_size=1, max_size=6).filter(lambda t: t.strip(" ")),
    ways=st.lists(WAY, min_size=2, max_size=2),
    rest=st.lists(FIELD, max_size=3),
)
def test_lines_of_one_id_however_written_share_a_hash(con, text, ways, rest):
    lines = [",".join([written(text, *way), *rest]) for way in ways]
    ids, hashes = zip(
        *(
            con.execute("select line_id_text($l), line_id_hash($l)", {"l": line}).fetchone()
            for line in lines
        ),
        strict=True,
    )
    if ids[0] is not None and ids[0] == ids[1]:
        assert hashes[0] == hashes[1]
