"""CONTRACT 2: every landing line kept; malformed rows quarantined with file, line and reason;
a missing file or a wrong header fails the run and leaves nothing half-written."""

from __future__ import annotations

import datetime as dt

import pytest
from scenario import D, Scenario, credit, sale

from auto_refunds import daily, models
from auto_refunds.file_lines import InputFileError
from auto_refunds.warehouse import connect


def quarantined(scenario: Scenario) -> dict[tuple[str, int], str]:
    rows = scenario.query(
        "select source_file, line_number, error from marts.quarantine_rows order by all"
    )
    return {(source_file, line): error for source_file, line, error in rows}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("C9,CL1,A1,abc,2026-01-04", "credit_amount is not a decimal number: abc"),
        ("C9,CL1,A1,12.345,2026-01-04", "credit_amount has more than two decimals: 12.345"),
        ("C9,CL1,A1,,2026-01-04", "credit_amount is empty"),
        ("C9,CL1,A1,1e3,2026-01-04", "credit_amount is not a decimal number: 1e3"),
        ("C9,CL1,A1,10.00,2026-02-30", "credit_date is not a date (YYYY-MM-DD): 2026-02-30"),
        ("C9,CL1,A1,10.00,01/04/2026", "credit_date is not a date (YYYY-MM-DD): 01/04/2026"),
        (",CL1,A1,10.00,2026-01-04", "credit_id is empty"),
        # Quoted, so read by the RFC 4180 path: its empty first field is a field like any other.
        (',CL1,A1,"10.00",2026-01-04', "credit_id is empty"),
        ("C9,CL1,A1,10.00", "expected 5 fields, found 4"),
        ("C9,CL1,A1,10.00,2026-01-04,x", "expected 5 fields, found 6"),
        ('C9,"CL1,A1,10.00,2026-01-04', "line is not valid CSV (broken quoting)"),
    ],
)
def test_malformed_credit_values_are_quarantined(scenario, line, error):
    scenario.write_credits(D, credit("C1"), line)
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {("credits_20260105.csv", 3): error}


CARD = "CREDIT,SIGNATURE,12/27,tok_9,9999"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"T9,CL1,A1,SALE,,,abc,2026-01-01,SETTLED,{CARD}", "amount is not a decimal number: abc"),
        (f"T9,CL1,A1,SALE,,,1.001,2026-01-01,SETTLED,{CARD}", "amount has more than two decimals"),
        (
            f"T9,CL1,A1,SALE,,,0.00,2026-01-01,SETTLED,{CARD}",
            "amount must be above zero, found 0.00",
        ),
        (f"T9,CL1,A1,SALE,,,-5.00,2026-01-01,SETTLED,{CARD}", "amount must be above zero"),
        (f"T9,CL1,A1,SALE,,,5.00,2026-13-01,SETTLED,{CARD}", "txn_date is not a date"),
        (f"T9,CL1,A1,CHARGEBACK,,,5.00,2026-01-01,SETTLED,{CARD}", "txn_type has unknown code"),
        (f"T9,CL1,A1,SALE,,,5.00,2026-01-01,REVERSED,{CARD}", "status has unknown code REVERSED"),
        (
            "T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,GIFT,PIN,12/27,tok,9999",
            "card_type has unknown",
        ),
        ("T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,CHIP,12/27,tok,9999", "cvm has unknown"),
        (
            "T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,13/27,tok,9999",
            "card_exp is not MM/YY",
        ),
        (
            "T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,1/27,tok,9999",
            "card_exp is not MM/YY",
        ),
        ("T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,12/2027,tok,9999", "card_exp is not"),
        ("T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,tok,99", "card_last4 is not 4"),
        (f",CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,{CARD}", "txn_id is empty"),
        (f',CL1,A1,SALE,,,"5.00",2026-01-01,SETTLED,{CARD}', "txn_id is empty"),
    ],
)
def test_malformed_transaction_values_are_quarantined(scenario, line, error):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"), line)
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    ((where, found),) = quarantined(scenario).items()
    assert where == ("transactions_20260105.csv", 3)
    assert found.startswith(error)


def test_every_row_of_a_duplicated_id_is_quarantined(scenario):
    scenario.write_credits(D, credit("C1"), credit("C2", "10.00"), credit("C2", "20.00"))
    scenario.write_transactions(D, sale("T1"), sale("T2", account="A2"), sale("T2", account="A2"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {
        ("credits_20260105.csv", 3): "credit_id C2 appears on 2 lines of this file",
        ("credits_20260105.csv", 4): "credit_id C2 appears on 2 lines of this file",
        ("transactions_20260105.csv", 3): "txn_id T2 appears on 2 lines of this file",
        ("transactions_20260105.csv", 4): "txn_id T2 appears on 2 lines of this file",
    }


def test_a_duplicated_txn_id_is_found_however_its_lines_are_quoted(scenario):
    # The ids are read by a shortcut for plain lines and by the RFC 4180 split for the others:
    # both must read the same id.
    line = ",".join(sale("T2", account="A2"))
    quoted = line.replace("T2,", '"T2",', 1)
    blank = line.replace("T2,", " T2,", 1)
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"), line, quoted, blank)
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {
        ("transactions_20260105.csv", n): "txn_id T2 appears on 3 lines of this file"
        for n in (3, 4, 5)
    }


def test_a_txn_id_repeated_in_a_later_file_is_not_a_duplicate(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(dt.date(2026, 1, 4), sale("T1", status="PENDING"))
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {}


def test_malformed_client_rules_rows(scenario):
    scenario.write_rules(
        ("CL1", "yes", "", ""),
        ("CL2", "true", "1.234", ""),
        ("CL3", "true", "", "ninety"),
        ("CL4", "TRUE", "", ""),
        ("CL4", "true", "", ""),
    )
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {"C1": ("NOT_ENROLLED", None)}
    assert quarantined(scenario) == {
        ("client_rules.csv", 2): "auto_refunds_enabled must be true or false, found yes",
        ("client_rules.csv", 3): "min_balance_threshold has more than two decimals: 1.234",
        ("client_rules.csv", 4): "refund_window_days is not a whole number of days: ninety",
        ("client_rules.csv", 5): "client_id CL4 appears on 2 lines of this file",
        ("client_rules.csv", 6): "client_id CL4 appears on 2 lines of this file",
    }


# CONTRACT 2: client_rules.csv may carry refund_deadline_days as an optional last column; a file
# with it is read at its own width, one without it stays valid.
def test_client_rules_with_the_optional_refund_deadline_days(scenario):
    scenario._prepare(D)
    scenario.layout.client_rules.write_text(
        "client_id,auto_refunds_enabled,min_balance_threshold,refund_window_days,"
        "refund_deadline_days\n"
        "CL1,true,,,30\n"
        "CL2,true,,,\n"
        "CL3,true,,,soon\n"
        "CL4,true,,\n"
    )
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    # The scenario writes its own rules before it decides: this file stays.
    scenario._prepare = lambda day: None
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {
        ("client_rules.csv", 4): "refund_deadline_days is not a whole number of days: soon",
        ("client_rules.csv", 5): "expected 5 fields, found 4",
    }
    assert scenario.query(
        "select client_id, refund_deadline_days from staging.stg_imagineone__client_rules "
        "where dq_error is null order by all"
    ) == [("CL1", 30), ("CL2", None)]


def test_client_rules_with_another_last_column_fail_naming_the_file(scenario):
    scenario._prepare(D)
    scenario.layout.client_rules.write_text(
        "client_id,auto_refunds_enabled,min_balance_threshold,refund_window_days,deadline\n"
    )
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    with pytest.raises(InputFileError, match=r"client_rules\.csv line 1: wrong header"):
        daily.extract(D, scenario.settings)


def test_quoting_crlf_bom_and_blank_lines(scenario):
    path = scenario.write_credits(D)
    path.write_bytes(
        b"\xef\xbb\xbfcredit_id,client_id,account_id,credit_amount,credit_date\r\n"
        b'"C1",CL1,"A1",50.00,2026-01-04\r\n'
        b"\r\n"
        b" C2 ,CL1,A1, 10.00 ,2026-01-04\r\n"
    )
    scenario.write_transactions(D, sale("T1"))
    assert scenario.decide() == {"C1": ("DUE", "T1"), "C2": ("DUE", "T1")}
    assert quarantined(scenario) == {}


def test_a_card_number_never_reaches_the_quarantine(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(
        D, "T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,tok,4111111111111111"
    )
    scenario.decide()
    ((raw_line, error),) = scenario.query("select raw_line, error from marts.quarantine_rows")
    assert "4111111111111111" not in raw_line and raw_line.endswith("tok,************1111")
    assert "4111111111111111" not in error


@pytest.mark.parametrize(
    ("token", "last4", "error"),
    [
        ("4111 1111 1111 1111", "1111", "card_token holds a card number"),
        (
            "tok",
            "4111-1111-1111-1111",
            "card_last4 is not 4 digits; card_last4 holds a card number",
        ),
    ],
)
def test_a_card_number_in_a_card_field_is_quarantined_naming_the_field(
    scenario, token, last4, error
):
    """CONTRACT 7: the row is quarantined, the error names the field, never the value, and no
    table but the landing copy of the file keeps the number."""
    scenario.write_credits(D, credit("C1"))
    line = f"T9,CL1,A1,SALE,,,5.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,{token},{last4}"
    scenario.write_transactions(D, sale("T1"), line)
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert quarantined(scenario) == {("transactions_20260105.csv", 3): error}
    tables = scenario.query(
        "select schema_name, table_name from duckdb_tables() where schema_name <> 'landing'"
    )
    for schema, table in tables:
        text = repr(scenario.query(f"select * from {schema}.{table}"))
        assert "4111111111111111" not in text.replace(" ", "").replace("-", ""), table


def test_a_wrong_header_fails_naming_the_file_and_lands_nothing(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    scenario.layout.transactions(D).write_text("txn_id,amount\nT1,5.00\n")
    with pytest.raises(InputFileError, match=r"transactions_20260105\.csv line 1: wrong header"):
        daily.extract(D, scenario.settings)
    assert scenario.query("select count(*) from landing.files") == [(0,)]
    assert scenario.query("select count(*) from landing.imagineone__credits") == [(0,)]


@pytest.mark.parametrize("missing", ["credits", "transactions", "client_rules"])
def test_a_missing_file_fails_naming_it(scenario, missing):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    path = {
        "credits": scenario.layout.credits(D),
        "transactions": scenario.layout.transactions(D),
        "client_rules": scenario.layout.client_rules,
    }[missing]
    path.unlink()
    with pytest.raises(InputFileError, match=f"{path.name}: file not found"):
        daily.extract(D, scenario.settings)


# A line longer than DuckDB is given (fingerprints.MAX_LINE_BYTES) costs that line alone: the pipe
# feed cuts it and marks it, staging quarantines it, the line after it is typed. The quarantine
# keeps its first 1 KiB, masked.
TOO_LONG = b"x" * (17 << 20)
CARD = b"4111111111111111"


@pytest.mark.parametrize(
    ("kind", "long_line", "next_line", "line_end"),
    [
        (
            "credits",
            b"C2,CL1," + CARD + b",10.00," + TOO_LONG,
            b"C3,CL1,A1,10.00,2026-01-04",
            b"\n",
        ),
        # Its line end CRLF, the file's LF: the line ends are mixed besides.
        (
            "credits",
            b"C2,CL1," + CARD + b",10.00," + TOO_LONG,
            b"C3,CL1,A1,10.00,2026-01-04",
            b"\r\n",
        ),
        (
            "transactions",
            b"T2,CL1,A1,SALE,,,10.00,2026-01-01,SETTLED,CREDIT,PIN,12/27," + CARD + b"," + TOO_LONG,
            ",".join(sale("T3")).encode(),
            b"\n",
        ),
        # Not all UTF-8 besides.
        (
            "transactions",
            b"T2,CL1,A1,SALE,,,\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27," + CARD + b"," + TOO_LONG,
            ",".join(sale("T3")).encode(),
            b"\n",
        ),
    ],
)
def test_a_line_too_long_to_read_is_quarantined_and_the_rest_goes_on(
    scenario, kind, long_line, next_line, line_end
):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    path = scenario.layout.credits(D) if kind == "credits" else scenario.layout.transactions(D)
    with open(path, "ab") as handle:
        handle.write(long_line + line_end + next_line + b"\n")
    scenario.decide()
    assert quarantined(scenario) == {
        (path.name, 3): "line is longer than 16 MiB (only its first 1 KiB is kept here)"
    }
    kept = scenario.query("select raw_line from marts.quarantine_rows")[0][0]
    assert len(kept) < 1100 and CARD.decode() not in kept
    relation, key = (
        ("staging.stg_imagineone__credits", "credit_id")
        if kind == "credits"
        else ("staging.stg_imaginepay__transactions", "txn_id")
    )
    typed = scenario.query(f"select {key} from {relation} where dq_error is null order by all")
    assert typed == [(f"{kind[0].upper()}1",), (f"{kind[0].upper()}3",)]


@pytest.mark.parametrize(
    ("kind", "line", "kept"),
    [
        ("credits", b"C2,CL1,A1,\xff\xfe,2026-01-04\n", "C2,CL1,A1,\\xff\\xfe,2026-01-04"),
        ("client_rules", b"CL\xe9,true,,\n", "CL\\xe9,true,,"),
        (
            "transactions",
            b"T2,CL1,A1,SALE,,,\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27,t,1111\n",
            "T2,CL1,A1,SALE,,,\\xff,2026-01-01,SETTLED,CREDIT,PIN,12/27,t,1111",
        ),
    ],
)
def test_a_line_that_is_not_utf8_is_quarantined_and_the_rest_goes_on(scenario, kind, line, kept):
    """CONTRACT 2: the line, its bytes escaped, with its file, number and reason; valid UTF-8
    elsewhere in the file (here a name with an accent) is read as it is."""
    scenario.write_credits(D, credit("C1"), credit("C\u00e9", account="A2"))
    scenario.write_transactions(D, sale("T1"), sale("T\u00e9", account="A2"))
    scenario._prepare(D)
    path = {
        "credits": scenario.layout.credits(D),
        "client_rules": scenario.layout.client_rules,
        "transactions": scenario.layout.transactions(D),
    }[kind]
    with open(path, "ab") as handle:
        handle.write(line)
    daily.extract(D, scenario.settings)
    for model in models.DAILY_MODELS:
        daily.build_model(D, model.name, scenario.settings)
    # Line 4: the header, two rows, then the line appended.
    assert scenario.query("select line_number, raw_line, error from marts.quarantine_rows") == [
        (4, kept, "line is not valid UTF-8")
    ]
    outcomes = "select credit_id, coalesce(reason_code, outcome) from marts.credit_outcomes"
    assert dict(scenario.query(outcomes)) == {"C1": "DUE", "C\u00e9": "DUE"}


def test_a_payment_line_that_is_not_utf8_is_quarantined_and_the_rest_goes_on(settings):
    from auto_refunds import reconciliation
    from auto_refunds.layout import PAYMENTS_HEADER

    path = settings.layout.payments(D)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        (",".join(PAYMENTS_HEADER) + "\nP1,CL1,A1,T1,,10.00,APPROVED,00,ok,2026-01-05\n").encode()
        + b"P2,CL1,A1,T2,,10.00,APPROVED,00,caf\xe9,2026-01-05\n"
    )
    reconciliation.load(D, settings)
    for model in models.RECONCILIATION_MODELS:
        reconciliation.build_model(D, model.name, settings)
    with connect(settings, D) as con:
        assert con.execute(
            "select line_number, raw_line, error from marts.reconciliation_quarantine_rows"
        ).fetchall() == [
            (3, "P2,CL1,A1,T2,,10.00,APPROVED,00,caf\\xe9,2026-01-05", "line is not valid UTF-8")
        ]
        assert con.execute("select payment_id from marts.payment_postings").fetchall() == [("P1",)]


def test_reloading_a_file_replaces_its_lines_and_quarantine(scenario):
    scenario.write_credits(D, credit("C1"), "C2,CL1,A1,abc,2026-01-04")
    scenario.write_transactions(D, sale("T1"))
    scenario.run(D)
    scenario.run(D)
    assert scenario.query("select count(*) from landing.imagineone__credits") == [(2,)]
    assert scenario.query("select count(*) from quarantine_rows") == [(1,)]
    scenario.write_credits(D, credit("C1"), credit("C2"))
    scenario.decide()
    assert quarantined(scenario) == {}


def test_line_numbers_hold_in_a_file_read_in_parallel(scenario):
    # Big enough for DuckDB to scan in parallel chunks: each credit names its own line.
    lines = [f"L{n},CL1,A1,1.00,2026-01-04" for n in range(2, 400_002)]
    path = scenario.write_credits(D)
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    daily.extract(D, scenario.settings)
    assert scenario.query(
        "select count(*), count(*) filter (where raw_line like 'L' || line_number || ',%') "
        "from landing.imagineone__credits"
    ) == [(400_000, 400_000)]


# ImaginePay extracts are typed once each, straight from the registered file (models.py).

TYPED = "select source_file, sha256 from staging.typed_files order by source_file"


def test_an_extract_is_typed_once_and_a_backfill_types_nothing(scenario):
    day_1, day_2 = D, D + dt.timedelta(days=1)
    scenario.write_credits(day_1, credit("C1"))
    scenario.write_credits(day_2, credit("C2"))
    scenario.write_transactions(day_1, sale("T1"))
    scenario.write_transactions(day_2, sale("T2"), "T2,CL1")
    scenario.decide(day_1)
    scenario.decide(day_2)
    typed = scenario.query(TYPED)
    assert [name for name, _ in typed] == [
        "transactions_20260105.csv",
        "transactions_20260106.csv",
    ]
    # The backfill of day 1 sees only the extracts up to day 1, and types nothing again.
    assert scenario.decide(day_1) == {"C1": ("DUE", "T1")}
    assert scenario.query(TYPED) == typed
    assert scenario.query("select count(*) from marts.quarantine_rows") == [(0,)]
    assert scenario.query(
        "select txn_id from intermediate.int_imaginepay__transactions_known_at_date"
    ) == [("T1",)]


def test_an_extract_whose_content_changes_is_typed_again(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1", "10.00"))
    assert scenario.decide()["C1"][0] == "CREDIT_EXCEEDS_TRANSACTION"
    scenario.write_transactions(D, sale("T1", "90.00"), "broken")
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert scenario.query(
        "select txn_id, amount, line_number from staging.stg_imaginepay__transactions"
        " order by line_number"
    ) == [("T1", 90, 2), ("broken", None, 3)]


def test_an_extract_typed_by_another_version_of_the_model_is_typed_again(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario.decide()
    (current,) = scenario.query("select model_version from staging.typed_files")
    with connect(scenario.settings) as con:
        con.execute("update staging.typed_files set model_version = 'an older model'")
        con.execute("update staging.stg_imaginepay__transactions set txn_id = 'stale'")
    assert scenario.decide() == {"C1": ("DUE", "T1")}
    assert scenario.query("select model_version from staging.typed_files") == [current]
    assert scenario.query("select txn_id from staging.stg_imaginepay__transactions") == [("T1",)]


def storage(scenario: Scenario, relation: str) -> dict[str, str]:
    """How each text column of ``relation`` is stored, once checkpointed."""
    with connect(scenario.settings) as con:
        con.execute("checkpoint")
        return dict(
            con.execute(
                "select column_name, string_agg(distinct compression, ',' order by compression)"
                " from pragma_storage_info(?) where segment_type = 'VARCHAR' group by all",
                [relation],
            ).fetchall()
        )


def test_what_is_kept_is_compressed_but_random_ids_and_the_working_tables(scenario):
    # Enough rows for a table's rows to be written as they are inserted (a row group, 122,880
    # rows), not at a checkpoint, and for DuckDB to compress what it may.
    scenario.write_credits(D, *(credit(f"C{n}", account=f"A{n}") for n in range(130_000)))
    scenario.write_transactions(D, *(sale(f"T{n}") for n in range(3000)))
    scenario.run()
    model = models.find("stg_imaginepay__transactions")
    kept = storage(scenario, model.relation)
    assert model.per_file_uncompressed
    for column in model.per_file_uncompressed:
        assert kept[column] == "Uncompressed", column
    assert kept["status"] != "Uncompressed"
    # The working tables are replaced by the next run: stored as they are. The contract's
    # tables are kept: compressed.
    assert set(storage(scenario, "marts.credit_outcomes").values()) == {"Uncompressed"}
    assert storage(scenario, "main.credit_outcomes")["outcome"] != "Uncompressed"


def test_an_extract_changed_after_extract_is_not_typed(scenario):
    scenario.write_credits(D, credit("C1"))
    scenario.write_transactions(D, sale("T1"))
    scenario._prepare(D)
    daily.extract(D, scenario.settings)
    scenario.write_transactions(D, sale("T1", "5.00"))
    with pytest.raises(InputFileError, match=r"transactions_20260105\.csv: changed or removed"):
        for model in models.DAILY_MODELS[:3]:
            models.build_for_date(D, model.name, scenario.settings)
    assert scenario.query("select count(*) from staging.typed_files") == [(0,)]


# The versions an extract supersedes are dated when it is typed, so the transactions known at D
# are a filter; they must be what a pass over every extract up to D would pick.

KNOWN = (
    "select txn_id, status, amount::varchar"
    " from intermediate.int_imaginepay__transactions_known_at_date order by txn_id"
)
EVERY_EXTRACT_UP_TO = """
    select txn_id, status, amount::varchar from staging.stg_imaginepay__transactions
    where dq_error is null and file_date <= ?
    qualify row_number() over (partition by txn_id order by file_date desc) = 1
    order by txn_id
"""


def known_on_each_day(scenario: Scenario, days: list[dt.date]) -> list[list[tuple]]:
    known = []
    for day in days:
        scenario.decide(day)
        known.append(scenario.query(KNOWN))
        assert known[-1] == scenario.query(EVERY_EXTRACT_UP_TO, [day]), day
    return known


def test_the_known_version_holds_whatever_order_extracts_come_in_and_change(scenario):
    days = [D + dt.timedelta(days=n) for n in range(4)]
    for day in days:
        scenario.write_credits(day, credit("C1", "1.00"))
    scenario.write_transactions(days[0], sale("T1", status="PENDING"), sale("T2"), sale("T3"))
    scenario.write_transactions(days[1], sale("T1"), sale("T3", "50.00"))
    # T3's last version does not read: its version of day 1 stays the known one.
    scenario.write_transactions(days[3], sale("T1", status="VOIDED"), sale("T3", "abc"))
    scenario.decide(days[3])
    # Day 2's extract arrives after day 3's was typed.
    scenario.write_transactions(days[2], sale("T1", "90.00"), sale("T2", status="VOIDED"))
    assert known_on_each_day(scenario, days) == [
        [("T1", "PENDING", "100.00"), ("T2", "SETTLED", "100.00"), ("T3", "SETTLED", "100.00")],
        [("T1", "SETTLED", "100.00"), ("T2", "SETTLED", "100.00"), ("T3", "SETTLED", "50.00")],
        [("T1", "SETTLED", "90.00"), ("T2", "VOIDED", "100.00"), ("T3", "SETTLED", "50.00")],
        [("T1", "VOIDED", "100.00"), ("T2", "VOIDED", "100.00"), ("T3", "SETTLED", "50.00")],
    ]
    # Day 1's extract changes: T1 leaves it, so on day 1 its version of day 0 is known again.
    scenario.write_transactions(days[1], sale("T3", "60.00"))
    assert known_on_each_day(scenario, days)[1] == [
        ("T1", "PENDING", "100.00"),
        ("T2", "SETTLED", "100.00"),
        ("T3", "SETTLED", "60.00"),
    ]


def test_line_numbers_hold_in_an_extract_typed_in_parallel(scenario):
    lines = [
        f"L{n},CL1,A1,SALE,,,1.00,2026-01-01,SETTLED,CREDIT,PIN,12/27,tok,1111"
        for n in range(2, 400_002)
    ]
    path = scenario.write_transactions(D)
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    scenario.write_credits(D, credit("C1"))
    scenario.decide()
    assert scenario.query(
        "select count(*), count(*) filter (where txn_id = 'L' || line_number) "
        "from staging.stg_imaginepay__transactions"
    ) == [(400_000, 400_000)]
