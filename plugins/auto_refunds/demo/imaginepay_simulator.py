"""A LOCAL SIMULATOR of ImaginePay, the card processor, for demos and tests. Not the processor.

    python -m auto_refunds.demo.imaginepay_simulator --date 2026-03-02 [--seed 7]

It reads the published refund file of D (only with its manifest, as the real processor would)
from the outbox, or with ``--exchange`` where it was delivered (``exchange/imaginepay_refunds/``,
the local default of that location), and answers it the way ImaginePay does:

- ``inbox/imaginepay/payments_D.csv`` (with ``--exchange``: ImaginePay's outbound location,
  ``exchange/imaginepay_payments/payments_D.csv``, from which the reconciliation collects it):
  most refunds APPROVED for minus their amount, some DECLINED (54 Expired card, 05 Do not
  honor, 14 Invalid card number), some left unanswered, a rare one approved for a different
  amount; mixed with the day's ordinary card payments.
- the REFUND transactions it made, in the next day's ImaginePay extract
  ``landing/imaginepay/transactions_{D+1}.csv`` (merchant_reference = our refund_id, the card
  fields of the refunded sale).

Outcomes are seeded by refund_id, so the same file always gets the same answers, and running it
twice for a date gives the same files.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path

import duckdb

from auto_refunds.layout import PAYMENTS_HEADER, REFUNDS_HEADER, TRANSACTIONS_HEADER, Layout
from auto_refunds.outbox import atomic_write_bytes
from auto_refunds.settings import Settings

DECLINES = [("54", "Expired card"), ("05", "Do not honor"), ("14", "Invalid card number")]


def _draw(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _csv_bytes(header: tuple[str, ...], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _read_published_refunds(layout: Layout, day: dt.date, folder: Path | None) -> list[dict]:
    refunds, manifest = layout.refunds(day), layout.refunds_manifest(day)
    if folder is not None:
        refunds, manifest = folder / refunds.name, folder / manifest.name
    if not manifest.exists():
        raise SystemExit(f"{refunds} is not there (no manifest)")
    json.loads(manifest.read_text())
    with open(refunds, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert all(tuple(row) == REFUNDS_HEADER for row in rows[:1])
    return rows


def _card_of_sales(layout: Layout, day: dt.date, txn_ids: set[str]) -> dict[str, dict]:
    """The card fields of the refunded sales, from ImaginePay's own extracts."""
    files = [str(path) for _, path in layout.transactions_up_to(day)]
    if not files or not txn_ids:
        return {}
    con = duckdb.connect()
    con.execute("create temp table wanted (txn_id varchar)")
    con.executemany("insert into wanted values (?)", [[t] for t in sorted(txn_ids)])
    rows = con.execute(
        """
        select txn_id, card_type, cvm, card_exp, card_last4
        from read_csv(?, header = true, all_varchar = true, ignore_errors = true,
                      filename = true)
        semi join wanted using (txn_id)
        qualify row_number() over (partition by txn_id order by filename desc) = 1
        """,
        [files],
    ).fetchall()
    con.close()
    return {
        txn_id: {"card_type": ct, "cvm": cvm, "card_exp": exp, "card_last4": last4}
        for txn_id, ct, cvm, exp, last4 in rows
    }


def answer(
    layout: Layout,
    day: dt.date,
    seed: int = 7,
    ordinary_payments: int = 12,
    refunds_from: Path | None = None,
    payments_to: Path | None = None,
) -> dict:
    """Answer the refund file of D. By default it reads the outbox and writes into the inbox;
    ``refunds_from`` and ``payments_to`` make it read the refund file where it was delivered
    and leave its payment file at its own outbound location, as ImaginePay does (CONTRACT 9)."""
    refunds = _read_published_refunds(layout, day, refunds_from)
    tag = day.strftime("%Y%m%d")
    payments: list[dict] = []
    refund_transactions: list[dict] = []
    cards = _card_of_sales(layout, day, {row["original_txn_id"] for row in refunds})
    tally = {"approved": 0, "declined": 0, "unanswered": 0, "mismatched": 0}
    for number, refund in enumerate(refunds, start=1):
        draw = _draw(seed, refund["refund_id"])
        amount = Decimal(refund["refund_amount"])
        base = {
            "payment_id": f"IP{tag}R{number:07d}",
            "client_id": refund["client_id"],
            "account_id": refund["account_id"],
            "txn_id": f"IPR{tag}-{number:07d}",
            "refund_id": refund["refund_id"],
            "processed_date": day.isoformat(),
        }
        if draw < 0.06:
            tally["unanswered"] += 1
            continue
        if draw < 0.13:
            code, message = DECLINES[int(draw * 1000) % len(DECLINES)]
            payments.append(
                {
                    **base,
                    "payment_amount": f"{-amount:.2f}",
                    "status": "DECLINED",
                    "response_code": code,
                    "response_message": message,
                }
            )
            tally["declined"] += 1
            continue
        paid = amount if draw >= 0.15 else (amount / 2).quantize(Decimal("0.01"))
        tally["approved" if paid == amount else "mismatched"] += 1
        payments.append(
            {
                **base,
                "payment_amount": f"{-paid:.2f}",
                "status": "APPROVED",
                "response_code": "00",
                "response_message": "Approved",
            }
        )
        refund_transactions.append(
            {
                "txn_id": base["txn_id"],
                "client_id": refund["client_id"],
                "account_id": refund["account_id"],
                "txn_type": "REFUND",
                "original_txn_id": refund["original_txn_id"],
                "merchant_reference": refund["refund_id"],
                "amount": f"{paid:.2f}",
                "txn_date": day.isoformat(),
                "status": "SETTLED",
                "card_token": refund["card_token"],
                **cards.get(refund["original_txn_id"], {}),
            }
        )
    for number in range(1, ordinary_payments + 1):
        draw = _draw(seed, f"{tag}:ordinary:{number}")
        approved = draw < 0.9
        payments.append(
            {
                "payment_id": f"IP{tag}P{number:07d}",
                "client_id": f"CL{1 + int(draw * 5):03d}",
                "account_id": f"A{int(draw * 10**8):08d}",
                "txn_id": f"IPS{tag}-{number:07d}",
                "refund_id": "",
                "payment_amount": f"{Decimal(int(draw * 40000) + 500) / 100:.2f}",
                "status": "APPROVED" if approved else "DECLINED",
                "response_code": "00" if approved else "51",
                "response_message": "Approved" if approved else "Insufficient funds",
                "processed_date": day.isoformat(),
            }
        )

    target = layout.payments(day)
    if payments_to is not None:
        target = payments_to / target.name
    atomic_write_bytes(target, _csv_bytes(PAYMENTS_HEADER, payments))
    _add_to_next_extract(layout, day + dt.timedelta(days=1), tag, refund_transactions)
    return tally


def _add_to_next_extract(layout: Layout, next_day: dt.date, tag: str, rows: list[dict]) -> None:
    """Put our refund transactions in the next extract, replacing any from an earlier answer.

    The extract's other lines are kept byte for byte, malformed ones included.
    """
    path = layout.transactions(next_day)
    ours = f"IPR{tag}-"
    header, *lines = (
        path.read_text(encoding="utf-8").splitlines(keepends=True)
        if path.exists()
        else [",".join(TRANSACTIONS_HEADER) + "\n"]
    )
    kept = [line for line in lines if not line.startswith(ours)]
    added = _csv_bytes(TRANSACTIONS_HEADER, rows).decode().splitlines(keepends=True)[1:]
    atomic_write_bytes(path, "".join([header, *kept, *added]).encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A LOCAL SIMULATOR of ImaginePay.")
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--exchange",
        action="store_true",
        help="read the refund file from exchange/imaginepay_refunds/ and answer into "
        "exchange/imaginepay_payments/ (the local locations) instead of outbox/ and inbox/",
    )
    args = parser.parse_args(argv)
    layout = Layout(args.data_dir) if args.data_dir else Settings.from_env().layout
    folders = {}
    if args.exchange:
        folders = {
            "refunds_from": layout.root / "exchange" / "imaginepay_refunds",
            "payments_to": layout.root / "exchange" / "imaginepay_payments",
        }
    print(answer(layout, args.date, args.seed, **folders))


if __name__ == "__main__":
    main()
