"""Property tests: the pipeline against the independent reference of tests/reference.py.

Hypothesis draws small multi-client inputs near the rule boundaries (statuses, card types and
CVMs, card expiry around a month end, refund windows, thresholds, zero and negative credits,
empty accounts, duplicate ids, malformed rows, blanks around fields, lower case codes, quoting)
and checks that the pipeline and the reference give every credit the same (outcome,
reason_code, original_txn_id, refund_amount), write the same refund file (but for refund_id)
and quarantine the same lines, plus invariants that must hold whatever the rules say in detail.

Generation is "swarm" style: each example picks which dimensions are edgy (status, card, expiry,
dates, amounts, ...) and keeps the others on their happy value, so that every example reaches
deep rules (DUE, allocation of several credits to one sale) while the edgy ones vary.

The pipeline steps are called without the Great Expectations audit to keep the suite fast.
PROPERTY_EXAMPLES_SCALE=20 runs twenty times as many examples, for a long bug hunt.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
import random
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import reference as ref
from hypothesis import HealthCheck, Phase, given
from hypothesis import event as hypothesis_event
from hypothesis import note as hypothesis_note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from auto_refunds import daily, models
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

B = dt.date(2026, 3, 30)  # the backfill date, run after the others
D0 = dt.date(2026, 3, 31)  # a month end: cards expiring 03/26 are valid on D0, expired on D1
D1 = dt.date(2026, 4, 1)
D2 = dt.date(2026, 4, 2)
DAYS = (B, D0, D1, D2)

# Each tuple starts with its happy value; the others are the edgy ones.
EDGES = {
    "client": ("CL1", "CL2", "CL3", "CL4", "CL1"),  # CL4 has no client_rules row
    "account": ("A1", "A2"),
    "credit_account": ("A1", "A2", ""),
    "sale_amount": ("40", "40.00", "10", "25.50", "100", "15"),
    "credit_amount": ("10", "15", "10.00", "25.50", "0", "30", "5", "-5", "40", "60", "0.00"),
    "txn_offset": (1, 2, 0, 3, 4, 0, -1, 30, 31, 32, 180, 181, 182, 183, -2),  # days before D0
    "status": ("SETTLED", "PENDING", "settled", "DECLINED", "VOIDED", "SETTLED"),
    "card": (
        ("CREDIT", "SIGNATURE"),
        ("DEBIT", "PIN"),
        ("debit", "pin"),
        ("DEBIT", "SIGNATURE"),
        ("CREDIT", "PIN"),
        ("PREPAID", "NONE"),
        ("DEBIT", "NONE"),
        ("DEBIT", "PIN"),
    ),  # fmt: skip
    "card_exp": ("12/30", "03/26", "04/26", "02/26", "03/26"),
    "file_day": (B, D0, D1, D2, D0),  # the file a transaction first appears in
    "enabled": ("true", "TRUE", " True", "false", "FALSE"),
    "threshold": ("", "5", "20.00", "25.5", "10.01"),
    "window": ("", "3", "1", "2", "30", "181", "0"),
}
MALFORMED_TXN = (
    "amount", "date", "status", "type", "card_type", "cvm", "card_exp", "no_id", "no_token",
    "last4", "dup", "fields", "card_in_token", "card_in_last4", "card_in_amount",
)  # fmt: skip
# Test card numbers in the written forms CONTRACT 7 names.
TEST_CARDS = ("4111111111111111", "5555 5555 5555 4444", "3782-822463-10005")
MALFORMED_CREDIT = ("amount", "decimals", "date", "no_id", "dup", "dup_pool", "fields")
RULES_DEFECTS = (None, "enabled", "threshold", "window", "dup", "fields")

Q = Decimal("0.01")


def note(text: str) -> None:
    """hypothesis.note, and nothing outside a Hypothesis test."""
    with contextlib.suppress(InvalidArgument):
        hypothesis_note(text)


def event(text: str) -> None:
    with contextlib.suppress(InvalidArgument):
        hypothesis_event(text)


def money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Q)


class Gen:
    """Draws values; a dimension not chosen as edgy for this example keeps its happy value."""

    def __init__(self, draw):
        self.draw = draw
        edgy = draw(st.sets(st.sampled_from(sorted(EDGES))), label="edgy dimensions")
        self.edgy = edgy
        note(f"edgy dimensions: {sorted(edgy)}")

    def __call__(self, dim: str):
        values = EDGES[dim]
        if dim not in self.edgy:
            return values[0]
        return self.draw(st.sampled_from(values), label=dim)

    def one_of(self, values, label=None):
        return self.draw(st.sampled_from(values), label=label)

    def int(self, low, high, label=None) -> int:
        return self.draw(st.integers(low, high), label=label)


# --------------------------------------------------------------------------------------------
# Writing CSV lines with harmless noise (blanks around fields, RFC 4180 quoting)


def csv_line(values, rnd: random.Random) -> str:
    out = []
    for value in values:
        value = str(value)
        if any(c in value for c in ',"') or (value == value.strip() and rnd.random() < 0.1):
            value = '"' + value.replace('"', '""') + '"'
        elif value and rnd.random() < 0.08:
            # blanks around an unquoted field; blanks inside quotes have their own test below
            value = rnd.choice([" ", "  "]) + value + rnd.choice(["", " "])
        out.append(value)
    return ",".join(out)


def csv_file(header, rows, rnd) -> str:
    """rows are lists of fields, or ready-made (malformed) lines as str."""
    lines = [csv_line(r, rnd) if isinstance(r, list) else r for r in rows]
    return "\n".join([",".join(header), *lines]) + "\n"


# --------------------------------------------------------------------------------------------
# Input strategies


def draw_rules(g: Gen) -> list:
    rows = [[client, g("enabled"), g("threshold"), g("window")] for client in ("CL1", "CL2", "CL3")]
    defect = g.one_of(RULES_DEFECTS, "client_rules defect") if g.int(0, 2) == 0 else None
    if defect == "enabled":
        rows[2][1] = g.one_of(["yes", "1", ""])
    elif defect == "threshold":
        rows[2][2] = g.one_of(["1.234", "abc"])
    elif defect == "window":
        rows[2][3] = g.one_of(["x", "1.5"])
    elif defect == "dup":
        rows.append(["CL2", "true", "", ""])
    elif defect == "fields":
        rows[2] = ",".join(rows[2][:3])
    return rows


def card_fields(g: Gen, required: bool) -> list[str]:
    if not required and g.int(0, 1) == 0:
        return ["", "", "", "", ""]
    token = g.one_of(["tok-a", "tok,b", 'tok"c', "tok-d"])
    return [*g("card"), g("card_exp"), token, g.one_of(["1234", "0007"])]


def later_day(g: Gen, day: dt.date) -> dt.date | None:
    later = [d for d in DAYS if d > day]
    return g.one_of(later) if later else None


def draw_static_transactions(g: Gen) -> tuple[dict[dt.date, list], list[tuple[str, str]]]:
    """SALE rows, other REFUND rows, later status updates and malformed rows, by file date."""
    files: dict[dt.date, list] = defaultdict(list)
    sales = []
    for i in range(1, g.int(2, 11, "sales") + 1):
        txn_date = D0 - dt.timedelta(days=g("txn_offset"))
        row = [
            f"S{i}", g("client"), g("account"), g.one_of(["SALE", "SALE", "sale"]), "", "",
            g("sale_amount"), txn_date.isoformat(), g("status"), *card_fields(g, required=True),
        ]  # fmt: skip
        sales.append(row)
        day = g("file_day")
        files[day].append(row)
        if "status" in g.edgy and (later := later_day(g, day)) and g.int(0, 2) == 0:
            update = list(row)
            update[8] = g("status")  # a later file repeats the txn_id with a new status
            files[later].append(update)
    for i in range(1, g.int(0, 3, "refunds") + 1):
        sale = g.one_of(sales)
        row = [
            f"R{i}", sale[1], sale[2], g.one_of(["REFUND", "refund"]), sale[0], "",
            g.one_of(["15.25", "5", "10", "40", "30"]), g.one_of([D0, B, D1]).isoformat(),
            g("status"), *card_fields(g, required=False),
        ]  # fmt: skip
        day = g("file_day")
        files[day].append(row)
        if (later := later_day(g, day)) and g.int(0, 1) == 0:
            update = list(row)
            update[8] = g.one_of(EDGES["status"])
            files[later].append(update)
    for i in range(1, g.int(0, 3, "malformed transactions") + 1):
        # a row that would be a good candidate for CL1/A1 if it were read, then broken
        row = [
            f"X{i}", "CL1", "A1", "SALE", "", "", "50", D0.isoformat(), "SETTLED", "CREDIT",
            "SIGNATURE", "12/30", "tok-x", "4321",
        ]  # fmt: skip
        kind = g.one_of(MALFORMED_TXN, "malformed kind")
        rows = [row]
        if kind == "amount":
            row[6] = g.one_of(["0", "-5", "abc", "12.345", "", "0.00"])
        elif kind == "date":
            row[7] = g.one_of(["2026-02-30", "31/03/2026", ""])
        elif kind == "status":
            row[8] = g.one_of(["DONE", ""])
        elif kind == "type":
            row[3] = g.one_of(["VOID", ""])
        elif kind == "card_type":
            row[9] = g.one_of(["AMEX", ""])
        elif kind == "cvm":
            row[10] = g.one_of(["CHIP", ""])
        elif kind == "card_exp":
            row[11] = g.one_of(["3/26", "13/26", "0326", "03/2026", "00/27", ""])
        elif kind == "no_id":
            row[0] = g.one_of(["", "  "])
        elif kind == "no_token":
            row[12] = ""
        elif kind == "last4":
            row[13] = g.one_of(["12a4", "123", ""])
        elif kind == "dup":
            twin = list(row)
            twin[6] = "60"
            rows.append(twin)
        elif kind == "fields":
            rows = [",".join(row[:10])]
        elif kind == "card_in_token":
            row[12] = g.one_of(TEST_CARDS)
        elif kind == "card_in_last4":
            row[13] = g.one_of(TEST_CARDS)
        elif kind == "card_in_amount":
            row[6] = g.one_of(TEST_CARDS)
        files[g("file_day")].extend(rows)
    return files, [(sale[1], sale[2]) for sale in sales]


def draw_credits(g: Gen, sale_accounts: list[tuple[str, str]]) -> dict[dt.date, list]:
    """Credit snapshots; most credits are on an account that has sales, so the rules get deep."""
    files: dict[dt.date, list] = {day: [] for day in DAYS}
    for i in range(1, g.int(3, 12, "credits") + 1):
        if g.int(0, 4) > 0:
            client, account = g.one_of(sale_accounts)
        else:
            client, account = g("client"), g("credit_account")
        row = [
            f"K{i}",
            client,
            account,
            g("credit_amount"),
            (D0 - dt.timedelta(days=g.int(0, 3))).isoformat(),
        ]
        for day in DAYS:
            if day == D0 or g.int(0, 3) > 0:
                files[day].append(row)
    for day in DAYS:
        for j in range(1, (g.int(0, 2, "malformed credits") if g.int(0, 1) else 0) + 1):
            row = [f"Y{j}", "CL1", "A1", "10", D0.isoformat()]
            kind = g.one_of(MALFORMED_CREDIT, "malformed credit kind")
            rows = [row]
            if kind == "amount":
                row[3] = g.one_of(["abc", "1,5", ""])
            elif kind == "decimals":
                row[3] = "1.234"
            elif kind == "date":
                row[4] = g.one_of(["2026-13-01", "2026-02-29", ""])
            elif kind == "no_id":
                row[0] = " "
            elif kind == "dup":
                rows.append(list(row))
            elif kind == "dup_pool" and files[day]:
                rows = [list(g.one_of(files[day]))]  # a second row for a real credit_id
            elif kind == "fields":
                rows = ["Y9,CL1,A1,10"]
            files[day].extend(rows)
    return files


# --------------------------------------------------------------------------------------------
# The pipeline, driven through its step functions


class Pipeline:
    def __init__(self, root: Path, monkeypatch):
        monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
        monkeypatch.setenv("AUTO_REFUNDS_LOCK_TIMEOUT_SECONDS", "5")
        self.settings = Settings.from_env()
        self.layout = self.settings.layout
        self.layout.credits(D0).parent.mkdir(parents=True, exist_ok=True)
        self.layout.transactions(D0).parent.mkdir(parents=True, exist_ok=True)
        self.rules_csv = ""
        self.credits_csv: dict[dt.date, str] = {}
        self.transactions_csvs: dict[dt.date, str] = {}

    def write_rules(self, content: str) -> None:
        self.rules_csv = content
        self.layout.client_rules.write_text(content)

    def write_credits(self, day: dt.date, content: str) -> None:
        self.credits_csv[day] = content
        self.layout.credits(day).write_text(content)

    def write_transactions(self, day: dt.date, content: str) -> None:
        self.transactions_csvs[day] = content
        self.layout.transactions(day).write_text(content)

    def run(self, day: dt.date) -> None:
        daily.extract(day, self.settings)
        for model in models.DAILY_MODELS:
            models.build_for_date(day, model.name, self.settings)
        daily.publish(day, self.settings)

    def query(self, sql: str, params=None) -> list[tuple]:
        with connect(self.settings) as con:
            return con.execute(sql, params or []).fetchall()

    def outcomes(self, day: dt.date) -> list[tuple]:
        rows = self.query(
            """
            select credit_id, outcome, reason_code, original_txn_id,
                case when outcome = 'DUE' then credit_amount end
            from credit_outcomes where as_of_date = ?
            """,
            [day],
        )
        return [
            (cid, outcome, reason, txn, money(amount)) for cid, outcome, reason, txn, amount in rows
        ]

    def priors(self, day: dt.date) -> list[ref.PriorRefund]:
        rows = self.query(
            """
            select refund_id, credit_id, original_txn_id, refund_amount, requested_date,
                status = 'DECLINED'
            from refund_ledger where requested_date <> ?
            """,
            [day],
        )
        return [ref.PriorRefund(*row) for row in rows]

    def quarantine(self, day: dt.date) -> set[tuple[str, int]]:
        looked_at = {f"credits_{day:%Y%m%d}.csv", "client_rules.csv"}
        looked_at |= {f"transactions_{d:%Y%m%d}.csv" for d in self.transactions_csvs if d <= day}
        rows = self.query("select source_file, line_number from quarantine_rows")
        return {(f.removesuffix(".csv"), n) for f, n in rows if f in looked_at}

    def published(self, day: dt.date) -> list[dict] | None:
        if not self.layout.refunds_manifest(day).exists():
            return None
        with open(self.layout.refunds(day), newline="") as handle:
            return list(csv.DictReader(handle))

    def decline(self, refund_id: str) -> None:
        """What reconciliation does with a DECLINED payment row, as far as the rules care."""
        with connect(self.settings) as con:
            con.execute(
                "update refund_ledger set status = 'DECLINED' where refund_id = ?", [refund_id]
            )


def outcome_set(outcomes: list[ref.Outcome]) -> set[tuple]:
    return {
        (o.credit_id, o.outcome, o.reason_code, o.original_txn_id, money(o.refund_amount))
        for o in outcomes
    }


def expected_refund_rows(p: Pipeline, day: dt.date, expected: set) -> set:
    """The refund file of D the reference expects, without refund_id (not ours to derive)."""
    credits = {c.credit_id: c for c in ref.read_credits(p.credits_csv[day])[0]}
    known = ref.transactions_known_at(day, p.transactions_csvs)
    return {
        (credits[cid].client_id, credits[cid].account_id, cid, txn, known[txn].card_token, amount)
        for cid, outcome, _, txn, amount in expected
        if outcome == ref.DUE
    }


def published_rows(rows: list[dict]) -> set:
    return {
        (r["client_id"], r["account_id"], r["credit_id"], r["original_txn_id"], r["card_token"],
         money(r["refund_amount"]))
        for r in rows
    }  # fmt: skip


def check_run(p: Pipeline, day: dt.date) -> bool:
    """Run D, compare with the reference and check the invariants; True when it published."""
    priors = p.priors(day)
    note(f"run {day} with prior refunds {priors}")
    expected = outcome_set(
        ref.decide(day, p.credits_csv[day], p.rules_csv, p.transactions_csvs, priors)
    )
    before = p.published(day)
    if before is not None and published_rows(before) != expected_refund_rows(p, day, expected):
        # CONTRACT 4: a rerun that would change a published refund file fails, leaving it as is
        outcomes_before = sorted(p.outcomes(day), key=str)
        with pytest.raises(Exception) as failure:
            p.run(day)
        note(f"rerun of {day} failed as it must: {failure.value}")
        event("rerun refused: the published file would change")
        assert p.published(day) == before
        assert sorted(p.outcomes(day), key=str) == outcomes_before
        return False
    p.run(day)
    actual = p.outcomes(day)
    for _, outcome, reason, _, _ in actual:
        event(f"outcome {reason or outcome}")

    # every readable credit of the snapshot has exactly one outcome
    credit_ids = [row[0] for row in actual]
    assert len(credit_ids) == len(set(credit_ids)), f"{day}: a credit with two outcomes: {actual}"
    assert set(credit_ids) == {c.credit_id for c in ref.read_credits(p.credits_csv[day])[0]}

    # the DUE total against each sale is within its remaining
    remaining = ref.remaining_by_sale(ref.transactions_known_at(day, p.transactions_csvs), priors)
    due = defaultdict(Decimal)
    for _, outcome, _, txn, amount in actual:
        if outcome == ref.DUE:
            due[txn] += amount
    for txn, total in due.items():
        assert total <= remaining[txn], (
            f"{day}: DUE {total} against {txn}, remaining {remaining[txn]}"
        )
    if len(due) < sum(1 for row in actual if row[1] == ref.DUE):
        event("several credits DUE against one sale")

    # the same decisions as the reference
    only_pipeline = sorted(set(actual) - expected, key=str)
    only_reference = sorted(expected - set(actual), key=str)
    assert not only_pipeline and not only_reference, (
        f"{day}: pipeline only {only_pipeline}; reference only {only_reference}"
    )
    assert published_rows(p.published(day)) == expected_refund_rows(p, day, expected)
    expected_q = ref.quarantine(day, p.credits_csv[day], p.rules_csv, p.transactions_csvs)
    assert p.quarantine(day) == expected_q
    return True


def setup_inputs(g: Gen, rnd: random.Random, p: Pipeline) -> dict[dt.date, list]:
    p.write_rules(csv_file(ref.CLIENT_RULES_HEADER, draw_rules(g), rnd))
    static, sale_accounts = draw_static_transactions(g)
    for day, rows in draw_credits(g, sale_accounts).items():
        p.write_credits(day, csv_file(ref.CREDITS_HEADER, rows, rnd))
    note(f"client_rules.csv:\n{p.rules_csv}")
    for day in DAYS:
        note(f"credits_{day:%Y%m%d}.csv:\n{p.credits_csv[day]}")
    return static


SCALE = int(os.environ.get("PROPERTY_EXAMPLES_SCALE", "1"))
# Shrinking costs minutes at about a second per pipeline run; the notes printed with a failure
# already show every input file. PROPERTY_SHRINK=1 turns it on.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
if os.environ.get("PROPERTY_SHRINK") == "1":
    PHASES.append(Phase.shrink)
HYPOTHESIS = dict(
    deadline=None,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@hsettings(max_examples=20 * SCALE, **HYPOTHESIS)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_one_run_matches_reference(data, seed, monkeypatch):
    """One run of D1 over the files dated up to D1, with no refund requested before."""
    rnd = random.Random(seed)  # only for the harmless noise of csv_line
    with tempfile.TemporaryDirectory() as tmp:
        p = Pipeline(Path(tmp), monkeypatch)
        static = setup_inputs(Gen(data.draw), rnd, p)
        for day in (B, D0, D1):
            p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, static.get(day, []), rnd))
            note(f"transactions_{day:%Y%m%d}.csv:\n{p.transactions_csvs[day]}")
        assert check_run(p, D1)


def processor_rows(g: Gen, p: Pipeline, day: dt.date, sent: dict[str, list]) -> list:
    """ImaginePay's REFUND rows for the refunds of our published files, and status changes."""
    rows = []
    ledger = p.query(
        """
        select refund_id, client_id, account_id, original_txn_id, refund_amount
        from refund_ledger where requested_date < ? order by refund_id
        """,
        [day],
    )
    for refund_id, client, account, txn, amount in ledger:
        if refund_id in sent:
            if g.int(0, 1) == 0:
                update = list(sent[refund_id])
                update[8] = g.one_of(["SETTLED", "DECLINED", "VOIDED"])
                rows.append(update)
            continue
        status = g.one_of([None, "SETTLED", "PENDING", "DECLINED", "VOIDED"], "processor status")
        if status is None:
            continue
        if amount > 1 and g.int(0, 4, "partial refund") == 0:
            amount -= 1
        row = [
            f"P{len(sent) + 1}", client, account, "REFUND", txn, refund_id, str(amount),
            (day - dt.timedelta(days=1)).isoformat(), status, "", "", "", "", "",
        ]  # fmt: skip
        sent[refund_id] = row
        rows.append(row)
    return rows


def maybe_decline(g: Gen, p: Pipeline) -> None:
    sent = p.query("select refund_id from refund_ledger where status <> 'DECLINED' order by 1")
    if sent and g.int(0, 2, "decline?") == 0:
        p.decline(g.one_of([r[0] for r in sent], "declined refund"))


@hsettings(max_examples=10 * SCALE, **HYPOTHESIS)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_run_sequence_matches_reference(data, seed, monkeypatch):
    """D0, D1, D2, then reruns and a backfill of B, with declines and ImaginePay's refund rows."""
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        p = Pipeline(Path(tmp), monkeypatch)
        g = Gen(data.draw)
        static = setup_inputs(g, rnd, p)
        for day in (B, D0):
            p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, static.get(day, []), rnd))
        sent: dict[str, list] = {}
        published: dict[dt.date, set] = {}

        def run(day):
            if day not in p.transactions_csvs:
                rows = static.get(day, []) + processor_rows(g, p, day, sent)
                p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, rows, rnd))
            note(f"transactions_{day:%Y%m%d}.csv:\n{p.transactions_csvs[day]}")
            check_run(p, day)
            published[day] = {(r["refund_id"], r["credit_id"]) for r in p.published(day)}

        for day in (D0, D1, D2):
            run(day)
            maybe_decline(g, p)
        ops = data.draw(
            st.lists(st.sampled_from([B, D0, D1, D2, "decline"]), min_size=1, max_size=3), "ops"
        )
        for op in ops:
            if op == "decline":
                maybe_decline(g, p)
            else:
                run(op)

        # no credit is DUE on two dates, and a credit's refund_id never changes
        days_of_credit, refunds_of_credit = defaultdict(set), defaultdict(set)
        for day, pairs in published.items():
            for refund_id, credit_id in pairs:
                days_of_credit[credit_id].add(day)
                refunds_of_credit[credit_id].add(refund_id)
        assert all(len(days) == 1 for days in days_of_credit.values()), days_of_credit
        assert all(len(ids) == 1 for ids in refunds_of_credit.values()), refunds_of_credit
        # the ledger holds exactly the published refunds
        ledger = set(p.query("select refund_id, credit_id, requested_date from refund_ledger"))
        assert ledger == {(r, c, day) for day, pairs in published.items() for r, c in pairs}


def test_blanks_inside_quotes_are_trimmed_like_blanks_outside(tmp_path, monkeypatch):
    """The project's convention: fields are trimmed of surrounding blanks, quoted or not.

    A quoted field with blanks inside the quotes ('"  S1 "', '" 40 "') is read like the same
    field without quotes: the same ids, codes, amounts and dates, nothing quarantined, and no
    blank goes out in the refund file.
    """
    p = Pipeline(tmp_path / "data", monkeypatch)
    p.write_rules(",".join(ref.CLIENT_RULES_HEADER) + '\nCL1,"true ",,\n')
    credits = '"  K1 ","CL1 ",A1," 10.00",2026-03-28'
    sale = (
        '"  S1 ",CL1,A1,"SALE ",,," 40 "," 2026-03-30"," SETTLED",CREDIT,SIGNATURE,'
        '"12/30 "," tok "," 1234"'
    )
    p.write_credits(D0, ",".join(ref.CREDITS_HEADER) + f"\n{credits}\n")
    p.write_transactions(D0, ",".join(ref.TRANSACTIONS_HEADER) + f"\n{sale}\n")
    expected = outcome_set(ref.decide(D0, p.credits_csv[D0], p.rules_csv, p.transactions_csvs, []))
    assert expected == {("K1", ref.DUE, None, "S1", money("10"))}

    p.run(D0)
    assert p.query("select source_file, line_number, error from quarantine_rows") == []
    assert set(p.outcomes(D0)) == expected
    assert published_rows(p.published(D0)) == {("CL1", "A1", "K1", "S1", "tok", money("10"))}


# The transactions known at D are kept incrementally: each typed extract dates the versions it
# supersedes. Whatever order extracts are written, rewritten and typed in, and whichever dates
# run, the view must pick what a pass over every extract up to D picks.

SUPERSESSION_DAYS = [D0, D1, D2]
KNOWN_VERSIONS_MODELS = (
    "stg_imaginepay__transactions",
    "int_imaginepay__transactions_known_at_date",
)


@st.composite
def extract_csv(draw) -> str:
    """A version of T1 and of T2 each, or none: readable, unreadable, or on two lines of the
    file (both quarantined)."""
    lines = []
    for txn_id in ("T1", "T2"):
        version = draw(st.sampled_from(["absent", "10.00", "20.00", "abc", "twice"]))
        amounts = {"absent": [], "twice": ["10.00", "30.00"]}.get(version, [version])
        lines += [
            f"{txn_id},CL1,A1,SALE,,,{amount},2026-03-01,SETTLED,CREDIT,PIN,12/30,tok,1234\n"
            for amount in amounts
        ]
    return ",".join(ref.TRANSACTIONS_HEADER) + "\n" + "".join(lines)


@hsettings(max_examples=15 * SCALE, **HYPOTHESIS)
@given(data=st.data())
def test_known_versions_match_a_pass_over_every_extract(data, monkeypatch):
    with tempfile.TemporaryDirectory() as root:
        p = Pipeline(Path(root), monkeypatch)
        p.write_rules(",".join(ref.CLIENT_RULES_HEADER) + "\nCL1,true,,\n")
        for day in SUPERSESSION_DAYS:
            p.write_credits(day, ",".join(ref.CREDITS_HEADER) + "\nK1,CL1,A1,1.00,2026-03-28\n")
            p.write_transactions(day, ",".join(ref.TRANSACTIONS_HEADER) + "\n")
        steps = data.draw(
            st.lists(
                st.tuples(st.sampled_from(SUPERSESSION_DAYS), st.booleans()),
                min_size=6,
                max_size=12,
            )
        )
        for day, rewrite in [*steps, (D2, False)]:
            if rewrite:
                p.write_transactions(day, data.draw(extract_csv()))
                continue
            daily.extract(day, p.settings)
            for model in KNOWN_VERSIONS_MODELS:
                models.build_for_date(day, model, p.settings)
            assert p.query(
                "select txn_id, source_file, line_number"
                " from intermediate.int_imaginepay__transactions_known_at_date order by all"
            ) == p.query(
                """
                select txn_id, source_file, line_number
                from staging.stg_imaginepay__transactions
                where dq_error is null and file_date <= ?
                qualify row_number() over (partition by txn_id order by file_date desc) = 1
                order by all
                """,
                [day],
            ), day
