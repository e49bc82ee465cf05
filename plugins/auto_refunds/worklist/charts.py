"""Charts drawn as SVG on the server: nothing for the browser to download or run, so they work
on networks without internet and inside the Airflow UI's frame
(docs/worklist.md#how-it-is-built)."""

from __future__ import annotations

import datetime as dt
from html import escape

PALETTE = (
    "#2563eb",
    "#16a34a",
    "#dc2626",
    "#9333ea",
    "#ea580c",
    "#0891b2",
    "#ca8a04",
    "#db2777",
    "#4b5563",
    "#65a30d",
    "#7c3aed",
    "#0d9488",
)
_W, _H, _LEFT, _BOTTOM, _TOP = 720, 240, 44, 28, 10


def _axis(top_value: int) -> tuple[int, list[str]]:
    top = max(1, top_value)
    step = max(1, -(-top // 4))
    top = step * 4
    parts = []
    for i in range(5):
        value = step * i
        y = _H - _BOTTOM - (_H - _BOTTOM - _TOP) * value / top
        parts.append(
            f'<line x1="{_LEFT}" x2="{_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    return top, parts


def _labels(days: list[dt.date], slot: float) -> list[str]:
    every = max(1, len(days) // 8)
    return [
        f'<text x="{_LEFT + slot * (i + 0.5):.1f}" y="{_H - 10}" text-anchor="middle">'
        f"{day.strftime('%m-%d')}</text>"
        for i, day in enumerate(days)
        if i % every == 0
    ]


def _legend(names: list[str]) -> str:
    return "".join(
        # An SVG fill, not a style attribute: the pages' policy allows no inline style.
        f'<span class="key"><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true">'
        f'<rect width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/></svg>'
        f"{escape(name)}</span>"
        for i, name in enumerate(names)
    )


def _frame(title: str, body: list[str], names: list[str]) -> str:
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">'
        + "".join(body)
        + f'</svg><div class="legend">{_legend(names)}</div></figure>'
    )


def grouped_bars(title: str, days: list[dt.date], series: dict[str, list[int]]) -> str:
    """One group of bars per day, one bar per series."""
    names = list(series)
    if not days:
        return _frame(title, ['<text x="50%" y="50%" text-anchor="middle">no data</text>'], [])
    top, body = _axis(max((max(v) for v in series.values() if v), default=0))
    slot = (_W - _LEFT) / len(days)
    width = slot * 0.8 / max(1, len(names))
    for s, name in enumerate(names):
        for i, value in enumerate(series[name]):
            height = (_H - _BOTTOM - _TOP) * value / top
            x = _LEFT + slot * i + slot * 0.1 + width * s
            body.append(
                f'<rect x="{x:.1f}" y="{_H - _BOTTOM - height:.1f}" width="{width:.1f}" '
                f'height="{height:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{days[i]} {escape(name)}: {value}</title></rect>"
            )
    return _frame(title, body + _labels(days, slot), names)


def stacked_bars(title: str, days: list[dt.date], series: dict[str, list[int]]) -> str:
    """One bar per day, stacked by series."""
    names = list(series)
    if not days:
        return _frame(title, ['<text x="50%" y="50%" text-anchor="middle">no data</text>'], [])
    totals = [sum(series[n][i] for n in names) for i in range(len(days))]
    top, body = _axis(max(totals, default=0))
    slot = (_W - _LEFT) / len(days)
    for i in range(len(days)):
        base = 0
        for s, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            height = (_H - _BOTTOM - _TOP) * value / top
            y = _H - _BOTTOM - (_H - _BOTTOM - _TOP) * (base + value) / top
            body.append(
                f'<rect x="{_LEFT + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{height:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{days[i]} {escape(name)}: {value}</title></rect>"
            )
            base += value
    return _frame(title, body + _labels(days, slot), names)
