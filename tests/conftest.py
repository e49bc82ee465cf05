"""Shared fixtures: every test gets its own data folder and warehouse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from auto_refunds.settings import Settings  # noqa: E402


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("AUTO_REFUNDS_DATA_DIR", str(root))
    monkeypatch.setenv("AUTO_REFUNDS_LOCK_TIMEOUT_SECONDS", "5")
    return root


@pytest.fixture
def settings(data_dir) -> Settings:
    return Settings.from_env()


os.environ.setdefault("AUTO_REFUNDS_DUCKDB_THREADS", "2")
