"""Given -> expected: write small input files, run the daily steps, read the outcomes back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from auto_refunds import daily, models
from auto_refunds.layout import (
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    TRANSACTIONS_HEADER,
    Layout,
)
from auto_refunds.settings import Settings
from auto_refunds.warehouse import connect

D = dt.date(2026, 1, 5)


def sale(
    txn_id: str,
    amount: str = "100.00",
    txn_date: str = "2026-01-01",
    *,
    client: str = "CL1",
    account: str = "A1",
    status: str = "SETTLED",
    card_type: str = "CREDIT",
    cvm: str = "SIGNATURE",
    card_exp: str = "12/27",
    token: str | None = None,
    last4: str = "1111",
) -> tuple:
    return (
        txn_id,
        client,
        account,
        "SALE",
        "",
        "",
        amount,
        txn_date,
        status,
        card_type,
        cvm,
        card_exp,
        token or f"tok_{txn_id}",
        last4,
    )


def refund(
    txn_id: str,
    original: str,
    amount: str,
    *,
    status: str = "SETTLED",
    merchant_reference: str = "",
    client: str = "CL1",
    account: str = "A1",
    txn_date: str = "2026-01-02",
) -> tuple:
    return (
        txn_id,
        client,
        account,
        "REFUND",
        original,
        merchant_reference,
        amount,
        txn_date,
        status,
        "CREDIT",
        "SIGNATURE",
        "12/27",
        f"tok_{original}",
        "1111",
    )


def credit(
    credit_id: str,
    amount: str = "50.00",
    *,
    client: str = "CL1",
    account: str = "A1",
    credit_date: str = "2026-01-04",
) -> tuple:
    return (credit_id, client, account, amount, credit_date)


def csv_text(header: tuple[str, ...], rows: list) -> str:
    lines = [",".join(header)]
    lines += [row if isinstance(row, str) else ",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


@dataclass
class Scenario:
    """One data folder; defaults make every client enrolled with no threshold."""

    settings: Settings
    rules: list = field(default_factory=lambda: [("CL1", "true", "", ""), ("CL2", "true", "", "")])

    @property
    def layout(self) -> Layout:
        return self.settings.layout

    def write_rules(self, *rows) -> None:
        self.rules = list(rows)

    def write_credits(self, day: dt.date, *rows) -> Path:
        path = self.layout.credits(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(csv_text(CREDITS_HEADER, list(rows)))
        return path

    def write_transactions(self, day: dt.date, *rows) -> Path:
        path = self.layout.transactions(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(csv_text(TRANSACTIONS_HEADER, list(rows)))
        return path

    def _prepare(self, day: dt.date) -> None:
        self.layout.client_rules.parent.mkdir(parents=True, exist_ok=True)
        self.layout.client_rules.write_text(csv_text(CLIENT_RULES_HEADER, self.rules))
        if not self.layout.transactions(day).exists():
            self.write_transactions(day)

    def decide(self, day: dt.date = D) -> dict[str, tuple]:
        """Extract and build the models for ``day``; {credit_id: (outcome, reason, txn)}."""
        self._prepare(day)
        daily.extract(day, self.settings)
        for model in models.DAILY_MODELS:
            daily.build_model(day, model.name, self.settings)
        with connect(self.settings, day) as con:
            rows = con.execute(
                "select credit_id, coalesce(reason_code, outcome), original_txn_id "
                "from marts.credit_outcomes"
            ).fetchall()
        return {credit_id: (label, txn) for credit_id, label, txn in rows}

    def run(self, day: dt.date = D, *, audit: bool = False) -> daily.Published:
        """The whole daily run for ``day``, publishing the refund file."""
        self.decide(day)
        if audit:
            daily.audit(day, self.settings)
        return daily.publish(day, self.settings)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with connect(self.settings) as con:
            return con.execute(sql, params or []).fetchall()
