"""Each night registers every extract up to D; only a new or changed one is hashed again."""

from __future__ import annotations

import datetime as dt

import pytest
from scenario import Scenario, credit, sale

from auto_refunds import daily, fingerprints
from auto_refunds.file_lines import InputFileError

D0 = dt.date(2026, 1, 5)
D1 = dt.date(2026, 1, 6)


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The names of the files fingerprints.fingerprint read."""
    names: list[str] = []
    real = fingerprints.fingerprint

    def counting(path):
        names.append(path.name)
        return real(path)

    monkeypatch.setattr(fingerprints, "fingerprint", counting)
    return names


def test_an_unchanged_extract_is_not_hashed_again(settings, hashed):
    scenario = Scenario(settings)
    scenario.write_credits(D0, credit("C1"))
    scenario.write_transactions(D0, sale("T1"))
    assert scenario.decide(D0)["C1"][0] == "DUE"
    assert "transactions_20260105.csv" in hashed
    hashed.clear()
    scenario.write_credits(D1, credit("C1"))
    scenario.write_transactions(D1, sale("T2", "10.00"))
    scenario.decide(D1)
    assert "transactions_20260105.csv" not in hashed
    assert "transactions_20260106.csv" in hashed


def test_an_extract_written_again_is_hashed_and_typed_again(settings, hashed):
    scenario = Scenario(settings)
    scenario.write_credits(D0, credit("C1"))
    scenario.write_transactions(D0, sale("T1"))
    assert scenario.decide(D0)["C1"] == ("DUE", "T1")
    # The same name and size, other content: only the file's times and inode tell.
    scenario.write_transactions(D0, sale("T2"))
    hashed.clear()
    assert scenario.decide(D0)["C1"] == ("DUE", "T2")
    # Once to register it, once more by the typing, which types only the content registered.
    assert hashed.count("transactions_20260105.csv") == 2
    summary = daily.extract(D0, settings)
    assert summary["transaction_lines"] == 1


def test_a_failed_extract_records_no_fingerprint(settings, hashed):
    # The extracts are hashed on another thread while the credits land: when the credits fail,
    # nothing of the extracts is recorded, and the next extract hashes them again.
    scenario = Scenario(settings)
    scenario.write_transactions(D0, sale("T1"))
    scenario.write_transactions(D1, sale("T2", "10.00"))
    scenario._prepare(D1)
    with pytest.raises(InputFileError, match=r"credits_20260106\.csv: file not found"):
        daily.extract(D1, settings)
    assert scenario.query("select count(*) from landing.file_stat_digests") == [(0,)]
    assert scenario.query("select count(*) from landing.files") == [(0,)]
    hashed.clear()
    scenario.write_credits(D1, credit("C1"))
    assert daily.extract(D1, settings)["transaction_files"] == 2
    assert {"transactions_20260105.csv", "transactions_20260106.csv"} <= set(hashed)
    assert scenario.query("select count(*) from landing.file_stat_digests") == [(2,)]
