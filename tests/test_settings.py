"""Every AUTO_REFUNDS_* setting is checked when it is read: a bad value fails naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auto_refunds.settings import PREFIX, REPO_ROOT, Settings, SettingsError

ALL = (
    "DATA_DIR",
    "SQL_DIR",
    "DUCKDB_MEMORY_LIMIT",
    "DUCKDB_THREADS",
    "LOCK_TIMEOUT_SECONDS",
    "PAYMENT_FILE_TIMEOUT_HOURS",
    "NO_RESPONSE_AFTER_DAYS",
    "PAYMENT_FILE_SETTLE_SECONDS",
    "PAYMENT_FILE_POKE_SECONDS",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ALL:
        monkeypatch.delenv(f"AUTO_REFUNDS_{name}", raising=False)
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(tmp_path / "data"))


def test_the_defaults():
    settings = Settings.from_env()
    assert settings.sql_dir == REPO_ROOT / "include" / "sql"
    assert settings.duckdb_memory_limit == "3GB"
    assert settings.duckdb_threads == 0
    assert settings.lock_timeout_seconds == 600
    assert settings.payment_file_timeout_hours == 24
    assert settings.no_response_after_days == 3
    assert settings.payment_file_settle_seconds == 60


def test_the_data_root_is_resolved_absolute_and_created(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", "relative/../root/")
    settings = Settings.from_env()
    assert settings.data_dir == tmp_path / "root"
    assert settings.data_dir.is_absolute() and settings.data_dir.is_dir()


def test_a_relative_sql_dir_is_resolved(monkeypatch):
    monkeypatch.chdir(REPO_ROOT / "include")
    monkeypatch.setenv("AUTO_REFUNDS_SQL_DIR", "./sql")
    assert Settings.from_env().sql_dir == REPO_ROOT / "include" / "sql"


GOOD = [
    ("DUCKDB_MEMORY_LIMIT", "512MB", "duckdb_memory_limit", "512MB"),
    ("DUCKDB_MEMORY_LIMIT", "2GiB", "duckdb_memory_limit", "2GiB"),
    ("DUCKDB_MEMORY_LIMIT", "80%", "duckdb_memory_limit", "80%"),
    ("DUCKDB_THREADS", "4", "duckdb_threads", 4),
    ("DUCKDB_THREADS", " 0 ", "duckdb_threads", 0),
    ("LOCK_TIMEOUT_SECONDS", "0.5", "lock_timeout_seconds", 0.5),
    ("PAYMENT_FILE_TIMEOUT_HOURS", "48", "payment_file_timeout_hours", 48),
    ("NO_RESPONSE_AFTER_DAYS", "1", "no_response_after_days", 1),
    ("PAYMENT_FILE_SETTLE_SECONDS", "0", "payment_file_settle_seconds", 0),
    ("PAYMENT_FILE_SETTLE_SECONDS", "2.5", "payment_file_settle_seconds", 2.5),
    ("PAYMENT_FILE_POKE_SECONDS", "45", "payment_file_poke_seconds", 45),
]


@pytest.mark.parametrize(("name", "value", "field", "expected"), GOOD)
def test_a_good_value_is_taken(monkeypatch, name, value, field, expected):
    monkeypatch.setenv(f"AUTO_REFUNDS_{name}", value)
    assert getattr(Settings.from_env(), field) == expected


def _a_file(tmp_path: Path) -> str:
    path = tmp_path / "a-file"
    path.write_text("")
    return str(path)


def _under_a_file(tmp_path: Path) -> str:
    return str(Path(_a_file(tmp_path)) / "data")


BAD = [
    ("DATA_DIR", _a_file, "is not a folder"),
    ("DATA_DIR", _under_a_file, "cannot create the folder"),
    ("SQL_DIR", lambda tmp_path: str(tmp_path / "nowhere"), "is not a folder"),
    ("SQL_DIR", lambda tmp_path: str(tmp_path), "holds no warehouse/tables.sql"),
    ("DUCKDB_MEMORY_LIMIT", "lots", "not a DuckDB memory size"),
    ("DUCKDB_MEMORY_LIMIT", "3", "not a DuckDB memory size"),
    ("DUCKDB_MEMORY_LIMIT", "3XB", "unknown unit"),
    ("DUCKDB_MEMORY_LIMIT", "1MB", "at least 64MB"),
    ("DUCKDB_MEMORY_LIMIT", "120%", "at most 100"),
    ("DUCKDB_THREADS", "two", "not a whole number"),
    ("DUCKDB_THREADS", "1.5", "not a whole number"),
    ("DUCKDB_THREADS", "-1", "must be 0 to 256"),
    ("DUCKDB_THREADS", "100000", "must be 0 to 256"),
    ("LOCK_TIMEOUT_SECONDS", "0", "must be above 0"),
    ("LOCK_TIMEOUT_SECONDS", "-5", "must be at least 0"),
    ("LOCK_TIMEOUT_SECONDS", "soon", "not a number"),
    ("LOCK_TIMEOUT_SECONDS", "inf", "must be at least 0"),
    ("PAYMENT_FILE_TIMEOUT_HOURS", "0", "must be above 0"),
    ("PAYMENT_FILE_TIMEOUT_HOURS", "nan", "must be at least 0"),
    ("NO_RESPONSE_AFTER_DAYS", "0", "must be at least 1"),
    ("NO_RESPONSE_AFTER_DAYS", "2.5", "not a whole number"),
    ("PAYMENT_FILE_SETTLE_SECONDS", "-1", "must be at least 0"),
    ("PAYMENT_FILE_SETTLE_SECONDS", "a minute", "not a number"),
    ("PAYMENT_FILE_POKE_SECONDS", "0", "must be above 0"),
]


@pytest.mark.parametrize(("name", "value", "why"), BAD)
def test_a_bad_value_fails_naming_the_variable_and_the_value(
    monkeypatch, tmp_path, name, value, why
):
    value = value(tmp_path) if callable(value) else value
    monkeypatch.setenv(f"AUTO_REFUNDS_{name}", value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert message.startswith(f"AUTO_REFUNDS_{name}={value!r}: ")
    assert why in message
    assert isinstance(raised.value, ValueError)


def test_every_setting_has_a_test():
    """Each field of Settings is read from the variable of its name, and tested above."""
    assert set(Settings.__dataclass_fields__) == {name.lower() for name in ALL}
    assert {name for name, *_ in GOOD + BAD} == set(ALL)


# README's settings table against the variables the code reads. ---------------------------------

# Set only by the kill tests (tests/test_kill.py), to stop a run at a crash point
# (auto_refunds.faults): not a setting anyone deploys, so not in the table.
TEST_ONLY = {"AUTO_REFUNDS_CRASH_AT"}
VARIABLE = re.compile(r"\bAUTO_REFUNDS_[A-Z0-9_]*[A-Z0-9]\b")
# The first argument of settings.py's readers, a name without the prefix: _env("DATA_DIR", ...),
# _positive("LOCK_TIMEOUT_SECONDS", ...), and any private helper called the same way.
HELPER_CALL = re.compile(r"\b_[a-z_]+\(\s*\"([A-Z][A-Z0-9_]*)\"")


def _readme_settings_table() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return [
        match[1]
        for line in section.splitlines()
        if (match := re.match(r"\| `(AUTO_REFUNDS_[A-Z0-9_]+)` \|", line))
    ]


def _read_by_settings_module() -> set[str]:
    source = (REPO_ROOT / "plugins" / "auto_refunds" / "settings.py").read_text()
    return {PREFIX + name for name in HELPER_CALL.findall(source)}


def _named_in_source_trees() -> set[str]:
    names: set[str] = set()
    for tree in ("plugins", "dags"):
        for path in (REPO_ROOT / tree).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                names |= set(VARIABLE.findall(path.read_bytes().decode("utf-8", "replace")))
    return names


def test_the_readme_lists_each_setting_once():
    table = _readme_settings_table()
    assert table, "README.md has no settings table under '## Settings'"
    twice = sorted({name for name in table if table.count(name) > 1})
    assert not twice, f"listed twice in README.md's settings table: {twice}"


def test_the_readme_settings_table_is_every_variable_the_code_reads():
    table = set(_readme_settings_table())
    settings = _read_by_settings_module()
    elsewhere = _named_in_source_trees()
    # The scan of settings.py must see what it reads, and the test-only variable must still exist.
    assert PREFIX + "DATA_DIR" in settings and PREFIX + "DUCKDB_MEMORY_LIMIT" in settings
    assert elsewhere >= TEST_ONLY, "a test-only variable is gone: update TEST_ONLY"
    read = settings | (elsewhere - TEST_ONLY)
    assert table - read == set(), "in README.md's settings table, but read nowhere"
    assert read - table == set(), "read by the code, but missing from README.md's settings table"
