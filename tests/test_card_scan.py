"""The operator's self-check ``scan-card-numbers``: silent on a clean data root, and it finds
a card number planted in a table, an output file or a log (so it can fail)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auto_refunds import cli
from auto_refunds.warehouse import connect

REPO = Path(__file__).resolve().parents[1]
CARD = "4111 1111 1111 1111"
DIGITS = CARD.replace(" ", "")
D = dt.date(2026, 1, 5)


@pytest.fixture
def clean(settings, tmp_path, monkeypatch):
    """A warehouse with every table, inputs holding card numbers (allowed), ids that pass
    Luhn (allowed) and task logs without any."""
    airflow_home = tmp_path / "airflow"
    (airflow_home / "logs" / "dag_id=auto_refunds").mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW_HOME", str(airflow_home))
    monkeypatch.delenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", raising=False)
    with connect(settings) as con:
        con.execute(
            "insert into main.quarantine_rows values (?, 7, 'T1,CL1,A1,tok,************1111', "
            "'card_last4 holds a card number')",
            ["transactions_20260105.csv"],
        )
        con.execute(
            "insert into main.unmatched_returns by name select date '2026-01-05' as as_of_date, "
            "'x' as source_file, 1 as line_number, ? as payment_id, ? as refund_id",
            [DIGITS, DIGITS],
        )
    layout = settings.layout
    for path in (layout.credits(D), layout.payments(D)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"an input may hold {CARD}\n")
    outbox = layout.refunds(D)
    outbox.parent.mkdir(parents=True)
    outbox.write_text("refund_id,card_token\nAR1,tok_abc\n")
    log = airflow_home / "logs" / "dag_id=auto_refunds" / "attempt=1.log"
    log.write_text('{"event": "declined ************1111"}\n')
    return settings, outbox, log


def scan(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["scan-card-numbers", *args])
    return code, capsys.readouterr().out


def test_a_clean_data_root_passes(clean, capsys):
    code, out = scan(capsys)
    assert (code, out.strip()) == (0, "no card number")


def test_it_finds_a_number_in_a_table_an_output_file_and_a_log(clean, capsys, tmp_path):
    settings, outbox, log = clean
    with connect(settings) as con:
        con.execute(
            "insert into main.quarantine_rows values ('credits_20260105.csv', 3, ?, 'bad')",
            [f"C1,CL1,A1,10.00,{CARD}"],
        )
    with open(outbox, "a") as handle:
        handle.write(f"AR2,{DIGITS}\n")
    with open(log, "a") as handle:
        handle.write(f'{{"event": "Could not convert string \'{DIGITS}\' to INT32"}}\n')
    extra_logs = tmp_path / "more-logs"
    extra_logs.mkdir()
    (extra_logs / "run.log").write_text(f"x\ncard {CARD.replace(' ', '-')}\n")

    code, out = scan(capsys, "--logs", str(extra_logs))
    assert code == 1
    assert DIGITS not in out and CARD not in out
    lines = out.splitlines()
    assert (
        "main.quarantine_rows.raw_line [credits_20260105.csv:3]: C1,CL1,A1,10.00,************1111"
    ) in lines
    assert f"{outbox} [3]: AR2,************1111" in lines
    assert (
        f"{log} [2]: " + '{"event": "Could not convert string \'************1111\' to INT32"}'
        in (lines)
    )
    assert f"{extra_logs / 'run.log'} [2]: card ************1111" in lines
    assert lines[-1] == "4 card number(s) found in 4 place(s)"


def test_the_command_line_exits_1_on_a_finding(clean):
    settings, outbox, _ = clean
    outbox.write_text(f"{CARD}\n")
    result = subprocess.run(
        [sys.executable, "-m", "auto_refunds.cli", "scan-card-numbers"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "plugins")},
    )
    assert result.returncode == 1, result.stderr
    assert "************1111" in result.stdout and CARD not in result.stdout


def test_the_help_says_which_columns_are_skipped(capsys):
    with pytest.raises(SystemExit):
        cli.main(["scan-card-numbers", "--help"])
    out = capsys.readouterr().out
    assert "*_id" in out and "merchant_reference" in out and "source_file" in out


def test_ids_are_skipped_in_landed_lines_csv_outputs_and_parquet_files(clean, capsys):
    settings, outbox, _ = clean
    with connect(settings) as con:
        # As landing keeps them: the id as it is, every other field masked.
        con.execute(
            "insert into landing.imagineone__credits values ('credits_20260105.csv', ?, 2, ?)",
            [D, f"{DIGITS},CL1,A1,10.00,2026-01-04"],
        )
    outbox.write_text(f"refund_id,credit_id,card_token\nAR1,{DIGITS},tok_abc\n")
    worklist = settings.data_dir / "worklist"
    worklist.mkdir()
    with connect(settings) as con:
        con.execute(
            f"copy (select '{DIGITS}' as credit_id, 'fine' as reason_detail) "
            f"to '{worklist / 'clean.parquet'}' (format parquet)"
        )
    assert scan(capsys) == (0, "no card number\n")

    with connect(settings) as con:
        con.execute(
            "insert into landing.imagineone__credits values ('credits_20260105.csv', ?, 3, ?)",
            [D, f"C2,CL1,A1,{CARD},2026-01-04"],
        )
        con.execute(
            f"copy (select 'C3' as credit_id, 'sale {CARD}' as reason_detail) "
            f"to '{worklist / 'leak.parquet'}' (format parquet)"
        )
    code, out = scan(capsys)
    assert code == 1
    lines = out.splitlines()
    assert (
        "landing.imagineone__credits.raw_line [credits_20260105.csv:3]: "
        "C2,CL1,A1,************1111,2026-01-04"
    ) in lines
    leak = worklist / "leak.parquet"
    assert f"{leak}.reason_detail [credit_id=C3]: sale ************1111" in lines
    assert lines[-1] == "2 card number(s) found in 2 place(s)"
