"""``make soak``: a year in production, then the books.

    python benchmarks/soak.py [--nights 365] [--credits 300] [--seed 7] [--start 2026-03-02]
        [--data-dir DIR] [--keep]

Runs ``--nights`` scheduled nights in order on one warehouse, each as production runs it: the
credits ImagineOne posted leave the snapshot (``demo.run.drop_posted_credits``), the daily run
of D, the ImaginePay simulator's answer (``demo.imaginepay_simulator``, its usual mix), the
reconciliation of D with the dates before and after it that are answered but not reconciled.
Every run is the DAG's own steps (``pipeline.DAILY_STEPS``, ``RECONCILIATION_STEPS`` and the
``reconcile_*_dates`` steps), called one at a time in this process, so that two runs can take
turns step by step as Airflow runs a backfill beside the scheduled run.

Beside the usual mix, seeded events (``plan_events``):

- a late payment file: night L's answer arrives some nights later, so the reconciliation of L
  fails for want of it (the sensor gives up) and a later reconciliation finds it;
- a payment file sent twice: an earlier date's file arrives again, and its reconciliation runs
  again;
- a payment file re-sent under another date: ImaginePay sends an earlier date's answers again in
  place of night R's own file;
- each month, a SIGKILL of a random step at one of its crash points (``faults``), in a child
  process, then its retry here;
- a backfill of the week before the first night, beside the scheduled nights, step by step.

Then it checks the books (``check_books``) from the warehouse's tables and the files of the
outbox and the inbox, without the pipeline's own guards, prints a one-screen summary and exits 1
if any check fails. Each night's cost is the time of its scheduled steps; nights 26 to 30 and
the last five are compared (median), the nights with an injected event left out.

Over 300 lines: the year's runner, its events and the checker of the books share the plan and the
tally the summary prints.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from auto_refunds import pipeline  # noqa: E402
from auto_refunds.demo import imaginepay_simulator, sample_data  # noqa: E402
from auto_refunds.demo.run import drop_posted_credits  # noqa: E402
from auto_refunds.layout import Layout  # noqa: E402
from auto_refunds.models import DAILY_MODELS, RECONCILIATION_MODELS  # noqa: E402
from auto_refunds.sensors import PaymentFileMissing  # noqa: E402

log = logging.getLogger("soak")

# A refund unanswered this many days after its file date is aged (CONTRACT 5).
AGING_DAYS = 3
COST_WINDOW = 5


# -- the plan ---------------------------------------------------------------------------------
@dataclass
class Events:
    """Which night each event falls on (1-based night numbers)."""

    late_night: int | None = None
    late_by: int = AGING_DAYS + 1
    twice_night: int | None = None
    """After this night's reconciliation, the payment file of the night before arrives again."""
    resent_night: int | None = None
    resent_from: int | None = None
    """Night ``resent_night``'s payment file is ``resent_from``'s file again, under its date."""
    kill_nights: list[int] = field(default_factory=list)
    backfill_night: int | None = None
    backfill_days: int = 7


def _away_from(nights: int, rng: random.Random, low: int, high: int, taken: set[int]) -> int:
    """A night in [low, high], not taken, outside the windows the night cost compares."""
    windows = set(range(max(1, 31 - COST_WINDOW), 31)) | set(
        range(nights - COST_WINDOW - 1, nights + 1)
    )
    choices = [n for n in range(low, high + 1) if n not in taken and n not in windows]
    if not choices:
        choices = [n for n in range(low, high + 1) if n not in taken] or [low]
    night = rng.choice(choices)
    taken.add(night)
    return night


def plan_events(nights: int, seed: int, backfill_days: int = 7) -> Events:
    """The year's events, seeded: each on its own night, none in the compared windows."""
    rng = random.Random(f"soak-events:{seed}")
    taken: set[int] = set()
    last = max(2, nights - AGING_DAYS - 3)
    events = Events(backfill_days=backfill_days)
    events.late_night = _away_from(nights, rng, 2, max(2, min(last, nights // 3 + 2)), taken)
    taken.update(range(events.late_night, events.late_night + events.late_by + 1))
    events.twice_night = _away_from(nights, rng, 3, last, taken)
    events.resent_night = _away_from(nights, rng, 3, last, taken)
    events.resent_from = max(1, events.resent_night - 1 - rng.randrange(7))
    if events.resent_from in (events.late_night, events.resent_night):
        events.resent_from = max(1, events.resent_night - 1)
    events.backfill_night = _away_from(nights, rng, 2, max(2, nights // 2), taken)
    taken.update(range(events.backfill_night, events.backfill_night + 2))
    for month in range(max(1, nights // 30)):
        low, high = month * 30 + 1, min(nights, month * 30 + 30)
        events.kill_nights.append(_away_from(nights, rng, low, high, taken))
    return events


# -- kills ------------------------------------------------------------------------------------
CHILD = """
import datetime as dt, sys
from auto_refunds import pipeline
steps = {"daily": pipeline.DAILY_STEPS, "reconciliation": pipeline.RECONCILIATION_STEPS}
steps[sys.argv[1]][int(sys.argv[2])](dt.date.fromisoformat(sys.argv[3]))
"""


def crash_points(kind: str, step: pipeline.Step) -> list[str]:
    """The crash points ``step`` passes on its way (``faults``)."""
    if step.task_id == "refresh_worklist":
        return ["worklist_snapshot_mid_write", "worklist_snapshot_before_current"]
    if step.task_id in ("extract", "load"):
        return ["mid_load"]
    if step.task_id == "publish":
        if kind == "daily":
            return ["mid_file_write", "between_file_and_manifest", "between_manifest_and_ledger"]
        return ["between_ledger_and_postings"]
    models = {model.name: model for model in (*DAILY_MODELS, *RECONCILIATION_MODELS)}
    model = models.get(step.args[0]) if step.args else None
    if model is not None and model.materialized != "view":
        return ["mid_model"]
    return []


@contextlib.contextmanager
def reaped(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The child and whatever it started are gone after the block, whatever happens in it."""
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=120)


def kill_step(kind: str, index: int, day: dt.date, crash_at: str, data_dir: Path) -> str:
    """Run one step in a child process that SIGKILLs itself at ``crash_at``: how it ended."""
    env = {
        **os.environ,
        "AUTO_REFUNDS_DATA_DIR": str(data_dir),
        "AUTO_REFUNDS_CRASH_AT": crash_at,
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-c", CHILD, kind, str(index), day.isoformat()]
    with reaped(
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    ) as child:
        _, stderr = child.communicate(timeout=600)
    if child.returncode == -signal.SIGKILL:
        return "killed"
    if child.returncode == 0:
        return "finished before the crash point"
    return f"failed ({child.returncode}): {stderr.strip().splitlines()[-1:]}"


# -- runs, step by step -----------------------------------------------------------------------
@dataclass
class Tally:
    nights_run: int = 0
    night_seconds: dict[int, float] = field(default_factory=dict)
    retried: Counter = field(default_factory=Counter)
    failed_runs: list[str] = field(default_factory=list)
    expected_failures: list[str] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    tainted: set[int] = field(default_factory=set)


class Soak:
    def __init__(self, data_dir: Path, start: dt.date, nights: int, seed: int, events: Events):
        from auto_refunds.settings import Settings

        self.data_dir, self.start, self.nights, self.seed = data_dir, start, nights, seed
        self.events = events
        self.settings = Settings.from_env()
        self.layout: Layout = self.settings.layout
        self.rng = random.Random(f"soak-kills:{seed}")
        self.tally = Tally()
        # Late payment files by the night they arrive: (their date, their bytes).
        self.held: dict[dt.date, tuple[dt.date, bytes]] = {}
        self.backfilled: list[dt.date] = []
        self.began = time.perf_counter()

    def night(self, number: int) -> dt.date:
        return self.start + dt.timedelta(days=number - 1)

    # A run is a generator: each next() runs one step (or one event between steps) and yields
    # the seconds its steps took, so that runs of two dates can take turns.
    def daily(self, day: dt.date, kill: bool = False) -> Iterator[float]:
        drop_posted_credits(self.settings, day)
        yield from self.steps("daily", pipeline.DAILY_STEPS, day, kill)

    def reconciliation(self, day: dt.date, kill: bool = False) -> Iterator[float]:
        yield from self.steps("reconcile_earlier", (pipeline.RECONCILE_EARLIER_DATES,), day)
        try:
            yield from self.steps("reconciliation", pipeline.RECONCILIATION_STEPS, day, kill)
        except PaymentFileMissing as exc:
            # The sensor waits for the file, then gives up: the run fails, and a later
            # reconciliation takes the date up once its file is there.
            self.tally.expected_failures.append(f"reconciliation of {day}: {exc}")
        yield from self.steps("reconcile_later", (pipeline.RECONCILE_LATER_DATES,), day)

    def steps(self, kind: str, steps, day: dt.date, kill: bool = False) -> Iterator[float]:
        killed_at = None
        if kill:
            choices = [
                (index, point)
                for index, step in enumerate(steps)
                for point in crash_points(kind, step)
            ]
            killed_at = self.rng.choice(choices)
        for index, step in enumerate(steps):
            if killed_at and killed_at[0] == index:
                outcome = kill_step(kind, index, day, killed_at[1], self.data_dir)
                self.tally.kills.append(
                    f"{day} {kind} {step.task_id} at {killed_at[1]}: {outcome}, then retried"
                )
            yield self.attempt(kind, step, day)

    def attempt(self, kind: str, step: pipeline.Step, day: dt.date) -> float:
        """One task: a failure a retry can heal is retried once, as Airflow retries it."""
        started = time.perf_counter()
        try:
            step(day, self.settings)
        except PaymentFileMissing:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed task is counted, then retried
            self.tally.retried[f"{kind} {step.task_id}: {type(exc).__name__}"] += 1
            log.warning("%s %s of %s failed, retried: %s", kind, step.task_id, day, exc)
            try:
                step(day, self.settings)
            except Exception as again:  # noqa: BLE001 - the run failed; the books tell the cost
                self.tally.failed_runs.append(f"{kind} of {day}, {step.task_id}: {again}")
                raise
        return time.perf_counter() - started

    def answer(self, day: dt.date, number: int) -> Iterator[float]:
        """ImaginePay's answer to the refund file of ``day``, with the events of its night."""
        if not self.layout.refunds_manifest(day).exists():
            return
        imaginepay_simulator.answer(self.layout, day, seed=self.seed)
        events = self.events
        if number == events.late_night:
            path = self.layout.payments(day)
            self.held[day + dt.timedelta(days=events.late_by)] = (day, path.read_bytes())
            path.unlink()
            self.tally.events.append(
                f"late payment file: {day}'s arrives after {events.late_by} nights"
            )
        if number == events.resent_night and events.resent_from is not None:
            earlier = self.answered_before(events.resent_from + 1)
            if earlier is not None:
                _deliver(self.layout.payments(day), self.layout.payments(earlier).read_bytes())
                self.tally.events.append(
                    f"payment file re-sent under another date: {earlier}'s as {day}'s"
                )
        yield 0.0

    def answered_before(self, number: int) -> dt.date | None:
        """The latest date before night ``number`` whose payment file is in the inbox."""
        for earlier in range(number - 1, 0, -1):
            if self.layout.payments(self.night(earlier)).exists():
                return self.night(earlier)
        return None

    def arrivals(self, day: dt.date) -> None:
        held = self.held.pop(day, None)
        if held is not None:
            late_day, content = held
            _deliver(self.layout.payments(late_day), content)

    def scheduled(self, number: int) -> Iterator[tuple[int, float]]:
        day = self.night(number)
        events = self.events
        self.arrivals(day)
        kill = number in events.kill_nights
        kill_daily = kill and self.rng.random() < 0.5
        for seconds in self.daily(day, kill_daily):
            yield number, seconds
        for _ in self.answer(day, number):
            pass
        for seconds in self.reconciliation(day, kill and not kill_daily):
            yield number, seconds
        if number == events.twice_night:
            earlier = self.answered_before(number)
            if earlier is not None:
                path = self.layout.payments(earlier)
                _deliver(path, path.read_bytes())
                self.tally.events.append(
                    f"payment file sent twice: {earlier}'s again, its reconciliation run again"
                )
                for _ in self.steps("reconciliation", pipeline.RECONCILIATION_STEPS, earlier):
                    pass
        self.tally.nights_run = number

    def backfill(self) -> Iterator[float]:
        """The old dates, oldest first: the first takes turns with the scheduled run step by
        step; the others a run at a time, since each turn makes both runs rebuild their working
        tables (the cost of every step but the first grows with the turns taken)."""
        days = self.events.backfill_days
        old = [self.start - dt.timedelta(days=days - d) for d in range(days)]
        self.tally.events.append(
            f"backfill of {old[0]} to {old[-1]} beside the scheduled nights, the first date "
            "step by step"
        )
        for number, day in enumerate(old):
            self.backfilled.append(day)
            runs = (self.daily(day), self.answer(day, 0), self.reconciliation(day))
            for run in runs:
                if number == 0:
                    yield from run
                else:
                    yield sum(run)

    def run(self) -> None:
        nights = iter(range(1, self.nights + 1))
        backfill: Iterator[float] | None = None
        for number in nights:
            if number == self.events.backfill_night:
                backfill = self.backfill()
            for night, seconds in self.scheduled(number):
                self.tally.night_seconds[night] = self.tally.night_seconds.get(night, 0) + seconds
                if backfill is not None:
                    self.tally.tainted.add(night)
                    if next(backfill, None) is None:
                        backfill = None
            if number in self.events.kill_nights or number == self.events.twice_night:
                self.tally.tainted.add(number)
            if number % 30 == 0:
                print(
                    f"  night {number}: {self.tally.night_seconds[number]:.2f} s, "
                    f"{(time.perf_counter() - self.began) / 60:.1f} min in",
                    flush=True,
                )
        for _ in backfill or ():
            pass
        # The files still in transit arrive, and the next reconciliation takes them up.
        morning = self.night(self.nights + 1)
        for day in sorted(self.held):
            self.arrivals(day)
        for _ in self.steps("reconcile_earlier", (pipeline.RECONCILE_EARLIER_DATES,), morning):
            pass


def _deliver(path: Path, content: bytes) -> None:
    """A payment file put into the inbox whole, as a transfer renames it into place."""
    from auto_refunds.outbox import atomic_write_bytes

    atomic_write_bytes(path, content)


# -- the books --------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _money(rows: list[dict], column: str) -> Decimal:
    return sum((Decimal(row[column]) for row in rows), Decimal("0.00"))


def _first(problems: list[str], limit: int = 3) -> list[str]:
    """The first few problems, and how many in all: one screen."""
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... {len(problems)} in all"]


def check_books(data_dir: Path, dates: list[dt.date]) -> list[Check]:
    """The books after the year, from the warehouse's tables and the files themselves.

    ``dates``: every date whose daily run ran. Each check reads the files (CSV, manifests) with
    the ``csv`` module and the warehouse's published tables with plain SQL, never the pipeline's
    own guards, so that a guard that let something through is caught here.
    """
    import duckdb

    layout = Layout(data_dir)
    con = duckdb.connect(str(layout.warehouse), read_only=True)
    try:
        return [
            _every_credit_one_outcome(con, layout, dates),
            *_refunds_and_ledger(con, layout),
            *_answers_and_postings(con, layout),
        ]
    finally:
        con.close()


def _every_credit_one_outcome(con, layout: Layout, dates: list[dt.date]) -> Check:
    problems = []
    outcomes: dict[dt.date, Counter] = defaultdict(Counter)
    for day, credit_id in con.execute(
        "select as_of_date, credit_id from credit_outcomes"
    ).fetchall():
        outcomes[day][credit_id] += 1
    quarantined = defaultdict(set)
    for source_file, line in con.execute(
        "select source_file, line_number from quarantine_rows"
    ).fetchall():
        quarantined[source_file].add(line)
    for day in dates:
        path = layout.credits(day)
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        ids = Counter(next(csv.reader([line]), [""])[0] for line in lines)
        for number, line in enumerate(lines, start=2):
            credit_id = next(csv.reader([line]), [""])[0]
            count = outcomes[day].get(credit_id, 0) if ids[credit_id] == 1 else 0
            held = number in quarantined[path.name]
            if count + held != 1:
                problems.append(
                    f"{day} credit {credit_id!r} (line {number}): {count} outcome(s)"
                    + (", quarantined" if held else "")
                )
        for credit_id, count in outcomes[day].items():
            if ids[credit_id] != 1 or count != 1:
                problems.append(f"{day} credit {credit_id!r}: {count} outcome(s) for it")
    day_counts = con.execute(
        """
        select o.as_of_date, o.outcome, count(*), coalesce(sum(o.credit_amount), 0),
            (select count(*) from tickler_true_refunds_due t where t.as_of_date = o.as_of_date),
            (select count(*) from tickler_refund_exceptions t
             where t.as_of_date = o.as_of_date and t.source = 'ELIGIBILITY')
        from credit_outcomes o where o.outcome in ('DUE', 'EXCEPTION') group by all
        """
    ).fetchall()
    for day, outcome, count, _, due, exceptions in day_counts:
        tickler = due if outcome == "DUE" else exceptions
        if tickler != count:
            problems.append(f"{day}: {count} {outcome} outcomes, {tickler} tickler rows")
    return Check("every credit of every snapshot has exactly one outcome", problems)


def published_refunds(layout: Layout) -> tuple[dict[dt.date, list[dict]], list[str]]:
    """The published refund files (those with a manifest), each checked against its manifest."""
    files, problems = {}, []
    for manifest_path in sorted(layout.refunds_outbox.glob("refunds_*.manifest.json")):
        day = dt.datetime.strptime(manifest_path.name.split("_")[1][:8], "%Y%m%d").date()
        manifest = json.loads(manifest_path.read_text())
        path = layout.refunds(day)
        rows = _rows(path)
        if (
            manifest["record_count"] != len(rows)
            or Decimal(manifest["total_amount"]) != _money(rows, "refund_amount")
            or manifest["sha256"] != hashlib.sha256(path.read_bytes()).hexdigest()
        ):
            problems.append(f"{path.name} does not match its manifest")
        files[day] = rows
    return files, problems


def _refunds_and_ledger(con, layout: Layout) -> list[Check]:
    files, problems = published_refunds(layout)
    sent = [row | {"file_date": day} for day, rows in files.items() for row in rows]
    ledger = {
        refund_id: (credit_id, amount, status, requested)
        for refund_id, credit_id, amount, status, requested in con.execute(
            "select refund_id, credit_id, refund_amount, status, requested_date from refund_ledger"
        ).fetchall()
    }
    times_sent = Counter(row["refund_id"] for row in sent)
    problems += [f"refund {r} is in {n} refund files" for r, n in times_sent.items() if n > 1]
    ledger_count, ledger_total = len(ledger), sum((v[1] for v in ledger.values()), Decimal(0))
    if (len(sent), _money(sent, "refund_amount")) != (ledger_count, ledger_total):
        problems.append(
            f"refund files: {len(sent)} refunds, {_money(sent, 'refund_amount')}; "
            f"ledger: {ledger_count}, {ledger_total}"
        )
    for row in sent:
        entry = ledger.get(row["refund_id"])
        if entry is None or entry[:2] != (row["credit_id"], Decimal(row["refund_amount"])):
            problems.append(f"refund {row['refund_id']} of {row['file_date']}: ledger has {entry}")
    due = dict(
        con.execute(
            "select as_of_date, count(*) from tickler_true_refunds_due group by all"
        ).fetchall()
    )
    for day, rows in files.items():
        if due.get(day, 0) != len(rows):
            problems.append(f"{day}: {len(rows)} refunds in the file, {due.get(day, 0)} DUE")
    live = defaultdict(set)
    for refund_id, (credit_id, _, status, _) in ledger.items():
        if status != "DECLINED":
            live[credit_id].add(refund_id)
    twice = [f"credit {c}: live refunds {sorted(r)}" for c, r in live.items() if len(r) > 1]
    return [
        Check("refund files = manifests = ledger = DUE, in count and amount", problems),
        Check("no credit with two live refunds, no refund sent twice", twice),
    ]


def _answers_and_postings(con, layout: Layout) -> list[Check]:
    from auto_refunds.layout import date_in_name

    files, _ = published_refunds(layout)
    ours = {
        row["refund_id"]: Decimal(row["refund_amount"]) for rows in files.values() for row in rows
    }
    answers: dict[str, dict] = {}
    for path in sorted(layout.payments_inbox.glob("payments_*.csv")):
        for row in _rows(path):
            # A payment_id again (a file sent twice or re-sent) is the same answer again.
            answers.setdefault(row["payment_id"], row | {"file": path.name})
    to_post = {
        payment_id: Decimal(row["payment_amount"])
        for payment_id, row in answers.items()
        if row["status"] == "APPROVED"
        and (not row["refund_id"] or ours.get(row["refund_id"]) == -Decimal(row["payment_amount"]))
    }
    posted_rows = []
    postings_problems, reconciled_problems = [], []
    for day in sorted(files):
        path = layout.postings(day)
        if not path.is_file():
            reconciled_problems.append(f"refunds of {day} published, no postings file")
            continue
        posted_rows += [row | {"file_date": day} for row in _rows(path)]
    for path in sorted(layout.postings(dt.date(2000, 1, 1)).parent.glob("payment_postings_*")):
        if date_in_name(path.name) not in files:
            postings_problems.append(f"{path.name}: no refund file of its date")
    posted = Counter(row["payment_id"] for row in posted_rows)
    postings_problems += [f"payment {p} posted {n} times" for p, n in posted.items() if n > 1]
    postings_problems += [
        f"approved payment {p} not posted" for p in to_post.keys() - posted.keys()
    ]
    postings_problems += [
        f"payment {p} posted, not to post" for p in posted.keys() - to_post.keys()
    ]
    for row in posted_rows:
        if (
            row["payment_id"] in to_post
            and Decimal(row["payment_amount"]) != to_post[row["payment_id"]]
        ):
            postings_problems.append(
                f"payment {row['payment_id']} posted for {row['payment_amount']}"
            )
    table = con.execute(
        "select count(*), coalesce(sum(payment_amount), 0) from payment_postings"
    ).fetchone()
    if table != (len(posted_rows), _money(posted_rows, "payment_amount")):
        postings_problems.append(
            f"postings files: {len(posted_rows)}, {_money(posted_rows, 'payment_amount')}; "
            f"payment_postings: {table[0]}, {table[1]}"
        )
    ledger = dict(con.execute("select refund_id, status from refund_ledger").fetchall())
    refunded = {r for r, status in ledger.items() if status == "REFUNDED"}
    posted_refunds = {row["refund_id"] for row in posted_rows if row["refund_id"]}
    if refunded != posted_refunds:
        postings_problems.append(
            f"ledger REFUNDED {len(refunded)}, refunds posted {len(posted_refunds)}: "
            f"{sorted(refunded ^ posted_refunds)[:3]}"
        )
    last = max(con.execute("select as_of_date from postings_files").fetchall(), default=(None,))[0]
    for refund_id, status in ledger.items():
        requested = (
            next(
                day for day, rows in files.items() for row in rows if row["refund_id"] == refund_id
            )
            if status == "SENT"
            else None
        )
        if requested is not None and last is not None and (last - requested).days >= AGING_DAYS:
            reconciled_problems.append(f"refund {refund_id} of {requested} still SENT at {last}")

    acted_problems = []
    exceptions = Counter(
        (refund_id, reason)
        for refund_id, reason in con.execute(
            "select refund_id, reason_code from tickler_refund_exceptions "
            "where source = 'RECONCILIATION'"
        ).fetchall()
    )
    expected = {"APPROVED": "REFUNDED", "DECLINED": "DECLINED"}
    by_refund = defaultdict(list)
    for row in answers.values():
        if row["refund_id"] and row["refund_id"] in ours:
            by_refund[row["refund_id"]].append(row)
    for refund_id, rows in by_refund.items():
        if len(rows) != 1:
            continue
        row = rows[0]
        outcome = expected[row["status"]]
        if row["status"] == "APPROVED" and ours[refund_id] != -Decimal(row["payment_amount"]):
            outcome = "AMOUNT_MISMATCH"
        if ledger.get(refund_id) != outcome:
            acted_problems.append(
                f"refund {refund_id}: answer {outcome}, ledger {ledger.get(refund_id)}"
            )
        reason = {"DECLINED": "REFUND_DECLINED", "AMOUNT_MISMATCH": "RETURN_AMOUNT_MISMATCH"}.get(
            outcome
        )
        for code in ("REFUND_DECLINED", "RETURN_AMOUNT_MISMATCH"):
            if exceptions[(refund_id, code)] != (code == reason):
                acted_problems.append(f"refund {refund_id}: {exceptions[(refund_id, code)]} {code}")
    acted_problems += [f"refund {r}: {n} {code}" for (r, code), n in exceptions.items() if n > 1]
    acted_twice = con.execute(
        "select payment_id, count(*) from payment_answers where acted "
        "group by all having count(*) > 1"
    ).fetchall()
    acted_problems += [f"payment {p} acted on {n} times" for p, n in acted_twice]
    unmatched = {r for r in {row["refund_id"] for row in answers.values()} if r and r not in ours}
    recorded = {r for (r,) in con.execute("select refund_id from unmatched_returns").fetchall()}
    if unmatched != recorded:
        acted_problems.append(f"unmatched returns {sorted(unmatched)}, recorded {sorted(recorded)}")
    return [
        Check(
            "approved answers = postings files = payment_postings, in count and amount",
            postings_problems,
        ),
        Check("every published refund file reconciled, no answer left unaged", reconciled_problems),
        Check("every answer acted on once", acted_problems),
    ]


def generate(
    data_dir: Path, start: dt.date, nights: int, credits: int, seed: int, backfill_days: int
) -> None:
    """The year's inputs and the old dates' before it (run only by the backfill), as a year in
    production: the first extract holds the card history, each later one a night's new and
    settled sales."""
    sample_data.generate(
        data_dir,
        sample_data.Spec(
            start - dt.timedelta(days=backfill_days),
            backfill_days + nights,
            credits,
            credits * 4,
            seed,
            profile=sample_data.PROFILES["varied"],
            steady=True,
        ),
    )


def cost(tally: Tally, nights: range) -> tuple[float | None, list[int]]:
    """The median cost of ``nights``, those with an injected event left out; the nights used."""
    used = [n for n in nights if n in tally.night_seconds and n not in tally.tainted]
    if not used:
        return None, used
    return statistics.median(tally.night_seconds[n] for n in used), used


def summary(soak: Soak, checks: list[Check], wall: float) -> str:
    import duckdb

    tally, nights = soak.tally, soak.nights
    con = duckdb.connect(str(soak.layout.warehouse), read_only=True)
    try:
        credits, due = con.execute(
            "select count(*), count(*) filter (where outcome = 'DUE') from credit_outcomes"
        ).fetchone()
        statuses = {
            status: (count, total)
            for status, count, total in con.execute(
                "select status, count(*), sum(refund_amount) from refund_ledger group by all"
            ).fetchall()
        }
        postings, posted = con.execute(
            "select count(*), coalesce(sum(payment_amount), 0) from payment_postings"
        ).fetchone()
    finally:
        con.close()
    sent = sum(count for count, _ in statuses.values())
    sent_total = sum((total for _, total in statuses.values()), Decimal("0.00"))

    def status(name: str) -> str:
        count, total = statuses.get(name, (0, Decimal("0.00")))
        return f"{count} ({total})"

    early, early_nights = cost(tally, range(26, 31))
    late, late_nights = cost(tally, range(nights - COST_WINDOW + 1, nights + 1))
    ratio = f"{late / early:.2f}x" if early and late else "n/a"
    landed = sum("killed" in kill for kill in tally.kills)
    lines = [
        "",
        f"== Soak: {tally.nights_run} nights from {soak.start}, and {len(soak.backfilled)} "
        "old date(s) backfilled ==",
        f"credits decided  {credits} outcomes, {due} DUE",
        f"refunds sent     {sent} ({sent_total}); approved {status('REFUNDED')}, "
        f"declined {status('DECLINED')}",
        f"                 other amount {status('AMOUNT_MISMATCH')}, unanswered "
        f"{status('UNANSWERED')}, still sent {status('SENT')}",
        f"postings         {postings} ({posted})",
        f"events           {len(tally.events)} + {len(tally.kills)} kills ({landed} landed); "
        f"task retries {sum(tally.retried.values())}, failed runs {len(tally.failed_runs)}",
        *(f"  {event}" for event in tally.events),
        *(f"  kill: {kill}" for kill in tally.kills[:3]),
        *([f"  ... {len(tally.kills)} kills in all"] if len(tally.kills) > 3 else []),
        *(f"  expected failure: {failure[:110]}" for failure in tally.expected_failures[:2]),
        *(f"  retried: {name} x{count}" for name, count in tally.retried.most_common(3)),
        *(f"  FAILED RUN: {failure[:110]}" for failure in tally.failed_runs[:3]),
        f"night cost       nights {early_nights}: {_seconds(early)}; nights "
        f"{late_nights}: {_seconds(late)}; {ratio} (goal 1.2x)",
        "books:",
        *(
            f"  {'PASS' if check.ok else 'FAIL'}  {check.name}"
            + "".join(f"\n          {problem}" for problem in _first(check.problems))
            for check in checks
        ),
        f"wall time        {wall / 60:.1f} min",
    ]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"median {value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--credits", type=int, default=300, help="credits per night's snapshot")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument(
        "--backfill-days", type=int, default=7, help="the old dates backfilled (before --start)"
    )
    args = parser.parse_args(argv)
    wall = time.perf_counter()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="auto-refunds-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["AUTO_REFUNDS_DATA_DIR"] = str(data_dir)
    # The simulator and the events rename each payment file into place whole.
    os.environ["AUTO_REFUNDS_PAYMENT_FILE_SETTLE_SECONDS"] = "0"
    logging.basicConfig(
        filename=data_dir / "soak.log", level=logging.WARNING, format="%(asctime)s %(message)s"
    )
    try:
        generate(data_dir, args.start, args.nights, args.credits, args.seed, args.backfill_days)
        events = plan_events(args.nights, args.seed, args.backfill_days)
        soak = Soak(data_dir, args.start, args.nights, args.seed, events)
        print(
            f"Soak: {args.nights} nights from {args.start}, {args.credits} credits a night, "
            f"seed {args.seed}, in {data_dir}",
            flush=True,
        )
        soak.run()
        dates = sorted({*soak.backfilled, *(soak.night(n) for n in range(1, args.nights + 1))})
        checks = check_books(data_dir, dates)
        print(summary(soak, checks, time.perf_counter() - wall))
        return 0 if all(check.ok for check in checks) and not soak.tally.failed_runs else 1
    finally:
        if not args.keep and args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
