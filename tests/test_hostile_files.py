"""Hostile files (CONTRACT 1): line ends of both kinds in one file, a byte-order mark, a bare CR
or a NUL byte in a line. Each costs only the records it touches, which are quarantined; every
other record is typed exactly as it is from a clean file."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from scenario import D, Scenario, credit, sale

from auto_refunds import daily, models, reconciliation
from auto_refunds.layout import PAYMENTS_HEADER
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

KINDS = ("credits", "transactions", "payments")

# Three records of each kind; the middle one (line 3) is the one damaged.
RECORDS = {
    "credits": [",".join(credit(f"C{n}", f"{n}0.00")) for n in (1, 2, 3)],
    "transactions": [",".join(sale(f"T{n}")) for n in (1, 2, 3)],
    "payments": [f"P{n},CL1,A1,T{n},,{n}0.00,APPROVED,00,ok,2026-01-05" for n in (1, 2, 3)],
}
STAGING = {
    "credits": "staging.stg_imagineone__credits",
    "transactions": "staging.stg_imaginepay__transactions",
    "payments": "staging.stg_imaginepay__payments",
    "client_rules": "staging.stg_imagineone__client_rules",
}
ID_COLUMN = {
    "credits": "credit_id",
    "transactions": "txn_id",
    "payments": "payment_id",
    "client_rules": "client_id",
}


def header(kind: str) -> str:
    from auto_refunds.layout import CLIENT_RULES_HEADER, CREDITS_HEADER, TRANSACTIONS_HEADER

    return ",".join(
        {
            "credits": CREDITS_HEADER,
            "transactions": TRANSACTIONS_HEADER,
            "client_rules": CLIENT_RULES_HEADER,
        }.get(kind, PAYMENTS_HEADER)
    )


def lf_file(kind: str, middle: str | None = None) -> bytes:
    """The clean file of ``kind``: LF line ends, its middle record ``middle`` if given."""
    first, second, third = RECORDS[kind]
    return ("\n".join([header(kind), first, middle or second, third]) + "\n").encode()


def typed(settings: Settings, kind: str, data: bytes) -> tuple[dict, dict]:
    """Land and type a file of ``kind`` holding ``data``: ({id: typed row}, {line: error})."""
    scenario = Scenario(settings)
    if kind == "payments":
        path = settings.layout.payments(D)
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        reconciliation.load(D, settings)
        for model in models.RECONCILIATION_MODELS:
            reconciliation.build_model(D, model.name, settings)
        quarantine = "marts.reconciliation_quarantine_rows"
    else:
        scenario.write_credits(D, credit("C1"))
        scenario.write_transactions(D, sale("T1"))
        scenario._prepare(D)
        path = {
            "credits": scenario.layout.credits(D),
            "transactions": scenario.layout.transactions(D),
            "client_rules": scenario.layout.client_rules,
        }[kind]
        path.write_bytes(data)
        daily.extract(D, settings)
        for model in models.DAILY_MODELS:
            daily.build_model(D, model.name, settings)
        quarantine = "marts.quarantine_rows"
    with connect(settings, D) as con:
        columns = [
            row[0]
            for row in con.execute(f"describe {STAGING[kind]}").fetchall()
            if row[0] not in ("raw_line", "line_number", "superseded_on")
        ]
        rows = con.execute(
            f"select {', '.join(columns)} from {STAGING[kind]} where dq_error is null"
        ).fetchall()
        errors = dict(con.execute(f"select line_number, error from {quarantine}").fetchall())
    # The id is the first field of every kind but credits' (source_file, file_date come first).
    key = columns.index(ID_COLUMN[kind])
    return {row[key]: row for row in rows}, errors


_CLEAN: dict[tuple[str, str | None], dict] = {}


@pytest.fixture
def clean(tmp_path_factory, monkeypatch):
    """The typed rows of a clean file, from a data folder of their own (once a module)."""

    def clean(kind: str, middle: str | None = None) -> dict:
        if (kind, middle) not in _CLEAN:
            test_data = os.environ["AUTO_REFUNDS_DATA_DIR"]
            monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(tmp_path_factory.mktemp("clean")))
            try:
                rows, errors = typed(Settings.from_env(), kind, lf_file(kind, middle))
            finally:
                monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", test_data)
            assert errors == {}
            _CLEAN[kind, middle] = rows
        return dict(_CLEAN[kind, middle])

    return clean


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def one_crlf_line(data: bytes) -> bytes:
    """The third line (the middle record) ends in CRLF, every other line in LF."""
    lines = data.split(b"\n")
    lines[2] += b"\r"
    return b"\n".join(lines)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(one_crlf_line, id="one-crlf-line"),
        pytest.param(crlf, id="crlf-file"),
        pytest.param(lambda data: b"\xef\xbb\xbf" + data, id="bom"),
        pytest.param(lambda data: b"\xef\xbb\xbf" + crlf(data), id="bom-crlf"),
        pytest.param(lambda data: crlf(data)[:-2], id="crlf-no-final-line-end"),
    ],
)
def test_line_ends_and_a_bom_change_nothing(settings, clean, kind, damage):
    assert typed(settings, kind, damage(lf_file(kind))) == (clean(kind), {})


# A spreadsheet writes its rows with CRLF and a line break inside a cell as LF (or CRLF): the
# record keeps one line break, LF, whichever way the file wrote it.
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("rows_end", "cell_breaks"),
    [("\r\n", "\n"), ("\r\n", "\r\n"), ("\n", "\r\n")],
    ids=["crlf-rows-lf-cell", "crlf-rows-crlf-cell", "lf-rows-crlf-cell"],
)
def test_a_line_break_inside_a_quoted_field_keeps_one_lf(
    settings, clean, kind, rows_end, cell_breaks
):
    middle = RECORDS[kind][1].replace(",A1,", ',"A\n1",', 1)
    data = lf_file(kind, middle).replace(b"A\n1", b"A\x001")
    data = data.replace(b"\n", rows_end.encode()).replace(b"A\x001", f"A{cell_breaks}1".encode())
    assert typed(settings, kind, data) == (clean(kind, middle), {})


BARE_CR = "line holds a bare CR (a carriage return not ending the line)"
NUL = "line holds a NUL byte"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("damage", "error"),
    [
        pytest.param(lambda line: line.replace(b",A1,", b",A\r1,", 1), BARE_CR, id="bare-cr"),
        # In an LF file, one CR before the LF would end the line as CRLF: this is two.
        pytest.param(lambda line: line + b"\r\r", BARE_CR, id="crs-before-the-line-end"),
        pytest.param(lambda line: line.replace(b",A1,", b",A\x001,", 1), NUL, id="nul"),
        pytest.param(
            lambda line: line.replace(b",A1,", b',"A\r1",', 1), BARE_CR, id="bare-cr-quoted"
        ),
    ],
)
@pytest.mark.parametrize("line_ends", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_bare_cr_or_nul_quarantines_its_record_only(
    settings, clean, kind, damage, error, line_ends
):
    lines = lf_file(kind).split(b"\n")
    lines[2] = damage(lines[2])
    data = line_ends.encode().join(lines)
    rows, errors = typed(settings, kind, data)
    expected = clean(kind)
    del expected[next(key for key in expected if key.endswith("2"))]
    assert (rows, errors) == (expected, {3: error})


# The fingerprint tells how DuckDB reads a file's lines: a CRLF split by the 1 MiB blocks it reads
# is one line end all the same.
AS_IT_IS, MIXED, FED = "as it is", "line ends mixed", "fed"


@pytest.mark.parametrize(
    ("data", "reading"),
    [
        (b"h\na\n", AS_IT_IS),
        (b"h\r\na\r\n", AS_IT_IS),
        (b"h\r\na", AS_IT_IS),
        (b"x" * ((1 << 20) - 1) + b"\r\n" + b"a\r\n", AS_IT_IS),
        (b"x" * ((1 << 20) - 1) + b"\r\n" + b"a\n", MIXED),
        (b"h\na\r\n", MIXED),
        (b"h\r\na\n", MIXED),
        (b"h\r\na\n\r\n\nb", MIXED),
        (b"h\na\rb\n", FED),
        (b"h\na\rb\r\n", FED),
        (b"h\r\na\r", FED),
        (b"h\r\na\nb\r", FED),
        (b"h\na\x00b\n", FED),
        (b"h\na\x00b\r\n", FED),
        (b"h\na\xffb\r\n", FED),
        # A line DuckDB is not given whole: the feed cuts it and marks it.
        (b"h\n" + b"x" * (16 << 20) + b"\na\n", AS_IT_IS),
        (b"h\n" + b"x" * ((16 << 20) + 1) + b"\na\n", FED),
        (b"h\r\n" + b"x" * ((16 << 20) + 1), FED),
    ],
    ids=lambda value: repr(value[:12]) + f"+{len(value)}" if isinstance(value, bytes) else value,
)
def test_how_a_file_is_read_follows_its_line_ends(tmp_path, data, reading):
    from auto_refunds.fingerprints import fingerprint

    path = tmp_path / "credits_20260105.csv"
    path.write_bytes(data)
    assert fingerprint(path).reading.value == reading


# DuckDB's one-thread reading of a file whose lines end in both LF and CRLF gives the lines the
# pipe feed gives, blank lines and a last line without its line end included.
@pytest.mark.parametrize(
    "data",
    [
        b"h\na\r\nb\n",
        b"h\r\na\nb\r\n\r\n\n c \r\nlast",
        b"".join(f"line {n}".encode() + (b"\r\n" if n % 3 else b"\n") for n in range(5000)),
    ],
)
def test_mixed_line_ends_read_as_they_are_give_the_fed_lines(tmp_path, data):
    import duckdb

    from auto_refunds.file_lines import physical_lines_query
    from auto_refunds.fingerprints import Reading
    from auto_refunds.pipe_feed import readable

    path = tmp_path / "credits_20260105.csv"
    path.write_bytes(data)
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = true")
    direct = con.execute(physical_lines_query(path, mixed_line_ends=True)).fetchall()
    with readable(path, Reading.FED) as fed:
        assert con.execute(physical_lines_query(fed)).fetchall() == direct
    # A line end ends a line: none follows the last one.
    lines = data.removesuffix(b"\n").split(b"\n")
    expected = [line.removesuffix(b"\r").decode() or None for line in lines]
    assert direct == [(line,) for line in expected]


# A warehouse that registered its files before their lines were looked at: the typing reads such
# an extract through the feed until landing records what its lines are.
def test_a_file_registered_before_its_lines_were_looked_at_is_looked_at_again(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    daily.extract(D, scenario.settings)
    with connect(scenario.settings, D) as con:
        con.execute("update landing.files set plain_lines = null, mixed_line_ends = null")
        con.execute(
            "update landing.file_stat_digests set plain_lines = null, mixed_line_ends = null"
        )
    daily.extract(D, scenario.settings)
    known = "select distinct plain_lines, mixed_line_ends from "
    assert scenario.query(known + "landing.files") == [(True, False)]
    assert scenario.query(known + "landing.file_stat_digests") == [(True, False)]


# -- Hostile files, generated ------------------------------------------------------------------
# Good records of one kind, each kept, written another way that reads the same (a CRLF line end,
# its account quoted with a line break inside, LF, CRLF or a blank line), or damaged in its account
# field (a bare CR, a NUL byte, a byte that is not UTF-8, a stray quote); the file in LF or CRLF,
# with a byte-order mark or not. The run reads the file; every record kept is typed as generated,
# every damaged one is quarantined at its line, and nothing else.

# damage: (the account field as written, from its text; whether the record is kept)
DAMAGES = {
    "none": (lambda account: account.encode(), True),
    "crlf-line-end": (lambda account: account.encode(), True),
    "quoted-lf": (lambda account: b'"' + account.encode() + b'"', True),
    "quoted-crlf": (lambda account: b'"' + account.replace("\n", "\r\n").encode() + b'"', True),
    "quoted-blank-line": (lambda account: b'"' + account.encode() + b'"', True),
    "bare-cr": (lambda account: account.encode() + b"\r9", False),
    "nul": (lambda account: b"\x00" + account.encode(), False),
    "not-utf8": (lambda account: account.encode() + b"\xff", False),
    "stray-quote": (lambda account: account.encode() + b'"x', False),
}
_SHAPE = {
    "credits": lambda n, account, amount: [f"C{n}", "CL1", account, amount, "2026-01-04"],
    "transactions": lambda n, account, amount: [
        *(f"T{n}", "CL1", account, "SALE", "", "", amount, "2026-01-01", "SETTLED"),
        *("CREDIT", "SIGNATURE", "12/27", f"tok_{n}", "1111"),
    ],
    "payments": lambda n, account, amount: [
        *(f"P{n}", "CL1", account, f"T{n}", "", amount, "APPROVED", "00", "ok", "2026-01-05"),
    ],
    # No free text: the client_id is the field written another way or damaged.
    "client_rules": lambda n, account, amount: [account, "true", amount, "30"],
}
# The field written another way or damaged, and the columns the kept records are compared on.
DAMAGED_FIELD = {"credits": 2, "transactions": 2, "payments": 2, "client_rules": 0}
COMPARED = {
    "credits": "account_id, credit_amount",
    "transactions": "account_id, amount",
    "payments": "account_id, payment_amount",
    "client_rules": "client_id, min_balance_threshold",
}


def _hostile_file(kind: str, records: list, crlf_file: bool, bom: bool) -> tuple[bytes, dict, set]:
    """The file's bytes, {id: (account, amount)} of the records kept, and the lines of the
    damaged ones."""
    import decimal

    end = b"\r\n" if crlf_file else b"\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + header(kind).encode() + end
    line_number = 2
    kept, damaged = {}, set()
    for n, (account, cents, damage) in enumerate(records, 1):
        amount = f"{decimal.Decimal(cents) / 100:.2f}"
        written, keeps = DAMAGES[damage]
        if kind == "client_rules":
            # The id itself: unique in the file.
            account += str(n)
        if damage.startswith("quoted"):
            line_break = "\n\n" if damage == "quoted-blank-line" else "\n"
            account = account[:1] + line_break + account[1:]
        fields = [field.encode() for field in _SHAPE[kind](n, account, amount)]
        fields[DAMAGED_FIELD[kind]] = written(account)
        data += b",".join(fields) + (b"\r\n" if damage == "crlf-line-end" else end)
        if keeps:
            key = account if kind == "client_rules" else f"{kind[0].upper()}{n}"
            kept[key] = (account, decimal.Decimal(amount))
        else:
            damaged.add(line_number)
        line_number += 1 + account.count("\n") * damage.startswith("quoted")
    return data, kept, damaged


@hsettings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES_SCALE", "1")) * 8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from((*KINDS, "client_rules")),
    records=st.lists(
        st.tuples(
            st.from_regex(r"[A-Z][A-Z0-9]{1,5}", fullmatch=True),
            st.integers(1, 10**6),
            st.sampled_from(sorted(DAMAGES)),
        ),
        min_size=1,
        max_size=8,
    ),
    crlf_file=st.booleans(),
    bom=st.booleans(),
)
def test_a_hostile_file_costs_only_its_damaged_records(
    tmp_path_factory, monkeypatch, kind, records, crlf_file, bom
):
    data, kept, damaged = _hostile_file(kind, records, crlf_file, bom)
    note(repr(data))
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(tmp_path_factory.mktemp("hostile")))
    settings = Settings.from_env()
    rows, errors = typed(settings, kind, data)
    with connect(settings, D) as con:
        typed_rows = dict(
            (row[0], (row[1], row[2]))
            for row in con.execute(
                f"select {ID_COLUMN[kind]}, {COMPARED[kind]} from {STAGING[kind]} "
                "where dq_error is null"
            ).fetchall()
        )
    assert typed_rows == kept
    assert set(errors) == damaged
    assert len(rows) + len(errors) == len(records)
