"""Property tests: the pipeline against the independent reference of tests/reference.py.

Hypothesis draws small multi-client inputs near the rule boundaries (statuses, card types and
CVMs, card expiry around a month end, refund windows, thresholds, zero and negative credits,
empty accounts, duplicate ids, malformed rows, noisy blanks, case and quoting) and checks that the
pipeline and the reference give every credit the same (outcome, reason_code, original_txn_id,
refund_amount) and quarantine the same lines, plus invariants that must hold whatever the rules
say in detail.

The pipeline steps are called without the Great Expectations audit to keep the suite fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, note, settings as hsettings, strategies as st

import reference as ref
from auto_refunds import daily, models
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

B = dt.date(2026, 3, 30)  # backfill date, run last
D0 = dt.date(2026, 3, 31)  # a month end: cards expiring 03/26 are valid on D0, expired on D1
D1 = dt.date(2026, 4, 1)
D2 = dt.date(2026, 4, 2)
DAYS = (B, D0, D1, D2)

RULED_CLIENTS = ("CL1", "CL2", "CL3")
CLIENTS = ("CL1", "CL1", "CL2", "CL1", "CL3", "CL4")  # CL4 has no client_rules row
ACCOUNTS = ("A1", "A2")
SALE_AMOUNTS = ("40", "40.00", "10", "25.50", "100")
REFUND_AMOUNTS = ("15.25", "5", "10", "40")
CREDIT_AMOUNTS = ("10", "15", "10.00", "25.50", "30", "5", "40", "60", "100.01", "0", "0.00", "-5")
# days before D0; negative = after D0
TXN_OFFSETS = (1, 2, 0, 3, 1, 4, 0, -1, 2, 30, 31, 32, 180, 181, 182, 183, -2)
STATUSES = ("SETTLED", "SETTLED", "PENDING", "SETTLED", "settled", "DECLINED", "VOIDED")
CARD_TYPES = ("CREDIT", "DEBIT", "PREPAID", "debit", "DEBIT")
CVMS = ("SIGNATURE", "PIN", "NONE", "pin", "PIN")
CARD_EXPS = ("12/30", "03/26", "12/30", "04/26", "03/26", "02/26")

Q = Decimal("0.01")


def money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Q)


# --------------------------------------------------------------------------------------------
# Writing CSV lines with harmless noise (blanks around fields, RFC 4180 quoting)


def csv_line(values, rnd: random.Random) -> str:
    out = []
    for value in values:
        value = str(value)
        if value and rnd.random() < 0.08:
            value = rnd.choice([" ", "  "]) + value + rnd.choice(["", " "])
        if any(c in value for c in ',"') or rnd.random() < 0.1:
            value = '"' + value.replace('"', '""') + '"'
        out.append(value)
    return ",".join(out)


def csv_file(header, rows, rnd) -> str:
    return "\n".join([",".join(header), *(csv_line(r, rnd) if isinstance(r, list) else r for r in rows)]) + "\n"


# --------------------------------------------------------------------------------------------
# Input strategies


def draw_rules(draw) -> list:
    rows = []
    for client in RULED_CLIENTS:
        rows.append(
            [
                client,
                draw(st.sampled_from(["true", "TRUE", "true", " True", "true", "false"])),
                draw(st.sampled_from(["", "", "5", "20.00", "25.5"])),
                draw(st.sampled_from(["", "3", "", "1", "", "2", "30", "181"])),
            ]
        )
    defect = draw(st.sampled_from([None, None, None, None, "enabled", "threshold", "window", "dup", "fields"]))
    if defect == "enabled":
        rows[2][1] = draw(st.sampled_from(["yes", "1", ""]))
    elif defect == "threshold":
        rows[2][2] = draw(st.sampled_from(["1.234", "abc"]))
    elif defect == "window":
        rows[2][3] = draw(st.sampled_from(["x", "1.5"]))
    elif defect == "dup":
        rows.append(["CL2", "true", "", ""])
    elif defect == "fields":
        rows[2] = ",".join(rows[2][:3])
    return rows


def card_fields(draw, required: bool) -> list[str]:
    if not required and draw(st.booleans()):
        return ["", "", "", "", ""]
    token = draw(st.sampled_from(["tok-a", "tok,b", 'tok"c', "tok-d"]))
    return [
        draw(st.sampled_from(CARD_TYPES)),
        draw(st.sampled_from(CVMS)),
        draw(st.sampled_from(CARD_EXPS)),
        token,
        draw(st.sampled_from(["1234", "0007"])),
    ]


def draw_static_transactions(draw) -> tuple[dict[dt.date, list], list[tuple[str, str]]]:
    """SALE rows, other merchants' REFUND rows, later status updates and malformed rows."""
    files: dict[dt.date, list] = defaultdict(list)
    sales = []
    for i in range(1, draw(st.integers(3, 10)) + 1):
        txn_date = D0 - dt.timedelta(days=draw(st.sampled_from(TXN_OFFSETS)))
        row = [
            f"S{i}",
            draw(st.sampled_from(CLIENTS)),
            draw(st.sampled_from(ACCOUNTS)),
            draw(st.sampled_from(["SALE", "SALE", "sale"])),
            "",
            "",
            draw(st.sampled_from(SALE_AMOUNTS)),
            txn_date.isoformat(),
            draw(st.sampled_from(STATUSES)),
            *card_fields(draw, required=True),
        ]
        sales.append(row)
        day = draw(st.sampled_from(DAYS))
        files[day].append(row)
        later = [d for d in DAYS if d > day]
        if later and draw(st.integers(0, 3)) == 3:
            update = list(row)
            update[8] = draw(st.sampled_from(STATUSES))
            files[draw(st.sampled_from(later))].append(update)
    for i in range(1, draw(st.integers(0, 3)) + 1):
        sale = draw(st.sampled_from(sales))
        row = [
            f"R{i}",
            sale[1],
            sale[2],
            draw(st.sampled_from(["REFUND", "refund"])),
            sale[0],
            "",
            draw(st.sampled_from(REFUND_AMOUNTS)),
            draw(st.sampled_from([D0, B, D1])).isoformat(),
            draw(st.sampled_from(STATUSES)),
            *card_fields(draw, required=False),
        ]
        day = draw(st.sampled_from(DAYS))
        files[day].append(row)
        later = [d for d in DAYS if d > day]
        if later and draw(st.booleans()):
            update = list(row)
            update[8] = draw(st.sampled_from(STATUSES))
            files[draw(st.sampled_from(later))].append(update)
    for i in range(1, draw(st.integers(0, 3)) + 1):
        # a row that would be a good candidate for CL1/A1 if it were read, then broken
        row = [f"X{i}", "CL1", "A1", "SALE", "", "", "50", D0.isoformat(), "SETTLED",
               "CREDIT", "SIGNATURE", "12/30", "tok-x", "4321"]
        kind = draw(st.sampled_from([
            "amount", "date", "status", "type", "card_type", "cvm", "card_exp", "no_id",
            "no_token", "last4", "dup", "fields",
        ]))
        rows = [row]
        if kind == "amount":
            row[6] = draw(st.sampled_from(["0", "-5", "abc", "12.345", ""]))
        elif kind == "date":
            row[7] = draw(st.sampled_from(["2026-02-30", "31/03/2026", ""]))
        elif kind == "status":
            row[8] = "DONE"
        elif kind == "type":
            row[3] = "VOID"
        elif kind == "card_type":
            row[9] = "AMEX"
        elif kind == "cvm":
            row[10] = "CHIP"
        elif kind == "card_exp":
            row[11] = draw(st.sampled_from(["3/26", "13/26", "0326", "03/2026"]))
        elif kind == "no_id":
            row[0] = ""
        elif kind == "no_token":
            row[12] = ""
        elif kind == "last4":
            row[13] = draw(st.sampled_from(["12a4", "123"]))
        elif kind == "dup":
            twin = list(row)
            twin[6] = "60"
            rows.append(twin)
        elif kind == "fields":
            rows = [",".join(row[:10])]
        files[draw(st.sampled_from(DAYS))].extend(rows)
    return files, [(sale[1], sale[2]) for sale in sales]


def draw_credits(draw, sale_accounts: list[tuple[str, str]]) -> dict[dt.date, list]:
    """Credit snapshots; most credits are on an account that has sales, so the rules get deep."""
    files: dict[dt.date, list] = {day: [] for day in DAYS}
    for i in range(1, draw(st.integers(4, 14)) + 1):
        if draw(st.integers(0, 3)) < 3:
            client, account = draw(st.sampled_from(sale_accounts))
        else:
            client, account = draw(st.sampled_from(CLIENTS)), draw(st.sampled_from(["A2", ""]))
        row = [
            f"K{i}",
            client,
            account,
            draw(st.sampled_from(CREDIT_AMOUNTS)),
            (D0 - dt.timedelta(days=draw(st.integers(0, 3)))).isoformat(),
        ]
        present = [draw(st.sampled_from([True, False, True])) for _ in DAYS]
        for day, there in zip(DAYS, present, strict=True):
            if there or day == D0:
                files[day].append(row)
    for day in DAYS:
        for j in range(1, draw(st.integers(0, 2)) + 1):
            row = [f"Y{j}", "CL1", "A1", "10", D0.isoformat()]
            kind = draw(st.sampled_from(["amount", "decimals", "date", "no_id", "dup", "dup_pool", "fields"]))
            rows = [row]
            if kind == "amount":
                row[3] = "abc"
            elif kind == "decimals":
                row[3] = "1.234"
            elif kind == "date":
                row[4] = "2026-13-01"
            elif kind == "no_id":
                row[0] = " "
            elif kind == "dup":
                rows.append(list(row))
            elif kind == "dup_pool" and files[day]:
                rows = [list(draw(st.sampled_from(files[day])))]
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
            daily.build_model(day, model.name, self.settings)
        daily.publish(day, self.settings)

    def query(self, sql: str, params=None) -> list[tuple]:
        with connect(self.settings) as con:
            return con.execute(sql, params or []).fetchall()

    def outcomes(self, day: dt.date) -> list[tuple]:
        return [
            (credit_id, outcome, reason, txn, money(amount))
            for credit_id, outcome, reason, txn, amount in self.query(
                """
                select credit_id, outcome, reason_code, original_txn_id,
                    case when outcome = 'DUE' then credit_amount end
                from credit_outcomes where as_of_date = ?
                """,
                [day],
            )
        ]

    def priors(self, day: dt.date) -> list[ref.PriorRefund]:
        return [
            ref.PriorRefund(*row)
            for row in self.query(
                """
                select refund_id, credit_id, original_txn_id, refund_amount, requested_date,
                    status = 'DECLINED'
                from refund_ledger where requested_date <> ?
                """,
                [day],
            )
        ]

    def quarantine(self, day: dt.date) -> set[tuple[str, int]]:
        looked_at = {f"credits_{day:%Y%m%d}.csv", "client_rules.csv"}
        looked_at |= {f"transactions_{d:%Y%m%d}.csv" for d in self.transactions_csvs if d <= day}
        return {
            (source_file.removesuffix(".csv"), line_number)
            for source_file, line_number in self.query("select source_file, line_number from quarantine_rows")
            if source_file in looked_at
        }

    def published(self, day: dt.date) -> list[dict] | None:
        path = self.layout.refunds(day)
        if not self.layout.refunds_manifest(day).exists():
            return None
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))

    def decline(self, refund_id: str) -> None:
        """What reconciliation does with a DECLINED payment row, as far as the rules care."""
        with connect(self.settings) as con:
            con.execute("update refund_ledger set status = 'DECLINED' where refund_id = ?", [refund_id])


def reference_for(p: Pipeline, day: dt.date) -> tuple[set, list[ref.PriorRefund]]:
    priors = p.priors(day)
    outcomes = ref.decide(day, p.credits_csv[day], p.rules_csv, p.transactions_csvs, priors)
    return {(o.credit_id, o.outcome, o.reason_code, o.original_txn_id, money(o.refund_amount)) for o in outcomes}, priors


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
        (r["client_id"], r["account_id"], r["credit_id"], r["original_txn_id"], r["card_token"], money(r["refund_amount"]))
        for r in rows
    }


def check_run(p: Pipeline, day: dt.date) -> bool:
    """Run D and compare with the reference; returns whether the run published."""
    expected, priors = reference_for(p, day)
    before = p.published(day)
    outcomes_before = sorted(p.outcomes(day), key=str)
    note(f"run {day}: priors {priors}")
    must_fail = before is not None and published_rows(before) != expected_refund_rows(p, day, expected)
    if must_fail:
        # CONTRACT 4: a rerun that would change a published refund file fails and leaves it as is
        with pytest.raises(Exception) as failure:
            p.run(day)
        note(f"rerun of {day} failed as it must: {failure.value}")
        event("rerun refused: the published file would change")
        assert p.published(day) == before
        assert sorted(p.outcomes(day), key=str) == outcomes_before
        return False
    p.run(day)

    actual = p.outcomes(day)
    # every readable credit of the snapshot has exactly one outcome
    credit_ids = [row[0] for row in actual]
    assert len(credit_ids) == len(set(credit_ids)), f"credit with two outcomes on {day}: {actual}"
    readable = {c.credit_id for c in ref.read_credits(p.credits_csv[day])[0]}
    assert set(credit_ids) == readable

    # the DUE total against each sale is within its remaining
    known = ref.transactions_known_at(day, p.transactions_csvs)
    remaining = ref.remaining_by_sale(known, priors)
    due = defaultdict(Decimal)
    for _, outcome, _, txn, amount in actual:
        if outcome == ref.DUE:
            due[txn] += amount
    for txn, total in due.items():
        assert total <= remaining[txn], f"{day}: DUE {total} against {txn}, remaining {remaining[txn]}"

    for _, outcome, reason, _, _ in actual:
        event(f"outcome {reason or outcome}")
    event(f"quarantined lines: {min(len(expected_q := ref.quarantine(day, p.credits_csv[day], p.rules_csv, p.transactions_csvs)), 3)}+")

    only_pipeline = sorted(set(actual) - expected, key=str)
    only_reference = sorted(expected - set(actual), key=str)
    assert not only_pipeline and not only_reference, (
        f"{day}: pipeline only {only_pipeline}; reference only {only_reference}"
    )
    assert published_rows(p.published(day)) == expected_refund_rows(p, day, expected)
    assert p.quarantine(day) == expected_q
    return True


def setup_inputs(data, rnd: random.Random, p: Pipeline) -> dict[dt.date, list]:
    p.write_rules(csv_file(ref.CLIENT_RULES_HEADER, draw_rules(data.draw), rnd))
    static, sale_accounts = draw_static_transactions(data.draw)
    for day, rows in draw_credits(data.draw, sale_accounts).items():
        p.write_credits(day, csv_file(ref.CREDITS_HEADER, rows, rnd))
    note(f"client_rules.csv:\n{p.rules_csv}")
    for day in DAYS:
        note(f"credits_{day:%Y%m%d}.csv:\n{p.credits_csv[day]}")
    return static


# PROPERTY_EXAMPLES_SCALE=20 for a long bug hunt; the default keeps the suite near 90 s.
SCALE = int(os.environ.get("PROPERTY_EXAMPLES_SCALE", "1"))
HYPOTHESIS = dict(
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@hsettings(max_examples=25 * SCALE, **HYPOTHESIS)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_one_run_matches_reference(data, seed, monkeypatch):
    """One run of D1 over every file dated up to D1, with no refunds requested before."""
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        p = Pipeline(Path(tmp), monkeypatch)
        static = setup_inputs(data, rnd, p)
        for day in (B, D0, D1):
            p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, static.get(day, []), rnd))
            note(f"transactions_{day:%Y%m%d}.csv:\n{p.transactions_csvs[day]}")
        assert check_run(p, D1)


def processor_rows(data, p: Pipeline, day: dt.date, sent: dict[str, list]) -> list:
    """ImaginePay's REFUND rows for refunds from our published files, and later status changes."""
    rows = []
    for refund_id, credit_id, client, account, txn, amount, status in p.query(
        """
        select refund_id, credit_id, client_id, account_id, original_txn_id, refund_amount, status
        from refund_ledger where requested_date < ? order by refund_id
        """,
        [day],
    ):
        if refund_id in sent:
            if data.draw(st.booleans(), label=f"update {refund_id}"):
                update = list(sent[refund_id])
                update[8] = data.draw(st.sampled_from(["SETTLED", "DECLINED", "VOIDED"]))
                rows.append(update)
            continue
        processor_status = data.draw(
            st.sampled_from([None, "SETTLED", "PENDING", "DECLINED", "VOIDED"]), label=f"processor {refund_id}"
        )
        if processor_status is None:
            continue
        processor_amount = amount
        if amount > 1 and data.draw(st.integers(0, 4), label="partial") == 0:
            processor_amount = amount - 1
        row = [
            f"P{len(sent) + 1}", client, account, "REFUND", txn, refund_id, str(processor_amount),
            (day - dt.timedelta(days=1)).isoformat(), processor_status, "", "", "", "", "",
        ]
        sent[refund_id] = row
        rows.append(row)
    return rows


def maybe_decline(data, p: Pipeline) -> None:
    open_refunds = [r[0] for r in p.query("select refund_id from refund_ledger where status <> 'DECLINED' order by 1")]
    if open_refunds and data.draw(st.integers(0, 2), label="decline?") == 0:
        p.decline(data.draw(st.sampled_from(open_refunds), label="declined refund"))


@hsettings(max_examples=12 * SCALE, **HYPOTHESIS)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_run_sequence_matches_reference(data, seed, monkeypatch):
    """D0, D1, D2 in order, with declines, processor refunds of our refund_ids, reruns and a backfill."""
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        p = Pipeline(Path(tmp), monkeypatch)
        static = setup_inputs(data, rnd, p)
        for day in (B, D0):
            p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, static.get(day, []), rnd))
        sent: dict[str, list] = {}
        published_by_day: dict[dt.date, set] = {}

        def run(day):
            if day not in p.transactions_csvs:
                rows = static.get(day, []) + processor_rows(data, p, day, sent)
                p.write_transactions(day, csv_file(ref.TRANSACTIONS_HEADER, rows, rnd))
            note(f"transactions_{day:%Y%m%d}.csv:\n{p.transactions_csvs[day]}")
            check_run(p, day)
            published_by_day[day] = {(r["refund_id"], r["credit_id"]) for r in p.published(day)}

        for day in (D0, D1, D2):
            run(day)
            maybe_decline(data, p)
        for op in data.draw(st.lists(st.sampled_from([B, D0, D1, D2, "decline"]), min_size=1, max_size=3), label="ops"):
            if op == "decline":
                maybe_decline(data, p)
            else:
                run(op)

        # no credit is DUE on two dates, and a credit's refund_id never changes
        days_of_credit = defaultdict(set)
        refund_of_credit = defaultdict(set)
        for day, pairs in published_by_day.items():
            for refund_id, credit_id in pairs:
                days_of_credit[credit_id].add(day)
                refund_of_credit[credit_id].add(refund_id)
        assert all(len(days) == 1 for days in days_of_credit.values()), days_of_credit
        assert all(len(ids) == 1 for ids in refund_of_credit.values()), refund_of_credit
        # the ledger holds exactly the published refunds
        ledger = {(r, c, d) for r, c, d in p.query("select refund_id, credit_id, requested_date from refund_ledger")}
        assert ledger == {(r, c, day) for day, pairs in published_by_day.items() for r, c in pairs}
