"""An independent, pure-Python reference of CONTRACT sections 2 (inputs) and 3 (refund rules).

Written from the contract alone, without looking at the SQL models, so that the property tests
can compare the two implementations and every difference points at a bug in one of them. It is
meant to be read: plain loops, no cleverness, ``Decimal`` for every amount.

Conventions where the contract is silent (the project's choices, followed here):

* fields are trimmed of surrounding blanks, inside quotes too; an empty field is missing;
* codes (txn_type, status, card_type, cvm) are compared upper-cased;
* auto_refunds_enabled is 'true' or 'false' in any case; anything else quarantines the row;
* a client_id on two client_rules rows quarantines both (the client is then not enrolled);
* refund_window_days empty means 180, else a whole number of days (no sign); a
  min_balance_threshold empty means no threshold;
* an amount may carry a leading sign ('+5'); '.5', '5.' and '1e1' are not plain decimals;
* a blank line is no row; a line with the wrong number of fields is quarantined;
* a missing client_id or account_id does not quarantine a credit or a transaction (the credit is
  then not enrolled, or gets rule 4; the transaction matches no credit);
* card_exp ``MM/YY`` means month MM of year 20YY; the card is valid through the last day of that
  month and expired at D when D is after that day;
* SALE rows need card_type, cvm, card_exp, card_last4 and card_token; on REFUND rows the card
  fields may be empty, but when present they must be valid;
* a credit with credit_amount <= 0 is read (it gets rule 4); a transaction amount <= 0 is
  quarantined;
* a quarantined transaction row is not a version of its txn_id: an earlier readable version in
  an earlier file stays the one known (the project says "the latest readable version");
* a refund known both ways (a processor REFUND, SETTLED or PENDING, whose merchant_reference is
  the refund_id of a prior refund) counts once, at the processor's amount; a declined prior
  refund never counts; processor REFUND rows count only when SETTLED or PENDING;
* CONTRACT 7: a field that is one card number (13 to 19 digits, in groups joined by single
  spaces or dashes, passing Luhn; narrower than the product's detector, which also finds one
  inside a longer text) is read as its masked text, which no reader accepts, unless it is an
  identifier (``*_id``, merchant_reference, kept as they are) or a card field: a card_token or
  card_last4 holding one quarantines the transaction;
* an outcome carries original_txn_id when DUE, and when a credit lost the sharing of a sale
  (EXCEPTION CREDIT_EXCEEDS_TRANSACTION after allocation: the sale it lost); otherwise none.

Not modelled: the project's own choice that a processor REFUND carrying a refund_id of D's own
run is not counted in a rerun of D (only reachable when a transactions file of D is re-delivered
with such rows); the tests never generate it.

Over 300 lines on purpose: the reference is independent only if it is whole, read top to bottom.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

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

TXN_TYPES = {"SALE", "REFUND"}
STATUSES = {"SETTLED", "PENDING", "DECLINED", "VOIDED"}
CARD_TYPES = {"CREDIT", "DEBIT", "PREPAID"}
CVMS = {"PIN", "SIGNATURE", "NONE"}
DEFAULT_WINDOW_DAYS = 180

DUE = "DUE"
EXCEPTION = "EXCEPTION"
NOT_ENROLLED = "NOT_ENROLLED"
ALREADY_REQUESTED = "ALREADY_REQUESTED"


# --------------------------------------------------------------------------------------------
# Typed rows


@dataclass(frozen=True)
class Credit:
    credit_id: str
    client_id: str | None
    account_id: str | None
    credit_amount: Decimal
    credit_date: dt.date


@dataclass(frozen=True)
class ClientRule:
    client_id: str
    enabled: bool
    min_balance_threshold: Decimal | None
    refund_window_days: int


@dataclass(frozen=True)
class Txn:
    txn_id: str
    client_id: str | None
    account_id: str | None
    txn_type: str
    original_txn_id: str | None
    merchant_reference: str | None
    amount: Decimal
    txn_date: dt.date
    status: str
    card_type: str | None
    cvm: str | None
    card_exp: tuple[int, int] | None  # (year, month)
    card_token: str | None
    card_last4: str | None


@dataclass(frozen=True)
class Quarantined:
    line_number: int  # the header is line 1
    raw_line: str
    error: str


@dataclass(frozen=True)
class PriorRefund:
    """A refund this system requested in the run of another date (from the ledger)."""

    refund_id: str
    credit_id: str
    original_txn_id: str
    refund_amount: Decimal
    requested_date: dt.date
    declined: bool


@dataclass(frozen=True)
class Outcome:
    credit_id: str
    outcome: str
    reason_code: str | None
    original_txn_id: str | None
    refund_amount: Decimal | None


class BadRow(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Field readers: each returns the typed value or raises BadRow


_NUMBER = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_CARD_EXP = re.compile(r"^([0-9]{2})/([0-9]{2})$")
_LAST4 = re.compile(r"^[0-9]{4}$")
_WHOLE_DAYS = re.compile(r"^[0-9]+$")


_WHOLE_CARD = re.compile(r"^[0-9]+(?:[ -][0-9]+)*$")
CARD_FIELDS = ("card_token", "card_last4")


def _is_card_number(value: str) -> bool:
    digits = value.replace(" ", "").replace("-", "")
    if not _WHOLE_CARD.match(value) or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        doubled = int(digit) * (2 if position % 2 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _as_landed(name: str, value: str) -> str:
    """CONTRACT 7: a card number outside an identifier or a card field is kept masked."""
    kept = name.endswith("_id") or name == "merchant_reference" or name in CARD_FIELDS
    if kept or not _is_card_number(value):
        return value
    return "*" * 12 + value[-4:]


def _required(row: dict[str, str | None], name: str) -> str:
    value = row[name]
    if value is None:
        raise BadRow(f"missing {name}")
    return value


def _money(value: str, name: str) -> Decimal:
    if not _NUMBER.match(value):
        raise BadRow(f"bad number in {name}: {value!r}")
    if "." in value and len(value.split(".")[1]) > 2:
        raise BadRow(f"more than two decimals in {name}: {value!r}")
    if abs(Decimal(value)) >= Decimal(10) ** 16:
        raise BadRow(f"{name} does not fit DECIMAL(18,2): {value!r}")  # the project's choice
    return Decimal(value)


def _date(value: str, name: str) -> dt.date:
    if not _DATE.match(value):
        raise BadRow(f"bad date in {name}: {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRow(f"bad date in {name}: {value!r}") from None


def _code(value: str, name: str, allowed: set[str]) -> str:
    code = value.upper()
    if code not in allowed:
        raise BadRow(f"unknown {name}: {value!r}")
    return code


def _card_exp(value: str) -> tuple[int, int]:
    match = _CARD_EXP.match(value)
    if not match or not 1 <= int(match.group(1)) <= 12:
        raise BadRow(f"card_exp is not MM/YY: {value!r}")
    return 2000 + int(match.group(2)), int(match.group(1))


def _last4(value: str) -> str:
    if not _LAST4.match(value):
        raise BadRow(f"card_last4 is not 4 digits: {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# Files


def _split(content: str, header: tuple[str, ...]) -> list[tuple[int, str, dict | None]]:
    """(line_number, raw_line, fields or None when the field count is wrong) per data line."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert tuple(next(csv.reader([lines[0]]))) == header, "wrong header"
    out = []
    for index, raw in enumerate(lines[1:], start=2):
        raw = raw.rstrip("\r")
        if raw == "":
            continue  # a blank line is no row
        values = next(csv.reader([raw]), [])
        if len(values) != len(header):
            out.append((index, raw, None))
            continue
        fields = {}
        for name, value in zip(header, values, strict=True):
            value = _as_landed(name, value.strip())
            fields[name] = value if value != "" else None
        out.append((index, raw, fields))
    return out


def _read(content, header, key, reader):
    """Read every line; quarantine bad ones and every line of a key seen twice in the file."""
    lines = _split(content, header)
    counts = Counter(fields[key] for _, _, fields in lines if fields and fields[key] is not None)
    rows, quarantined = [], []
    for line_number, raw, fields in lines:
        try:
            if fields is None:
                raise BadRow("wrong number of fields")
            if fields[key] is not None and counts[fields[key]] > 1:
                raise BadRow(f"{key} {fields[key]!r} appears more than once in the file")
            rows.append(reader(fields))
        except BadRow as error:
            quarantined.append(Quarantined(line_number, raw, str(error)))
    return rows, quarantined


def _credit(row) -> Credit:
    return Credit(
        credit_id=_required(row, "credit_id"),
        client_id=row["client_id"],
        account_id=row["account_id"],
        credit_amount=_money(_required(row, "credit_amount"), "credit_amount"),
        credit_date=_date(_required(row, "credit_date"), "credit_date"),
    )


def _client_rule(row) -> ClientRule:
    enabled = _required(row, "auto_refunds_enabled").lower()
    if enabled not in ("true", "false"):
        raise BadRow(f"auto_refunds_enabled is not true or false: {enabled!r}")
    threshold = row["min_balance_threshold"]
    window = row["refund_window_days"]
    if window is not None and not _WHOLE_DAYS.match(window):
        raise BadRow(f"refund_window_days is not a whole number of days: {window!r}")
    return ClientRule(
        client_id=_required(row, "client_id"),
        enabled=enabled == "true",
        min_balance_threshold=None
        if threshold is None
        else _money(threshold, "min_balance_threshold"),
        refund_window_days=DEFAULT_WINDOW_DAYS if window is None else int(window),
    )


def _txn(row) -> Txn:
    txn_id = _required(row, "txn_id")
    txn_type = _code(_required(row, "txn_type"), "txn_type", TXN_TYPES)
    amount = _money(_required(row, "amount"), "amount")
    if amount <= 0:
        raise BadRow(f"amount not above zero: {amount}")
    is_sale = txn_type == "SALE"

    def card(name, read):
        value = _required(row, name) if is_sale else row[name]
        if value is not None and _is_card_number(value):
            raise BadRow(f"{name} holds a card number")
        return None if value is None else read(value)

    return Txn(
        txn_id=txn_id,
        client_id=row["client_id"],
        account_id=row["account_id"],
        txn_type=txn_type,
        original_txn_id=row["original_txn_id"],
        merchant_reference=row["merchant_reference"],
        amount=amount,
        txn_date=_date(_required(row, "txn_date"), "txn_date"),
        status=_code(_required(row, "status"), "status", STATUSES),
        card_type=card("card_type", lambda v: _code(v, "card_type", CARD_TYPES)),
        cvm=card("cvm", lambda v: _code(v, "cvm", CVMS)),
        card_exp=card("card_exp", _card_exp),
        card_token=card("card_token", lambda v: v),
        card_last4=card("card_last4", _last4),
    )


def read_credits(content: str) -> tuple[list[Credit], list[Quarantined]]:
    return _read(content, CREDITS_HEADER, "credit_id", _credit)


def read_transactions(content: str) -> tuple[list[Txn], list[Quarantined]]:
    return _read(content, TRANSACTIONS_HEADER, "txn_id", _txn)


def read_client_rules(content: str) -> tuple[dict[str, ClientRule], list[Quarantined]]:
    rows, quarantined = _read(content, CLIENT_RULES_HEADER, "client_id", _client_rule)
    return {rule.client_id: rule for rule in rows}, quarantined


def quarantine(
    as_of: dt.date,
    credits_csv: str,
    client_rules_csv: str,
    transactions_csvs: dict[dt.date, str],
) -> set[tuple[str, int]]:
    """(file kind and date, line_number) of every quarantined line the run of D looks at."""
    out = {(f"credits_{as_of:%Y%m%d}", q.line_number) for q in read_credits(credits_csv)[1]}
    out |= {("client_rules", q.line_number) for q in read_client_rules(client_rules_csv)[1]}
    for day, content in transactions_csvs.items():
        if day <= as_of:
            out |= {
                (f"transactions_{day:%Y%m%d}", q.line_number) for q in read_transactions(content)[1]
            }
    return out


# --------------------------------------------------------------------------------------------
# Rules


def transactions_known_at(as_of: dt.date, transactions_csvs: dict[dt.date, str]) -> dict[str, Txn]:
    """The latest readable version of each txn_id from the files dated on or before D."""
    known: dict[str, Txn] = {}
    for day in sorted(transactions_csvs):
        if day <= as_of:
            for txn in read_transactions(transactions_csvs[day])[0]:
                known[txn.txn_id] = txn
    return known


def remaining_by_sale(
    known: dict[str, Txn], prior_refunds: list[PriorRefund]
) -> dict[str, Decimal]:
    """remaining(t) for every SALE known at D."""
    counted = [
        t for t in known.values() if t.txn_type == "REFUND" and t.status in ("SETTLED", "PENDING")
    ]
    known_both_ways = {t.merchant_reference for t in counted if t.merchant_reference is not None}
    remaining = {t.txn_id: t.amount for t in known.values() if t.txn_type == "SALE"}
    for refund in counted:
        if refund.original_txn_id in remaining:
            remaining[refund.original_txn_id] -= refund.amount
    for prior in prior_refunds:
        if prior.declined or prior.refund_id in known_both_ways:
            continue
        if prior.original_txn_id in remaining:
            remaining[prior.original_txn_id] -= prior.refund_amount
    return remaining


def card_expired(card_exp: tuple[int, int], as_of: dt.date) -> bool:
    year, month = card_exp
    last_day = dt.date(year, month, calendar.monthrange(year, month)[1])
    return as_of > last_day


def decide(
    as_of: dt.date,
    credits_csv: str,
    client_rules_csv: str,
    transactions_csvs: dict[dt.date, str],
    prior_refunds: list[PriorRefund],
) -> list[Outcome]:
    """One outcome per readable credit of the snapshot of D, by the rules of CONTRACT 3."""
    credits, _ = read_credits(credits_csv)
    rules, _ = read_client_rules(client_rules_csv)
    known = transactions_known_at(as_of, transactions_csvs)
    remaining = remaining_by_sale(known, prior_refunds)
    sales = [
        t
        for t in known.values()
        if t.txn_type == "SALE" and t.status == "SETTLED" and t.txn_date <= as_of
    ]

    outcomes: dict[str, Outcome] = {}
    due_against: dict[str, list[Credit]] = defaultdict(list)

    def exception(credit: Credit, reason: str, txn_id: str | None = None) -> None:
        outcomes[credit.credit_id] = Outcome(credit.credit_id, EXCEPTION, reason, txn_id, None)

    for credit in credits:
        rule = rules.get(credit.client_id)
        priors = [p for p in prior_refunds if p.credit_id == credit.credit_id]
        if rule is None or not rule.enabled:  # 1
            outcomes[credit.credit_id] = Outcome(credit.credit_id, NOT_ENROLLED, None, None, None)
            continue
        if any(not p.declined for p in priors):  # 2
            outcomes[credit.credit_id] = Outcome(
                credit.credit_id, ALREADY_REQUESTED, None, None, None
            )
            continue
        if priors:  # 3: every prior refund of this credit was declined
            exception(credit, "PREVIOUSLY_DECLINED")
            continue
        if credit.account_id is None or credit.credit_amount <= 0:  # 4
            exception(credit, "MISSING_REQUIREMENTS")
            continue
        threshold = rule.min_balance_threshold
        if threshold is not None and credit.credit_amount < threshold:  # 5
            exception(credit, "BELOW_MIN_THRESHOLD")
            continue
        left = [
            t for t in sales if (t.client_id, t.account_id) == (credit.client_id, credit.account_id)
        ]
        if not left:  # 6
            exception(credit, "NO_MATCHING_TRANSACTION")
            continue
        left = [t for t in left if remaining[t.txn_id] >= credit.credit_amount]
        if not left:  # 7
            exception(credit, "CREDIT_EXCEEDS_TRANSACTION")
            continue
        left = [t for t in left if not (t.card_type == "DEBIT" and t.cvm == "PIN")]
        if not left:  # 8
            exception(credit, "DEBIT_PIN_TRANSACTION")
            continue
        left = [t for t in left if not card_expired(t.card_exp, as_of)]
        if not left:  # 9
            exception(credit, "CARD_EXPIRED")
            continue
        left = [t for t in left if (as_of - t.txn_date).days <= rule.refund_window_days]
        if not left:  # 10
            exception(credit, "REFUND_WINDOW_EXPIRED")
            continue
        # 11: latest txn_date, then largest amount, then smallest txn_id
        best = min(left, key=lambda t: (-t.txn_date.toordinal(), -t.amount, t.txn_id))
        due_against[best.txn_id].append(credit)

    # Several credits DUE against one sale: admit in (credit_date, credit_id) order while the
    # running total of all credits so far in that order is within remaining(t).
    for txn_id, group in due_against.items():
        running = Decimal(0)
        for credit in sorted(group, key=lambda c: (c.credit_date, c.credit_id)):
            running += credit.credit_amount
            if running <= remaining[txn_id]:
                outcomes[credit.credit_id] = Outcome(
                    credit.credit_id, DUE, None, txn_id, credit.credit_amount
                )
            else:  # the project records the sale it lost the allocation on
                exception(credit, "CREDIT_EXCEEDS_TRANSACTION", txn_id)

    return sorted(outcomes.values(), key=lambda o: o.credit_id)
