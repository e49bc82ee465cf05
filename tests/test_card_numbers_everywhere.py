"""CONTRACT 7 as an auditor tries it: test card numbers, plain, spaced and dashed, planted in
every field of every input kind, one daily and one reconciliation run, then the operator's
scanner finds none anywhere the product writes (warehouse, outputs, logs), and each planted row
was kept, quarantined or masked as the contract says.

test_card_scan.py shows that the scanner does find a planted number, so this test can fail
(and it did, with the landing masking switched off: the landed lines held the numbers)."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr, redirect_stdout

import pytest
from scenario import D, Scenario, credit, csv_text, sale

from auto_refunds import card_numbers, card_scan, cli
from auto_refunds.field_masking import mask_fields
from auto_refunds.layout import (
    CARD_FIELDS,
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    PAYMENTS_HEADER,
    TRANSACTIONS_HEADER,
    is_identifier,
)
from auto_refunds.settings import Settings

# One test number of a brand in each written form CONTRACT 7 names.
CARDS = {
    "plain": "4111111111111111",
    "spaced": "5555 5555 5555 4444",
    "dashed": "3782-822463-10005",
}


def planted(base: tuple, header: tuple[str, ...], tag: str) -> dict[tuple[str, str], tuple]:
    """{(field, form): ``base`` with that field holding the card number in that form}; every
    row's first field (its id) made unique with ``tag`` unless the card number is its id."""
    rows = {}
    for at, field in enumerate(header):
        for form, card in CARDS.items():
            row = list(base)
            row[0] = f"{tag}{at}{form}"
            row[at] = card
            rows[field, form] = tuple(row)
    return rows


def payment_row(payment_id: str, refund_id: str, amount: str, **fields: str) -> tuple:
    row = {
        "payment_id": payment_id,
        "client_id": "CL1",
        "account_id": "A1",
        "txn_id": f"IP-{payment_id}",
        "refund_id": refund_id,
        "payment_amount": amount,
        "status": "APPROVED",
        "response_code": "00",
        "response_message": "Approved",
        "processed_date": D.isoformat(),
    } | fields
    return tuple(row[name] for name in PAYMENTS_HEADER)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """What the runs log, as a task log folder the scanner reads."""
    folder = tmp_path_factory.mktemp("task-logs")
    handler = logging.FileHandler(folder / "attempt=1.log")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield folder
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


@pytest.fixture(scope="module")
def ran(tmp_path_factory, logs):
    """The planted inputs, then a daily and a reconciliation run of D (once for the module:
    the tests only read what they left); the scenario and what the runs printed."""
    data = tmp_path_factory.mktemp("data")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTO_REFUNDS_DATA_DIR", str(data))
        scenario = Scenario(Settings.from_env())
        credits = planted(credit("PC", "10.00"), CREDITS_HEADER, "PC")
        rules = planted(("PCL", "true", "", ""), CLIENT_RULES_HEADER, "PCL")
        sales = planted(sale("PT", "1.00", client="CL2", account="A9"), TRANSACTIONS_HEADER, "PT")
        scenario.write_rules(("CL1", "true", "", ""), ("CL2", "true", "", ""), *rules.values())
        scenario.write_credits(D, credit("C1", "50.00"), credit("C2", "20.00"), *credits.values())
        scenario.write_transactions(D, sale("T1", "500.00"), *sales.values())
        scenario._prepare(D)
        with redirect_stdout(printed), redirect_stderr(printed):
            assert cli.main(["run-daily", "--date", D.isoformat()]) == 0
        refunds = dict(scenario.query("select credit_id, refund_id from refund_ledger"))
        answers = [
            payment_row("P1", refunds["C1"], "-50.00"),
            payment_row(
                "P2",
                refunds["C2"],
                "-20.00",
                status="DECLINED",
                response_code="14",
                response_message=f"card {CARDS['spaced']} invalid",
            ),
            *planted(payment_row("PP", "ARUNKNOWN", "-1.00"), PAYMENTS_HEADER, "PP").values(),
        ]
        path = scenario.layout.payments(D)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(csv_text(PAYMENTS_HEADER, answers))
        with redirect_stdout(printed), redirect_stderr(printed):
            assert cli.main(["run-reconciliation", "--date", D.isoformat()]) == 0
        yield scenario, printed.getvalue()


def test_the_scanner_finds_no_card_number_after_both_runs(ran, logs):
    scenario, printed = ran
    findings = list(card_scan.scan(scenario.settings, [logs]))
    assert findings == []
    assert not card_numbers.contains(printed)
    # The runs did log, and published: the scan looked at something.
    assert (logs / "attempt=1.log").stat().st_size > 0
    assert scenario.layout.refunds(D).exists()


def test_a_card_number_in_a_card_field_quarantines_the_row_naming_the_field(ran):
    scenario, _ = ran
    errors = dict(
        scenario.query(
            "select line_number, error from quarantine_rows where source_file like 'transactions%'"
        )
    )
    for field in CARD_FIELDS:
        lines = [line for line, error in errors.items() if f"{field} holds a card number" in error]
        assert len(lines) == len(CARDS), field


def test_identifiers_are_kept_as_they_are(ran):
    scenario, _ = ran
    outcomes = {row[0] for row in scenario.query("select credit_id from marts.credit_outcomes")}
    assert set(CARDS.values()) <= outcomes
    refund_file = scenario.layout.refunds(D).read_text()
    assert CARDS["plain"] in refund_file
    landed = [
        row[0]
        for row in scenario.query("select raw_line from landing.imagineone__credits")
        if row[0].startswith(CARDS["plain"] + ",")
    ]
    assert landed == [f"{CARDS['plain']},CL1,A1,10.00,2026-01-04"]


def test_other_fields_are_masked_where_they_are_kept(ran):
    scenario, _ = ran
    for table, header in (
        ("landing.imagineone__credits", CREDITS_HEADER),
        ("landing.imagineone__client_rules", CLIENT_RULES_HEADER),
        ("landing.imaginepay__payments", PAYMENTS_HEADER),
    ):
        lines = [row[0] for row in scenario.query(f"select raw_line from {table}")]
        masked = [line for line in lines if "***" in line]
        others = [field for field in header if not is_identifier(field)]
        # The declined answer's message holds one too.
        also = 1 if table == "landing.imaginepay__payments" else 0
        assert len(masked) == len(others) * len(CARDS) + also, table
    declined = "select response_message from refund_ledger where status = 'DECLINED'"
    assert scenario.query(declined) == [("card ************4444 invalid",)]


def test_every_planted_row_that_is_not_an_id_or_free_text_is_quarantined(ran):
    scenario, _ = ran
    quarantined = dict(
        scenario.query(
            "select split_part(source_file, '_', 1), count(*) from quarantine_rows group by 1"
        )
    )
    quarantined |= dict(
        scenario.query(
            "select split_part(source_file, '_', 1), count(*) "
            "from marts.reconciliation_quarantine_rows group by 1"
        )
    )
    # The contract checks no value of these: masked, and the row goes on.
    free_text = {"response_message", "response_code"}
    for kind, header in (
        ("credits", CREDITS_HEADER),
        ("client", CLIENT_RULES_HEADER),
        ("transactions", TRANSACTIONS_HEADER),
        ("payments", PAYMENTS_HEADER),
    ):
        typed = [f for f in header if not is_identifier(f) and f not in free_text]
        assert quarantined.get(kind, 0) == len(typed) * len(CARDS), kind


def test_a_planted_row_differs_from_its_base_in_the_planted_field_and_its_id_only():
    base = credit("PC", "10.00")
    rows = planted(base, CREDITS_HEADER, "PC")
    assert len(rows) == len(CREDITS_HEADER) * len(CARDS)
    for (field, form), row in rows.items():
        changed = [f for f, a, b in zip(CREDITS_HEADER, base, row, strict=True) if a != b]
        assert set(changed) <= {field, "credit_id"}, (field, form)


@pytest.mark.parametrize(
    ("line", "landed"),
    [
        ("C1,CL1,A1,100.00,2026-01-04", "C1,CL1,A1,100.00,2026-01-04"),
        # An id is kept as it is; the line is then landed as it came.
        ("4111111111111111,CL1,A1,10.00,2026-01-04", "4111111111111111,CL1,A1,10.00,2026-01-04"),
        (
            "4111111111111111, CL1 ,A1,4111 1111 1111 1111,2026-01-04",
            "4111111111111111,CL1,A1,************1111,2026-01-04",
        ),
        (
            'C1,"CL,1",A1,"x ""4111-1111-1111-1111"" y",2026-01-04',
            'C1,"CL,1",A1,"x ""************1111"" y",2026-01-04',
        ),
        # Not one record of the header's width, broken quoting: masked whole.
        ("4111111111111111,CL1,A1,10.00", "************1111,CL1,A1,10.00"),
        ('4111111111111111,"CL1,A1,10.00,2026-01-04', '************1111,"CL1,A1,10.00,2026-01-04'),
        # Not UTF-8: masked but for its first field, its id (a repeat of it must still count).
        (
            "\x014111111111111111,CL1,A1,10.00,2026-01-04",
            "\x014111111111111111,CL1,A1,10.00,2026-01-04",
        ),
        (
            "\x01C1,CL1,A1,4111111111111111,2026-01-04",
            "\x01C1,CL1,A1,************1111,2026-01-04",
        ),
    ],
)
def test_a_line_is_landed_with_the_card_numbers_of_its_other_fields_masked(line, landed):
    kept = [at for at, field in enumerate(CREDITS_HEADER, 1) if is_identifier(field)]
    assert mask_fields(line, len(CREDITS_HEADER), kept) == landed


def test_validation_results_are_written_whole_masked_and_without_long_digit_runs(tmp_path):
    from auto_refunds.quality import _write_results

    path = tmp_path / "suite.json"
    path.write_text("old\n")
    # A ratio as GX writes it: its decimals read as a card number (Luhn-valid, standing alone).
    ratio = 0.17316017316017315
    assert card_numbers.contains(repr(ratio))
    _write_results(path, {"missing_percent": ratio, "partial_unexpected_list": [CARDS["plain"]]})
    assert not card_numbers.contains(path.read_text())
    assert list(card_scan.scan_file(path)) == []
    assert [p.name for p in tmp_path.iterdir()] == ["suite.json"]
