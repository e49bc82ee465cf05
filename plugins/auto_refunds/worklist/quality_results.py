"""The quality gate's results of each run, read from the JSON GX wrote (``quality.run_gate``).

GX's own Data Docs load their styles and scripts from CDNs, which these networks cannot reach;
the page renders the same validation results itself instead, from the files the gate wrote."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from auto_refunds.card_numbers import mask

KINDS = ("daily", "reconciliation")


def runs(results_dir: Path) -> list[tuple[str, dt.date]]:
    """(kind, date) of every gate that wrote results, newest first."""
    found = []
    if results_dir.is_dir():
        for item in results_dir.iterdir():
            kind, _, ymd = item.name.rpartition("_")
            if kind in KINDS and item.is_dir():
                try:
                    found.append((kind, dt.datetime.strptime(ymd, "%Y%m%d").date()))
                except ValueError:
                    continue
    return sorted(found, key=lambda run: (run[1], run[0]), reverse=True)


def _text(value) -> str:
    return mask(json.dumps(value, default=str)) if not isinstance(value, str) else mask(value)


def suites(results_dir: Path, kind: str, day: dt.date) -> list[dict]:
    """Each suite of one gate: its expectations, whether each passed, and what it saw."""
    if kind not in KINDS:
        return []
    folder = results_dir / f"{kind}_{day.strftime('%Y%m%d')}"
    found = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        rows = []
        for item in data.get("results", []):
            config = item.get("expectation_config", {})
            kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
            result = item.get("result") or {}
            rows.append(
                {
                    "success": bool(item.get("success")),
                    "type": config.get("type", ""),
                    "kwargs": ", ".join(f"{k}={_text(v)}" for k, v in sorted(kwargs.items())),
                    "observed": _text(result.get("observed_value", "")),
                    "unexpected": result.get("unexpected_count"),
                    "examples": _text(
                        result.get("partial_unexpected_index_list")
                        or result.get("partial_unexpected_list")
                        or ""
                    ),
                }
            )
        stats = data.get("statistics", {})
        found.append(
            {
                "name": path.stem,
                "success": bool(data.get("success")),
                "evaluated": stats.get("evaluated_expectations", len(rows)),
                "passed": stats.get("successful_expectations"),
                "failed": stats.get("unsuccessful_expectations"),
                "checked_at": (data.get("meta", {}).get("batch_markers") or {}).get(
                    "ge_load_time", ""
                ),
                "expectations": rows,
            }
        )
    return found
