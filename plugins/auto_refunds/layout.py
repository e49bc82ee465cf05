"""The folder layout and file names of CONTRACT section 1, in one place."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
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


# CONTRACT 7: what the product writes grants nothing to others. Folders 0750 and files 0640:
# the owner (the pipeline's user) alone writes, so nobody else can swap or alter a published
# file; the group may read, so a deployment can let a transfer agent or an auditor read the
# outbox through a group of its choosing. A stricter umask (077) still narrows both.
FOLDER_MODE = 0o750
FILE_MODE = 0o640
_PRIVATE_UMASK = 0o027


def private_umask() -> None:
    """Files and folders this process creates from now on get at most 0640 and 0750, whatever
    the umask was: DuckDB's database, WAL and spill folder, COPY ... TO files and the lock file
    included, which are created with the default modes (0666, 0777) that only the umask narrows.
    Every entry point calls it first (the task runtime, the CLI, the demo), and so does
    ``make_folder``."""
    current = os.umask(0)
    os.umask(current | _PRIVATE_UMASK)


def make_folder(folder: Path) -> None:
    """``folder`` and any missing parent of it, created 0750 (or narrower, by the umask)."""
    private_umask()
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)


def open_private(path: Path, mode: str = "w", **kwargs):
    """``open(path, mode)`` for writing ("w" or "a", text or binary) a file of ours: created
    0640 whatever the umask, narrowed to 0640 if it was there wider, never through a link."""
    if mode.strip("bt") not in ("w", "a"):
        raise ValueError(f"open_private writes only ('w' or 'a'), not {mode!r}")
    make_folder(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
    flags |= os.O_APPEND if mode.startswith("a") else os.O_TRUNC
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) & FILE_MODE)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


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
