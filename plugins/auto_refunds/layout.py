"""The folder layout and file names of CONTRACT section 1, in one place."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

CREDITS_HEADER = ("credit_id", "client_id", "account_id", "credit_amount", "credit_date")
CLIENT_RULES_HEADER = (
    "client_id",
    "auto_refunds_enabled",
    "min_balance_threshold",
    "refund_window_days",
)
TRANSACTIONS_HEADER = (
    "txn_id",
    "client_id",
    "account_id",
    "txn_type",
    "original_txn_id",
    "merchant_reference",
    "amount",
    "txn_date",
    "status",
    "card_type",
    "cvm",
    "card_exp",
    "card_token",
    "card_last4",
)
REFUNDS_HEADER = (
    "refund_id",
    "client_id",
    "account_id",
    "credit_id",
    "original_txn_id",
    "card_token",
    "refund_amount",
)
PAYMENTS_HEADER = (
    "payment_id",
    "client_id",
    "account_id",
    "txn_id",
    "refund_id",
    "payment_amount",
    "status",
    "response_code",
    "response_message",
    "processed_date",
)
POSTINGS_HEADER = (
    "payment_id",
    "client_id",
    "account_id",
    "txn_id",
    "refund_id",
    "payment_amount",
    "processed_date",
)

# CONTRACT 7 keeps identifier fields as they are: a processor's id may be a long number that
# passes Luhn. Every other field of an input line has its card numbers masked when it is landed.
CARD_FIELDS = ("card_token", "card_last4")


def is_identifier(field: str) -> bool:
    return field.lower().endswith("_id") or field.lower() == "merchant_reference"


# CONTRACT 7: what the product writes grants nothing to others.
_NO_OTHERS = 0o007


def private_umask() -> None:
    """Files and folders this process creates from now on grant nothing to others, whatever the
    umask was (DuckDB's files and spill folder included)."""
    current = os.umask(0)
    os.umask(current | _NO_OTHERS)


def make_folder(folder: Path) -> None:
    private_umask()
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)


_DATED_NAME = re.compile(r"^(?P<stem>[a-z_]+)_(?P<ymd>\d{8})\.csv$")


def ymd(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def date_in_name(name: str) -> dt.date | None:
    """The date D of a dated file name such as ``transactions_20260105.csv``."""
    match = _DATED_NAME.match(name)
    if not match:
        return None
    try:
        return dt.datetime.strptime(match["ymd"], "%Y%m%d").date()
    except ValueError:
        return None


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def imagineone_landing(self) -> Path:
        return self.root / "landing" / "imagineone"

    @property
    def imaginepay_landing(self) -> Path:
        return self.root / "landing" / "imaginepay"

    @property
    def client_rules(self) -> Path:
        return self.imagineone_landing / "client_rules.csv"

    def credits(self, day: dt.date) -> Path:
        return self.imagineone_landing / f"credits_{ymd(day)}.csv"

    def transactions(self, day: dt.date) -> Path:
        return self.imaginepay_landing / f"transactions_{ymd(day)}.csv"

    def landing_folder(self, file_kind: str) -> Path:
        """Where the landing files of a ``landing.files`` kind arrive."""
        if file_kind == "payments":
            return self.payments_inbox
        return self.imaginepay_landing if file_kind == "transactions" else self.imagineone_landing

    def transactions_up_to(self, day: dt.date) -> list[tuple[dt.date, Path]]:
        """Every ImaginePay extract dated on or before ``day``, oldest first."""
        found = []
        for path in self.imaginepay_landing.glob("transactions_*.csv"):
            file_date = date_in_name(path.name)
            if file_date is not None and file_date <= day:
                found.append((file_date, path))
        return sorted(found)

    @property
    def refunds_outbox(self) -> Path:
        return self.root / "outbox" / "imaginepay"

    def refunds(self, day: dt.date) -> Path:
        return self.refunds_outbox / f"refunds_{ymd(day)}.csv"

    def refunds_manifest(self, day: dt.date) -> Path:
        return self.refunds_outbox / f"refunds_{ymd(day)}.manifest.json"

    @property
    def payments_inbox(self) -> Path:
        return self.root / "inbox" / "imaginepay"

    def payments(self, day: dt.date) -> Path:
        return self.payments_inbox / f"payments_{ymd(day)}.csv"

    def postings(self, day: dt.date) -> Path:
        return self.root / "outbox" / "imagineone" / f"payment_postings_{ymd(day)}.csv"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "auto_refunds.duckdb"
