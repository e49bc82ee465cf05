"""Seeded sample data in the contract's formats: ImagineOne credits and client rules, ImaginePay
transactions, for a range of consecutive days.

    python -m auto_refunds.demo.sample_data --out data --start 2026-03-02 --days 3 \\
        --credits 2000 --transactions 8000 --seed 7

DuckDB generates and writes the rows, up to the benchmark's 10M size (docs/performance.md
says how long that takes); randomness comes from hashing row numbers with the seed, so the same
arguments give the same bytes.

What it contains, so that every rule of the contract is exercised:
- six clients: four enrolled with different thresholds and windows, one disabled, one missing
  from client_rules (and one malformed client_rules row);
- card history over 14 months before the first day, two cards per account, credit, debit (PIN or
  signature) and prepaid cards, some expiring before or during the run;
- settled, pending, voided and declined sales; partial refunds, some pending or declined;
- the first day's extract carries the history; each later day adds that day's sales and settles
  some pending sales again under the same txn_id (the latest file wins);
- each day's credit snapshot keeps two thirds of the previous day's credits and adds new ones,
  with amounts below the sale, above it, zero or negative, below a threshold, on empty or unknown
  accounts, and several credits sharing one sale;
- a few malformed lines per file: bad numbers, three decimals, impossible dates, unknown codes,
  bad card expiry, missing and duplicated ids, wrong field counts.

It is one module over 300 lines on purpose: each table's rows are one SQL statement, and the
statements share the hashed randomness and the profile's shares, which read best side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auto_refunds.layout import (
    CLIENT_RULES_HEADER,
    CREDITS_HEADER,
    TRANSACTIONS_HEADER,
    Layout,
    make_folder,
    open_private,
)

log = logging.getLogger(__name__)

CLIENT_RULES = [
    ("CL001", "true", "5.00", ""),
    ("CL002", "true", "", "90"),
    ("CL003", "true", "10.00", "365"),
    ("CL004", "false", "", ""),
    ("CL005", "true", "", ""),
    # CL006 has credits and card sales but is not in client_rules at all.
]
CLIENT_COUNT = 6


@dataclass(frozen=True)
class Profile:
    """How the credits meet the card history. The default is the demo's data; ``varied`` is shaped
    like a practice's real data: most credits from recent sales, so about 45% are
    due, many credits sharing one sale, and malformed lines scattered through the extract;
    ``quoted`` is the default's records written as many exporters write CSV."""

    # Credits pointing at a busy sale shared with two others.
    shared: float = 0.05
    # Credits whose sale is drawn from the settled sales of enrolled clients in the last
    # ``recent_days`` (a practice that turned auto-refunds on sends most of the credits).
    recent: float = 0.0
    recent_days: int = 60
    # Lines of the first extract with a malformed amount (quarantined), besides the few at the end.
    malformed: float = 0.0
    # Written the way many exporters write CSV, over the same records: every text field quoted
    # (dates too; amounts are numbers and stay unquoted), an empty field as "", card tokens of 28
    # to 32 characters, a note in the merchant_reference of every practice refund (one in
    # ``comma_every`` holding a quoted comma), and one line in ``crlf_every`` ending in CRLF (so
    # the files' line ends are mixed).
    quoted: bool = False
    comma_every: int = 20
    crlf_every: int = 50


PROFILES = {
    "default": Profile(),
    "varied": Profile(shared=0.30, recent=0.95, malformed=0.001),
    "quoted": Profile(quoted=True),
}
# Written unquoted in the quoted profile: the numbers.
NUMERIC_COLUMNS = ("amount", "credit_amount", "min_balance_threshold", "refund_window_days")


@dataclass(frozen=True)
class Spec:
    start: dt.date
    days: int
    credits: int
    transactions: int
    seed: int
    profile: Profile = Profile()
    # A year in production: the first extract holds the card history, each later one about 0.5%
    # new transactions and 0.1% changed statuses (pending sales settled), over the first.
    steady: bool = False

    @property
    def history_sales(self) -> int:
        return max(20, round(self.transactions * 0.80))

    @property
    def daily_sales(self) -> int:
        if self.steady:
            return max(3, round(self.transactions * 0.005))
        return max(3, round(self.transactions * 0.14 / self.days))

    @property
    def accounts(self) -> int:
        return max(10, self.history_sales // 3)

    @property
    def credit_step(self) -> int:
        """New credits per day: a third of the snapshot turns over each day."""
        return max(1, self.credits // 3)


def _macros(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    con.execute(f"set variable seed = {int(spec.seed)}")
    con.execute(f"set variable start_date = date '{spec.start.isoformat()}'")
    con.execute(f"set variable accounts = {spec.accounts}")
    # A uniform number in [0, 1) for (key, salt), with the 53 bits of a double (tens of millions
    # of accounts stay distinct): the same for the same seed, everywhere.
    con.execute(
        "create or replace macro rnd(key, salt) as "
        "(hash(key::varchar || ':' || salt || ':' || getvariable('seed')) >> 11)::double "
        "/ 9007199254740992.0"
    )
    con.execute("create or replace macro pick(key, salt, n) as floor(rnd(key, salt) * n)::bigint")
    con.execute("create or replace macro money(x) as round(x, 2)::decimal(18, 2)")


def _cards(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    """Two cards per account, with their own type, expiry, token and last four."""
    token = "'tok_' || substr(md5(getvariable('seed') || ':card:' || a || '/' || k), 1, 20)"
    if spec.profile.quoted:
        # A processor's token, like tok_1N3T00LkdIwHu7ixt44h1F8k: letters of both cases and
        # digits, 24 to 28 of them after the prefix.
        token = (
            "'tok_' || substr(translate(to_base64(unhex(sha256(getvariable('seed') || ':card:' "
            "|| a || '/' || k))), '+/=', 'xyz'), 1, 24 + pick(a || '/' || k, 'token_length', 5))"
        )
    con.execute(
        f"""
        create or replace table cards as
        select
            a as account_no,
            k as card_no,
            case
                when rnd(a || '/' || k, 'type') < 0.68 then 'CREDIT'
                when rnd(a || '/' || k, 'type') < 0.94 then 'DEBIT'
                else 'PREPAID'
            end as card_type,
            -- Expiry from a year before the start to four years after it.
            (getvariable('start_date') - interval 12 month
                + to_months(pick(a || '/' || k, 'exp', 60)::integer))::date as exp_month,
            {token} as card_token,
            lpad(pick(a || '/' || k, 'last4', 10000)::varchar, 4, '0') as card_last4,
        from range(getvariable('accounts')) r(a), range(2) c(k)
        """
    )


def _sales(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    con.execute(
        f"""
        create or replace table sales as
        with
        history as (
            select
                i,
                'T' || lpad(i::varchar, 10, '0') as txn_id,
                pick(i, 'account', getvariable('accounts')) as account_no,
                pick(i, 'card', 2) as card_no,
                getvariable('start_date') - pick(i, 'age', 425)::integer as txn_date,
                1 as file_day,
            from range({spec.history_sales}) r(i)
        ),
        daily as (
            select
                {spec.history_sales} + d * {spec.daily_sales} + j as i,
                'T' || lpad(({spec.history_sales} + d * {spec.daily_sales} + j)::varchar, 10, '0')
                    as txn_id,
                pick(d || '/' || j, 'account', getvariable('accounts')) as account_no,
                pick(d || '/' || j, 'card', 2) as card_no,
                getvariable('start_date') + d::integer as txn_date,
                d + 1 as file_day,
            from range({spec.days}) r(d), range({spec.daily_sales}) s(j)
        ),
        all_sales as (
            select * from history
            union all
            select * from daily
        )
        select
            all_sales.*,
            'CL' || lpad((account_no % {CLIENT_COUNT} + 1)::varchar, 3, '0') as client_id,
            'A' || lpad(account_no::varchar, 8, '0') as account_id,
            money(5 + pick(i, 'amount', 40000) / 100.0) as amount,
            case
                when rnd(i, 'status') < 0.90 then 'SETTLED'
                when rnd(i, 'status') < 0.95 then 'PENDING'
                when rnd(i, 'status') < 0.98 then 'VOIDED'
                else 'DECLINED'
            end as status,
            cards.card_type,
            case
                when cards.card_type = 'DEBIT' and rnd(i, 'cvm') < 0.6 then 'PIN'
                when rnd(i, 'cvm') < 0.75 then 'SIGNATURE'
                else 'NONE'
            end as cvm,
            strftime(cards.exp_month, '%m/%y') as card_exp,
            cards.card_token,
            cards.card_last4,
        from all_sales
        inner join cards using (account_no, card_no)
        """
    )


def _transactions(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    """Every transaction row, by the day of the extract that carries it."""
    # Steady: about 4% of the history is pending and 60% of it settles, 24 nights' worth.
    settle_day = (
        "2 + pick(i, 'settle', 24)"
        if spec.steady
        else f"least({spec.days}, file_day + 1 + pick(i, 'settle', 2))"
    )
    # The practice's own note on its refund; one in ``comma_every`` holds a comma, which quoted
    # is one field (the careful reading's lines, csv_fields).
    note = (
        f"'Front desk refund' || if(pick(txn_id, 'comma', {spec.profile.comma_every}) = 0, "
        "', ', ' ') || txn_id"
        if spec.profile.quoted
        else "null"
    )
    con.execute(
        f"""
        create or replace table transaction_rows as
        with
        sale_rows as (
            select
                file_day, txn_id, client_id, account_id, 'SALE' as txn_type,
                null as original_txn_id, null as merchant_reference, amount, txn_date, status,
                card_type, cvm, card_exp, card_token, card_last4,
            from sales
        ),
        -- Pending sales settle on a later day: the same txn_id again, in a later extract.
        settled_later as (
            select
                {settle_day} as file_day,
                txn_id, client_id, account_id, 'SALE' as txn_type, null, null, amount,
                txn_date, 'SETTLED' as status, card_type, cvm, card_exp, card_token, card_last4,
            from sales
            where status = 'PENDING' and rnd(i, 'settles') < 0.6 and file_day < {spec.days}
        ),
        -- Partial refunds made at the practice, most settled, some pending or declined.
        refunds as (
            select
                file_day,
                'R' || substr(txn_id, 2) as txn_id,
                client_id, account_id, 'REFUND' as txn_type,
                txn_id as original_txn_id, {note} as merchant_reference,
                money(greatest(1, amount * (0.1 + rnd(i, 'refund') * 0.6))) as amount,
                least(txn_date + 3, getvariable('start_date')) as txn_date,
                case
                    when rnd(i, 'refund_status') < 0.8 then 'SETTLED'
                    when rnd(i, 'refund_status') < 0.9 then 'PENDING'
                    else 'DECLINED'
                end as status,
                card_type, cvm, card_exp, card_token, card_last4,
            from sales
            where status = 'SETTLED' and file_day = 1 and rnd(i, 'refunded') < 0.06
        )
        select * from sale_rows
        union all
        select * from settled_later
        union all
        select * from refunds
        """
    )
    if spec.steady:
        con.execute(f"delete from transaction_rows where file_day > {spec.days}")


def _credits(con: duckdb.DuckDBPyConnection, spec: Spec) -> None:
    """The pool of credits; the snapshot of day d holds a window of it."""
    pool = spec.credits + spec.credit_step * (spec.days - 1)
    profile = spec.profile
    recent, recent_pick = "", ""
    if profile.recent:
        # Numbered so that a credit can draw one of them uniformly.
        recent = f"""
        recent as (
            select row_number() over (order by i) - 1 as k, i
            from sales
            where file_day = 1 and status = 'SETTLED' and client_id not in ('CL004', 'CL006')
                and txn_date >= getvariable('start_date') - {profile.recent_days}
        ),
        recent_count as (select count(*) as n from recent),"""
        # Shared sales among them too: three credits to a key.
        recent_pick = f"""
                    when rnd(j, 'recent') < {profile.recent} then (
                        select recent.i from recent
                        where recent.k = pick(
                            case when rnd(j, 'shared') < {profile.shared} then j // 3 else j end,
                            'recent_sale',
                            (select n from recent_count)
                        )
                    )"""
    con.execute(
        f"""
        create or replace table credit_pool as
        with{recent}
        drawn as (
            select
                j,
                'CR' || lpad(j::varchar, 10, '0') as credit_id,
                -- Some credits point at a busy sale shared with others.
                case{recent_pick}
                    when rnd(j, 'shared') < {profile.shared}
                        then pick(j // 3, 'sale', {spec.history_sales})
                    else pick(j, 'sale', {spec.history_sales})
                end as sale_i,
                rnd(j, 'kind') as kind,
                j // {spec.credit_step} - 2 as first_day_index,
            from range({pool}) r(j)
        )
        select
            drawn.credit_id,
            drawn.first_day_index,
            sales.client_id,
            case
                when kind < 0.01 then null
                when kind < 0.04 then 'AX' || lpad(drawn.j::varchar, 8, '0')
                else sales.account_id
            end as account_id,
            case
                when kind < 0.80 then money(sales.amount * (0.05 + rnd(drawn.j, 'part') * 0.85))
                when kind < 0.88 then money(sales.amount * (1.2 + rnd(drawn.j, 'over')))
                when kind < 0.895 then 0.00::decimal(18, 2)
                when kind < 0.90 then money(-1 - rnd(drawn.j, 'neg') * 20)
                when kind < 0.95 then money(0.5 + rnd(drawn.j, 'tiny') * 9)
                else money(sales.amount)
            end as credit_amount,
            getvariable('start_date') + drawn.first_day_index::integer
                - pick(drawn.j, 'credit_age', 30)::integer as credit_date,
        from drawn
        inner join sales on sales.i = drawn.sale_i
        """
    )


def _copy(
    con: duckdb.DuckDBPyConnection,
    columns: list[str],
    rest: str,
    path: Path,
    profile: Profile,
) -> None:
    """``select columns rest`` into ``path``; in the quoted profile every text field quoted, an
    empty one as ""."""
    # DuckDB creates the file under the umask make_folder sets (0640); a file of an earlier
    # generation is removed first, so that none keeps a wider mode.
    make_folder(path.parent)
    path.unlink(missing_ok=True)
    target = str(path).replace("'", "''")
    options = "format csv, header true, new_line '\\n'"
    if profile.quoted:
        names = [column.split(" as ")[-1] for column in columns]
        text = [name for name in names if name not in NUMERIC_COLUMNS]
        # DuckDB writes a null as nothing even when it quotes the column; an exporter, as "".
        columns = [
            f"coalesce(({column})::varchar, '') as {name}" if name in text else column
            for column, name in zip(columns, names, strict=True)
        ]
        options += f", force_quote ({', '.join(text)})"
    con.execute(f"copy (select {', '.join(columns)} {rest}) to '{target}' ({options})")


def _quote_fields(line: str, header: tuple[str, ...]) -> str:
    """A line of plain fields as the quoted profile writes it: each field quoted but in the
    columns of numbers, by its place (a line with too many fields has its extra ones quoted)."""
    names = [*header, *[""] * len(line.split(","))]
    return ",".join(
        field if name in NUMERIC_COLUMNS and field else f'"{field}"'
        for field, name in zip(line.split(","), names, strict=False)
    )


def _append(path: Path, lines: list[str], header: tuple[str, ...], profile: Profile) -> None:
    if profile.quoted:
        lines = [_quote_fields(line, header) for line in lines]
    with open_private(path, "a", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _some_crlf(path: Path, every: int) -> None:
    """End every ``every``-th line of ``path`` (from the header) in CRLF instead of LF."""
    temporary = path.with_name(path.name + ".part")
    with open(path, "rb") as source, open_private(temporary, "wb") as target:
        for number, line in enumerate(source, start=1):
            if number % every == 0 and line.endswith(b"\n"):
                line = line[:-1] + b"\r\n"
            target.write(line)
    temporary.replace(path)


def _malformed_credits(day: dt.date) -> list[str]:
    tag = day.strftime("%Y%m%d")
    return [
        f"BAD{tag}-1,CL001,A00000001,abc,{day}",
        f"BAD{tag}-2,CL001,A00000001,12.345,{day}",
        f"BAD{tag}-3,CL001,A00000001,10.00,{day.year}-02-30",
        f",CL001,A00000001,10.00,{day}",
        f"DUP{tag},CL001,A00000001,10.00,{day}",
        f"DUP{tag},CL001,A00000002,11.00,{day}",
        f"BAD{tag}-4,CL001,A00000001,10.00",
    ]


def _malformed_transactions(day: dt.date) -> list[str]:
    tag = day.strftime("%Y%m%d")
    card = "CREDIT,SIGNATURE,12/29,tok_malformed,4242"
    return [
        f"XBAD{tag}-1,CL001,A00000001,SALE,,,12.5x,{day},SETTLED,{card}",
        f"XBAD{tag}-2,CL001,A00000001,SALE,,,0.00,{day},SETTLED,{card}",
        f"XBAD{tag}-3,CL001,A00000001,CHARGEBACK,,,10.00,{day},SETTLED,{card}",
        f"XBAD{tag}-4,CL001,A00000001,SALE,,,10.00,{day},SETTLED,CREDIT,SIGNATURE,13/29,tok_x,4242",
        f"XBAD{tag}-5,CL001,A00000001,SALE,,,10.00,{day},SETTLED,CREDIT,SIGNATURE,12/29,tok_x,42",
        f",CL001,A00000001,SALE,,,10.00,{day},SETTLED,{card}",
        f"XDUP{tag},CL001,A00000001,SALE,,,10.00,{day},SETTLED,{card}",
        f"XDUP{tag},CL001,A00000001,SALE,,,11.00,{day},SETTLED,{card}",
    ]


def generate(out: Path, spec: Spec) -> list[dt.date]:
    """Write the sample inputs for ``spec.days`` days from ``spec.start`` into ``out``."""
    layout = Layout(out)
    spill = Path(tempfile.mkdtemp(prefix="auto-refunds-sample-"))
    # Bounded memory: at 40M transactions the working tables spill to disk instead.
    con = duckdb.connect(config={"memory_limit": "4GB", "temp_directory": str(spill)})
    try:
        _macros(con, spec)
        _cards(con, spec)
        _sales(con, spec)
        _transactions(con, spec)
        _credits(con, spec)

        rules = [",".join(CLIENT_RULES_HEADER)]
        rules += [",".join(row) for row in CLIENT_RULES]
        rules.append("CL999,maybe,,")
        if spec.profile.quoted:
            rules = [_quote_fields(line, CLIENT_RULES_HEADER) for line in rules]
        with open_private(layout.client_rules) as handle:
            handle.write("\n".join(rules) + "\n")

        days = [spec.start + dt.timedelta(days=d) for d in range(spec.days)]
        for index, day in enumerate(days):
            columns = list(TRANSACTIONS_HEADER)
            if spec.profile.malformed and index == 0:
                # Only in the first extract, on ids no later extract repeats as the latest.
                columns[columns.index("amount")] = (
                    f"case when rnd(txn_id, 'malformed') < {spec.profile.malformed} "
                    "then amount::varchar || 'x' else amount::varchar end as amount"
                )
            _copy(
                con,
                columns,
                f"from transaction_rows where file_day = {index + 1} order by txn_id",
                layout.transactions(day),
                spec.profile,
            )
            _append(
                layout.transactions(day),
                _malformed_transactions(day),
                TRANSACTIONS_HEADER,
                spec.profile,
            )
            _copy(
                con,
                list(CREDITS_HEADER),
                f"from credit_pool where first_day_index between {index - 2} and {index} "
                f"and credit_date <= date '{day.isoformat()}' order by credit_id",
                layout.credits(day),
                spec.profile,
            )
            _append(layout.credits(day), _malformed_credits(day), CREDITS_HEADER, spec.profile)
            if spec.profile.quoted:
                _some_crlf(layout.transactions(day), spec.profile.crlf_every)
                _some_crlf(layout.credits(day), spec.profile.crlf_every)
            log.info("Sample data for %s written to %s", day, out)
        return days
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the data folder to fill")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 3, 2))
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--credits", type=int, default=2000, help="credits per daily snapshot")
    parser.add_argument("--transactions", type=int, default=8000, help="transactions in all")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    generate(args.out, Spec(args.start, args.days, args.credits, args.transactions, args.seed))


if __name__ == "__main__":
    main()
