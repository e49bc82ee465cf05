"""Landing, typing and quarantine at the edges of CONTRACT 1, 2 and 7."""

from __future__ import annotations

import pytest
from scenario import D, Scenario, credit, sale
from test_landing_and_quarantine import quarantined

from auto_refunds import daily, models
from auto_refunds.file_lines import InputFileError
from auto_refunds.fingerprints import Reading
from auto_refunds.layout import PAYMENTS_HEADER
from auto_refunds.warehouse import connect

CARD = "4111111111111111"


def append(scenario: Scenario, kind: str, data: bytes) -> None:
    scenario._prepare(D)
    path = scenario.layout.credits(D) if kind == "credits" else scenario.layout.transactions(D)
    with open(path, "ab") as handle:
        handle.write(data)


def build(scenario: Scenario) -> None:
    daily.extract(D, scenario.settings)
    for model in models.DAILY_MODELS:
        daily.build_model(D, model.name, scenario.settings)


def tables_text(scenario: Scenario) -> str:
    """Every table's rows, with separators dropped, landing tables included."""
    tables = scenario.query("select schema_name, table_name from duckdb_tables()")
    text = repr([scenario.query(f"select * from {schema}.{table}") for schema, table in tables])
    return text.replace(" ", "").replace("-", "")


# CONTRACT 7: a card number standing alone after an undecodable byte is still a card number (the
# byte is not a letter or digit). Escaped as `\xe9`, the letters of the escape joined the digits
# into one word, and the number was kept in clear in quarantine_rows.raw_line (and in the landing
# copy of a credits line, whose non-id fields must be masked).
@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("credits", b"C2,CL1,A1,\xe9" + CARD.encode() + b",2026-01-04\n"),
        (
            "transactions",
            b"T2,CL1,A1,SALE,,,10.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,\xff"
            + CARD.encode()
            + b",1111\n",
        ),
    ],
)
def test_a_card_number_after_an_undecodable_byte_is_masked(scenario, kind, line):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    append(scenario, kind, line)
    build(scenario)
    ((line_number, raw_line, error),) = scenario.query(
        "select line_number, raw_line, error from marts.quarantine_rows"
    )
    assert (line_number, error) == (3, "line is not valid UTF-8")
    assert CARD not in raw_line and raw_line.count("************1111") == 1
    assert CARD not in tables_text(scenario)


# CONTRACT 2: every row of a credit_id / txn_id that appears more than once in one file is
# quarantined. A line that is also not valid UTF-8 (in another field) still carries that id:
# the other line of the id was refunded as if it were the only one.
@pytest.mark.parametrize(
    ("kind", "line", "expected"),
    [
        ("credits", b"C1,CL1,A1,\xff,2026-01-04\n", {"C1": None}),
        (
            "transactions",
            b"T1,CL1,A1,SALE,,,\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27,t,1111\n",
            {"C1": ("NO_MATCHING_TRANSACTION", None)},
        ),
    ],
)
def test_an_id_repeated_on_a_line_that_is_not_utf8_quarantines_both(scenario, kind, line, expected):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    append(scenario, kind, line)
    check_both_quarantined(scenario, kind, expected)


# The same, with the id quoted (the not-UTF-8 mark must not break its quotes), or a long number
# that passes Luhn (ids are kept as they are, CONTRACT 7: masking it would hide the repeat).
@pytest.mark.parametrize(
    ("kind", "first", "line", "expected"),
    [
        ("credits", "C1", b'"C1",CL1,A1,\xff,2026-01-04\n', {"C1": None}),
        ("credits", CARD, CARD.encode() + b",CL1,A1,\xff,2026-01-04\n", {"C1": None}),
        (
            "transactions",
            "T1",
            b'"T1",CL1,A1,SALE,,,\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27,t,1111\n',
            {"C1": ("NO_MATCHING_TRANSACTION", None)},
        ),
        (
            "transactions",
            CARD,
            CARD.encode() + b",CL1,A1,SALE,,,\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27,t,1111\n",
            {"C1": ("NO_MATCHING_TRANSACTION", None)},
        ),
    ],
)
def test_a_quoted_or_numeric_id_repeated_on_a_line_that_is_not_utf8_quarantines_both(
    scenario, kind, first, line, expected
):
    if kind == "credits":
        scenario.write_credits(D, credit(first))
        scenario.write_transactions(D, sale("T1"))
    else:
        scenario.write_credits(D, credit("C1"))
        scenario.write_transactions(D, sale(first))
    append(scenario, kind, line)
    check_both_quarantined(scenario, kind, expected)


def check_both_quarantined(scenario, kind, expected):
    outcomes = scenario.decide()
    source = f"{kind}_20260105.csv"
    found = quarantined(scenario)
    assert set(found) == {(source, 2), (source, 3)}
    assert found[(source, 3)] == "line is not valid UTF-8"
    assert "appears on 2 lines" in found[(source, 2)]
    assert outcomes == {k: v for k, v in expected.items() if v is not None}


# CONTRACT 7: every error message kept for a person is masked. A file sent without its header
# starts with a data line: the wrong-header error quoted that line, card number included.
def test_a_wrong_header_error_masks_card_numbers(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario._prepare(D)
    scenario.layout.transactions(D).write_text(
        f"T1,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,{CARD},1111\n"
    )
    assert "transactions_20260105.csv line 1: wrong header" in masked_extract_error(scenario)


# DuckDB's error for a line it cannot take quotes that line ("Original Line: ..."): the message
# names the file and must mask the card numbers in it (CONTRACT 7). The lines DuckDB is given
# never fail it any more (a line too long is cut by the pipe feed): a read with a smaller line
# limit stands in for any such error.
def test_an_unreadable_file_error_masks_card_numbers(tmp_path):
    import duckdb

    from auto_refunds.file_lines import physical_lines_query, read_file

    path = tmp_path / "credits_20260105.csv"
    path.write_text(f"credit_id\nC2,CL1,A1,{CARD},{'x' * 5000}\n")
    sql = physical_lines_query(path).replace(f"max_line_size = {16 << 20}", "max_line_size = 4096")
    with pytest.raises(InputFileError) as raised:
        read_file(duckdb.connect(), path, sql).fetchall()
    message = str(raised.value)
    assert "credits_20260105.csv: cannot be read" in message
    assert CARD not in message and "************1111" in message


def masked_extract_error(scenario: Scenario) -> str:
    """The message the extract fails with, its card number masked."""
    with pytest.raises(InputFileError) as raised:
        daily.extract(D, scenario.settings)
    message = str(raised.value)
    assert CARD not in message and "************1111" in message
    return message


# CONTRACT 2: an unreadable file or a wrong header fails the run with a message naming the file.
# A header line holding a bare carriage return (a file with old Mac line ends) made csv.reader
# raise its own csv.Error, which names no file and is retried as if time could heal it.
def test_a_header_with_a_bare_carriage_return_fails_naming_the_file(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    path = scenario.layout.credits(D)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r"))
    wrong_header = r"credits_20260105\.csv line 1: wrong header"
    with pytest.raises(InputFileError, match=wrong_header) as raised:
        daily.extract(D, scenario.settings)
    assert "C1" not in str(raised.value)  # the header line only, not the whole file
    assert scenario.query("select count(*) from landing.files") == [(0,)]


# CONTRACT 1: RFC 4180 quoting. A quoted field may hold a line break (RFC 4180 2.6); the record
# must be read as one row, not quarantined as two broken lines.
def test_a_line_break_inside_a_quoted_field_is_one_record(settings):
    from auto_refunds import reconciliation

    path = settings.layout.payments(D)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        (
            ",".join(PAYMENTS_HEADER)
            + "\nP1,CL1,A1,T1,,10.00,APPROVED,00,ok,2026-01-05\n"
            + 'P2,CL1,A1,T2,,10.00,APPROVED,00,"approved\nsee note",2026-01-05\n'
        ).encode()
    )
    reconciliation.load(D, settings)
    for model in models.RECONCILIATION_MODELS:
        reconciliation.build_model(D, model.name, settings)
    with connect(settings, D) as con:
        assert con.execute("select * from marts.reconciliation_quarantine_rows").fetchall() == []
        assert con.execute(
            "select payment_id from marts.payment_postings order by 1"
        ).fetchall() == [("P1",), ("P2",)]


# CONTRACT 2: a row that cannot be read is quarantined and never stops the other rows. A line
# longer than DuckDB's default max_line_size (2 MB) failed the whole file.
def test_an_overlong_line_is_quarantined_and_the_rest_goes_on(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    append(scenario, "credits", f"C2,CL1,A1,{'9' * 2_100_000},2026-01-04\n".encode())
    append(scenario, "credits", b"C3,CL1,A1,10.00,2026-01-04\n")
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C3": ("DUE", "T1")}
    assert list(quarantined(scenario)) == [("credits_20260105.csv", 3)]


# CONTRACT 2 typing must not depend on an unrelated field: csv_fields took its cheap split (no
# trim) on a line without a quote or an ASCII space, and DuckDB's trim() elsewhere, which also
# drops Unicode spaces (U+00A0...). The same amount "50.00<NBSP>" was then quarantined on one
# line and refunded on the next, where another field happened to hold a blank.
def test_a_field_reads_the_same_whatever_the_other_fields_hold(scenario):
    scenario.write_credits(
        D,
        "C1,CL1,A1,50.00\u00a0,2026-01-04",
        "C2,CL1,A1,50.00\u00a0, 2026-01-04",
        'C3,CL1,A1,50.00\u00a0,"2026-01-04"',
    )
    scenario.write_transactions(D, sale("T1"))
    outcomes = scenario.decide()
    found = quarantined(scenario)
    assert outcomes == {}
    assert sorted(line for _, line in found) == [2, 3, 4]
    assert len(set(found.values())) == 1


def test_a_quoted_line_break_joins_the_lines_of_one_record_and_numbers_the_rest(scenario):
    scenario.write_credits(D, credit("C1"), 'C2,CL1,"A\n1",50.00,2026-01-04', credit("C3", "20.00"))
    scenario.write_transactions(
        D,
        sale("T1"),
        ",".join(sale("T2", account="B1")).replace(",B1,", ',"B\n1",', 1),
        sale("T3", account="A3"),
        sale("T3", account="A3"),
    )
    # C2's account is "A<LF>1", which no sale has.
    assert scenario.decide() == {
        "C1": ("DUE", "T1"),
        "C2": ("NO_MATCHING_TRANSACTION", None),
        "C3": ("DUE", "T1"),
    }
    assert quarantined(scenario) == {
        ("transactions_20260105.csv", n): "txn_id T3 appears on 2 lines of this file"
        for n in (5, 6)
    }
    assert scenario.query(
        "select line_number, account_id from staging.stg_imaginepay__transactions "
        "where txn_id = 'T2'"
    ) == [(3, "B\n1")]


# The typing groups the lines by a hash of their id taken as they are numbered: a record joined
# from lines has the id of the whole record, which its first line alone did not read as.
def test_an_id_repeated_on_a_record_joined_from_lines_quarantines_both(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(
        D,
        sale("T1"),
        ",".join(sale("T2", account="B1")).replace(",B1,", ',"B\n1",', 1),
        sale("T2", account="A9"),
    )
    scenario.decide()
    assert quarantined(scenario) == {
        ("transactions_20260105.csv", n): "txn_id T2 appears on 2 lines of this file"
        for n in (3, 5)
    }


def test_two_broken_lines_do_not_swallow_the_record_between_them(scenario):
    scenario.write_credits(
        D,
        credit("C1"),
        'C9,"CL1,A1,10.00,2026-01-04',
        credit("C2", "20.00"),
        'C8,CL1",A1,10.00,2026-01-04',
    )
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("DUE", "T1")}
    assert quarantined(scenario) == {
        ("credits_20260105.csv", n): "line is not valid CSV (broken quoting)" for n in (3, 5)
    }


def test_a_masked_record_over_two_lines_is_landed_as_one_rfc_4180_record(settings):
    import csv

    from auto_refunds import reconciliation

    path = settings.layout.payments(D)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        (
            ",".join(PAYMENTS_HEADER)
            + f'\nP2,CL1,A1,T2,,10.00,DECLINED,05,"card {CARD}\ndeclined",2026-01-05\n'
        ).encode()
    )
    reconciliation.load(D, settings)
    with connect(settings, D) as con:
        ((line_number, raw_line),) = con.execute(
            "select line_number, raw_line from landing.imaginepay__payments"
        ).fetchall()
    (fields,) = list(csv.reader([raw_line]))
    assert line_number == 2
    assert fields[8] == "card ************1111\ndeclined"
    assert CARD not in raw_line


# CONTRACT 7: no file the product writes holds a card number. A file that is not all UTF-8 is fed
# to DuckDB through a named pipe, never copied: its valid lines may hold a card number in a
# card_token that staging quarantines.
NOT_UTF8_FILE = b"txn_id,amount\n" + b"T1,10.00\n" + b"T2,caf\xe9\n" + b"T3,4111111111111111\n"


def physical_lines(path) -> list[str]:
    import duckdb

    from auto_refunds.file_lines import physical_lines_query

    return [row[0] for row in duckdb.connect().execute(physical_lines_query(path)).fetchall()]


def test_a_file_that_is_not_utf8_is_read_through_a_pipe_never_copied(tmp_path):
    import stat

    from auto_refunds.pipe_feed import NOT_UTF8_MARK, readable

    source = tmp_path / "transactions_20260105.csv"
    source.write_bytes(NOT_UTF8_FILE)
    with readable(source, Reading.FED) as lines:
        assert stat.S_ISFIFO(lines.stat().st_mode)
        assert physical_lines(lines) == [
            "txn_id,amount",
            "T1,10.00",
            NOT_UTF8_MARK + "T2,caf\\xe9",
            "T3,4111111111111111",
        ]
    assert not lines.parent.exists()


def test_a_read_that_fails_or_never_starts_does_not_hang_the_feed(tmp_path):
    from auto_refunds.pipe_feed import readable

    source = tmp_path / "transactions_20260105.csv"
    # Much more than a pipe's buffer, so the feed is blocked in a write when the reader stops.
    source.write_bytes(NOT_UTF8_FILE + b"T4,1.00\n" * 200_000)
    with pytest.raises(RuntimeError, match="before reading"), readable(source, Reading.FED):
        raise RuntimeError("failed before reading")
    assert feeds_alive() == []
    with (
        pytest.raises(RuntimeError, match="half way"),
        readable(source, Reading.FED) as lines,
        open(lines, "rb") as pipe,
    ):
        pipe.read(1000)
        raise RuntimeError("failed half way")
    assert feeds_alive() == []


def feeds_alive() -> list:
    import threading

    return [thread for thread in threading.enumerate() if thread.name == "not-utf8-feed"]


def test_a_feed_cut_short_fails_the_read_instead_of_a_shorter_file(tmp_path, monkeypatch):
    from auto_refunds import pipe_feed

    def unreadable(text: bytes) -> str:
        raise OSError("Input/output error")

    monkeypatch.setattr(pipe_feed, "_escaped", unreadable)
    source = tmp_path / "transactions_20260105.csv"
    source.write_bytes(NOT_UTF8_FILE)
    with (
        pytest.raises(InputFileError, match="transactions_20260105.csv: cannot be read: Input"),
        pipe_feed.readable(source, Reading.FED) as lines,
    ):
        # DuckDB reads what the feed wrote before it failed, and then the end of the pipe.
        assert len(physical_lines(lines)) < 4


def test_duckdb_failing_while_the_feed_waits_ends_both_naming_the_file(tmp_path):
    """The feed is blocked in a write, far ahead of DuckDB, when DuckDB stops at a line longer
    than it reads (here a smaller limit than the typing's: the feed cuts a line longer than the
    typing's own): the read fails naming the file (CONTRACT 2), and the feed ends."""
    import threading

    import duckdb

    from auto_refunds.file_lines import physical_lines_query, read_file
    from auto_refunds.pipe_feed import readable

    source = tmp_path / "transactions_20260105.csv"
    source.write_bytes(
        b"txn_id,amount\nT1,caf\xe9\n" + b"x" * 5000 + b"\n" + b"T3,1.00\r\n" * 5_000_000
    )
    raised = []

    def read() -> None:
        try:
            with readable(source, Reading.FED) as lines:
                sql = physical_lines_query(lines).replace(
                    f"max_line_size = {16 << 20}", "max_line_size = 4096"
                )
                read_file(duckdb.connect(), source, sql).fetchall()
        except InputFileError as exc:
            raised.append(exc)

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    reading.join(60)
    assert not reading.is_alive()
    assert len(raised) == 1 and "transactions_20260105.csv: cannot be read" in str(raised[0])
    assert feeds_alive() == []


def test_an_extract_unreadable_by_the_time_it_is_typed_fails_masked(scenario):
    """Registered readable, then replaced by lines DuckDB cannot split: the typing's error names
    the file and masks the line DuckDB quotes (CONTRACT 7)."""
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    daily.extract(D, scenario.settings)
    path = scenario.layout.transactions(D)
    text = path.read_bytes()
    path.write_bytes(text + b"T2,CL1,A1,SALE,,," + CARD.encode() + b",x\r\nT3\n")
    with pytest.raises(InputFileError, match="transactions_20260105.csv: cannot be read") as error:
        daily.build_model(D, "stg_imaginepay__transactions", scenario.settings)
    assert CARD not in str(error.value)
