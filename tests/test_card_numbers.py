"""The card-number detector: Python and the DuckDB macros that call it agree, case by case and on
random strings, and masking leaves nothing a detector would find (CONTRACT 7).

Over 300 lines: the cases are the definition's edges, kept beside each other.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auto_refunds import card_numbers, log_masking

REPO = Path(__file__).resolve().parents[1]
SQL_DIR = REPO / "include" / "sql"

# Test numbers of every brand, each Luhn-valid.
BRANDS = {
    "visa": "4111111111111111",
    "visa 2": "4012888888881881",
    "visa 13 digits": "4222222222222",
    "visa 19 digits": "4000000000000000006",
    "mastercard": "5555555555554444",
    "mastercard 2-series": "2223003122003222",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "discover 2": "6011000990139424",
    "diners": "30569309025904",
    "jcb": "3530111333300000",
    "unionpay": "6212345678901265",
    "unionpay 19 digits": "6212345678901234569",
    "maestro": "6759649826438453",
    "maestro 19 digits": "6799990100000000019",
}


def masked(digits: str) -> str:
    return "*" * (len(digits) - 4) + digits[-4:]


# (text, masked text); a text equal to its masked form holds no card number.
CASES = [
    *((number, masked(number)) for number in BRANDS.values()),
    ("4111 1111 1111 1111", "************1111"),
    ("4111-1111-1111-1111", "************1111"),
    ("3782 822463 10005", "***********0005"),
    ("4111-1111 1111-1111", "************1111"),
    # Not card numbers.
    ("4111111111111112", None),  # fails Luhn
    ("1234567890123", None),  # 13 digits, fails Luhn
    ("4111  1111 1111 1111", None),  # double separator
    ("4111--1111-1111-1111", None),
    ("4111 -1111 1111 1111", None),
    ("4111_1111_1111_1111", None),  # '_' is not a separator
    ("4111.1111.1111.1111", None),
    ("411111111111", None),  # 12 digits
    ("0000000000000000000000", None),  # 22 digits: one longer run
    ("41111111111111111111", None),  # 20 digits
    ("a4111111111111111f", None),  # inside a hex string
    ("deadbeef4111111111111111", None),
    ("4111111111111111abc", None),
    ("TXN4111111111111111", None),
    ("", None),
    ("no digits at all", None),
    # Standing alone next to punctuation, CSV fields and quotes.
    ("4111111111111111,SALE", "************1111,SALE"),
    ("T1,CL1,A1,tok,4111111111111111", "T1,CL1,A1,tok,************1111"),
    ('"4111 1111 1111 1111",x', '"************1111",x'),
    ("'378282246310005'", "'***********0005'"),
    ("(4111111111111111)", "(************1111)"),
    ("tok_4111111111111111", "tok_************1111"),
    ("card=4111111111111111;", "card=************1111;"),
    ("line one\n4111111111111111\nline three", "line one\n************1111\nline three"),
    ("-4111111111111111", "-************1111"),
    ("4111111111111111.00", "************1111.00"),
    # In free text, beside other numbers.
    ("declined: card 4111 1111 1111 1111 exp 12/27", "declined: card ************1111 exp 12/27"),
    ("card 4111 1111 1111 1111 12 27", "card **************** 12 27"),
    ("ref 12345 4111111111111111", "ref 12345 ************1111"),
    ("4111111111111111 5555555555554444", "****************************4444"),
    ("4111111111111111, 5555555555554444", "************1111, ************4444"),
    ("4111111111111111 222222222", "**************** 222222222"),
    ("4111111111111111 x 99", "************1111 x 99"),
    ("é4111111111111111", "é************1111"),  # a non-ASCII letter ends a word
]


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect()
    card_numbers.register(con, SQL_DIR)
    yield con
    con.close()


def sql(con, texts: list[str | None]) -> list[tuple[bool, str | None]]:
    """has_card_number and mask_card_numbers of each text, in one statement."""
    rows = con.execute(
        "select n, has_card_number(t), mask_card_numbers(t) "
        "from unnest(?::varchar[]) with ordinality as u(t, n) order by n",
        [texts],
    ).fetchall()
    return [(found, masked_text) for _, found, masked_text in rows]


@pytest.fixture(scope="module")
def sql_of_cases(con):
    texts = [text for text, _ in CASES]
    return dict(zip(texts, sql(con, texts), strict=True))


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_python_and_sql_agree_on_each_case(sql_of_cases, text, expected):
    expected = text if expected is None else expected
    holds_one = expected != text
    assert card_numbers.contains(text) is holds_one
    assert card_numbers.mask(text) == expected
    assert sql_of_cases[text] == (holds_one, expected)
    assert not card_numbers.contains(expected)


def test_find_gives_each_number_with_its_place():
    text = "a 4111 1111 1111 1111, b 378282246310005 12"
    found = card_numbers.find(text)
    assert [(text[f.start : f.end], f.digits) for f in found] == [
        ("4111 1111 1111 1111", "4111111111111111"),
        ("378282246310005", "378282246310005"),
    ]
    assert card_numbers.find("4111111111111112") == []


def test_null_is_no_card_number(con):
    assert sql(con, [None, ""]) == [(False, None), (False, "")]
    assert card_numbers.mask(None) is None


def test_luhn_catches_every_single_digit_change():
    number = BRANDS["visa"]
    for position in range(len(number)):
        for digit in "0123456789":
            changed = number[:position] + digit + number[position + 1 :]
            assert card_numbers.luhn_ok(changed) is (changed == number)


PIECES = st.sampled_from(
    [
        *BRANDS.values(),
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555 5555 5555 4444",
        "0",
        "12",
        "1234",
        " ",
        "-",
        "  ",
        ",",
        '"',
        "a",
        "Z",
        "_",
        "é",
    ]
)
TEXTS = st.lists(
    st.one_of(PIECES, st.text(alphabet="0123456789 -,aZ", max_size=12)), max_size=12
).map("".join)


# Each example is a batch of strings, so that one statement checks many of them.
BATCHES = st.lists(TEXTS, min_size=1, max_size=60)


@settings(max_examples=20, deadline=None)
@given(BATCHES)
def test_python_and_sql_agree_on_random_strings(con, texts):
    for text, in_sql in zip(texts, sql(con, texts), strict=True):
        python = (card_numbers.contains(text), card_numbers.mask(text))
        assert in_sql == python, text
        assert python[0] is (python[1] != text)
        assert python[0] is bool(card_numbers.find(text))


@settings(max_examples=20, deadline=None)
@given(BATCHES)
def test_a_masked_text_holds_no_card_number(con, texts):
    masked_texts = [card_numbers.mask(text) for text in texts]
    for text, once in zip(texts, masked_texts, strict=True):
        assert not card_numbers.contains(once), text
        assert card_numbers.mask(once) == once
        assert len(once) <= len(text)
    assert {found for found, _ in sql(con, masked_texts)} <= {False}


def test_the_log_filter_masks_message_args_and_exception():
    import logging

    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "card %s in %r", ("4111111111111111", "a"), None
    )
    try:
        raise ValueError("Could not convert '4111 1111 1111 1111'")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert log_masking.CardNumberFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "card ************1111 in 'a'" in text
    assert "'************1111'" in text
    assert not card_numbers.contains(text)


# Airflow 3.3 configures a task's child process this way (task_runner / supervisor): structlog
# events and stdlib records both go out as JSON lines to the supervisor.
AIRFLOW_TASK_LOGGING = textwrap.dedent(
    """
    import io, logging, sys
    import structlog
    from airflow.sdk.log import configure_logging
    from auto_refunds import log_masking

    out = io.BytesIO()
    configure_logging(json_output=True, output=out, sending_to_supervisor=True)
    task_log = structlog.get_logger("task")
    task_log.info("before install 4111111111111111")
    log_masking.install_log_filter()
    log_masking.install_log_filter()
    logging.getLogger("auto_refunds.x").info("stdlib %s", "4111 1111 1111 1111")
    logging.getLogger("great_expectations").warning("library 5555-5555-5555-4444")
    try:
        import duckdb
        duckdb.sql("select '4012888888881881'::integer").fetchall()
    except Exception:
        task_log.exception("Task failed with exception")
        logging.getLogger("auto_refunds.y").exception("stdlib exception")
    task_log.info("structlog", value="378282246310005", nested={"a": ["6011111111111117"]})
    # What the supervisor received, unfiltered by the masked stdout.
    sys.__stdout__.write(out.getvalue().decode())
    """
)


def run_python(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter, as a task process runs, with the project importable."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "plugins")},
    )


def test_install_log_filter_masks_what_an_airflow_task_logs():
    result = run_python(AIRFLOW_TASK_LOGGING)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    events = {line["event"]: line for line in lines}
    # Installed after this line: it shows what the filter is for.
    assert "4111111111111111" in events["before install 4111111111111111"]["event"]
    lines.remove(events["before install 4111111111111111"])
    text = json.dumps(lines)
    assert not card_numbers.contains(text), text
    assert "stdlib ************1111" in events
    assert "library ************4444" in events
    assert events["structlog"]["value"] == "***********0005"
    assert events["structlog"]["nested"] == {"a": ["************1117"]}
    for failed in ("Task failed with exception", "stdlib exception"):
        assert "************1881" in json.dumps(events[failed]["exception"])


PRINTING_TASK = textwrap.dedent(
    """
    import sys, warnings
    from auto_refunds import log_masking

    print("before install 4111111111111111", flush=True)
    log_masking.install_log_filter()
    print("printed 4111 1111 1111 1111")
    print("in pieces 5555-5555", end="")
    print("-5555-4444", flush=True)
    sys.stderr.write("stderr 378282246310005\\n")
    warnings.warn("warned 6011111111111117")
    print("unterminated 4012888888881881", end="")
    """
)


def test_what_a_task_prints_is_masked():
    result = run_python(PRINTING_TASK)
    out, err = result.stdout, result.stderr
    # Printed before the streams were wrapped: it shows what the wrapping is for.
    assert "before install 4111111111111111\n" in out
    out = out.replace("before install 4111111111111111\n", "")
    assert not card_numbers.contains(out + err), out + err
    assert "printed ************1111\n" in out
    assert "in pieces ************4444\n" in out
    assert "unterminated ************1881" in out
    assert "stderr ***********0005" in err
    assert "warned ************1117" in err
