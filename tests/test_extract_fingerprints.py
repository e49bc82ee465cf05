"""Each night registers every extract up to D; only a new or changed one is hashed again."""

from __future__ import annotations

import datetime as dt

import pytest
from scenario import Scenario, credit, sale

from auto_refunds import daily, landing

D0 = dt.date(2026, 1, 5)
D1 = dt.date(2026, 1, 6)


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The names of the files landing.fingerprint read."""
    names: list[str] = []
    real = landing.fingerprint

    def counting(path):
        names.append(path.name)
        return real(path)

    monkeypatch.setattr(landing, "fingerprint", counting)
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
