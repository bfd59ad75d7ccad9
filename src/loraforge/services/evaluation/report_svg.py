"""Charts for the HTML report as inline SVG built in Python: no script and no external file, so the
report opens offline and in mail clients that strip scripts. Every label is escaped here; callers pass
plain text (model names and metric keys come from users and datasets). No `xmlns`: inside HTML the
parser puts <svg> in the SVG namespace itself, and the report then holds no URL at all."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Colour-blind-safe palette (Okabe–Ito); a run keeps its colour in every chart of a report.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    title: str, values: Sequence[tuple[str, float | None]], *, lower_better: bool = False,
    best: int | None = None,
) -> str:  # fmt: skip
    """Horizontal bars from 0, one per run (label, value); a run without the value shows "n/a".
    `best` (an index into values) is marked ★."""
    label_w, bar_w, row_h, top = 190, 320, 24, 30
    height = top + row_h * len(values) + 10
    width = label_w + bar_w + 90
    numbers = [abs(v) for _, v in values if v is not None]
    scale = max(numbers) if numbers and max(numbers) > 0 else 1.0
    note = " (lower is better)" if lower_better else ""
    parts = [
        f'<svg class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" {_FONT}>',
        f"<title>{escape(title + note)}</title>",
        f'<text x="0" y="16" font-weight="bold">{escape(_clip(title, 60))}{escape(note)}</text>',
    ]
    for i, (label, value) in enumerate(values):
        y = top + i * row_h
        mark = " ★" if best == i else ""
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(_clip(label))}{mark}</text>'
        )
        if value is None:
            parts.append(f'<text x="{label_w}" y="{y + 15}" fill="#888">n/a</text>')
            continue
        w = max(1.0, bar_w * abs(value) / scale)
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{colour(i)}">'
            f"<title>{escape(label)}: {_fmt(value)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _normalised(column: Sequence[float | None], lower_better: bool) -> list[float | None]:
    """Each run's value as a share of the best one (1 = best), so axes of any unit share a scale."""
    present = [v for v in column if v is not None]
    if not present:
        return [None for _ in column]
    if lower_better:
        low = min(present)
        return [None if v is None else (1.0 if v <= 0 or low <= 0 else low / v) for v in column]
    high = max(present)
    return [None if v is None else (max(v, 0.0) / high if high > 0 else 0.0) for v in column]


def radar_chart(
    axes: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], lower_better: Sequence[bool]
) -> str | None:
    """One polygon per run over the metric axes, each axis scaled so the best run reaches the rim.
    None with fewer than three axes (a radar of two axes is a line; the bar charts say it better)."""
    if len(axes) < 3 or not series:
        return None
    # Room beside the rim for labels such as "perplexity ↓" on the left and right axes.
    size, width, radius = 420, 560, 150
    cx, cy = width / 2, size / 2
    height = size + 22 * ((len(series) + 1) // 2)
    columns = [_normalised([s[1][a] for s in series], lower_better[a]) for a in range(len(axes))]
    angle = [(-math.pi / 2 + 2 * math.pi * a / len(axes)) for a in range(len(axes))]

    def point(a: int, r: float) -> tuple[float, float]:
        return cx + radius * r * math.cos(angle[a]), cy + radius * r * math.sin(angle[a])

    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {_FONT}>',
        "<title>Radar: each axis scaled to its best run</title>",
    ]
    for ring in (0.25, 0.5, 0.75, 1.0):
        ring_points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(a, ring) for a in range(len(axes))))
        parts.append(f'<polygon points="{ring_points}" fill="none" stroke="#ddd"/>')
    for a, name in enumerate(axes):
        x, y = point(a, 1.0)
        lx, ly = point(a, 1.12)
        anchor = "middle" if abs(lx - cx) < 10 else ("start" if lx > cx else "end")
        arrow = " ↓" if lower_better[a] else ""
        parts.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ccc"/>')
        parts.append(
            f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">'
            f"{escape(_clip(name, 22))}{arrow}</text>"
        )
    for i, (label, _) in enumerate(series):
        shape = [point(a, columns[a][i] or 0.0) for a in range(len(axes))]
        shape_points = " ".join(f"{x:.1f},{y:.1f}" for x, y in shape)
        parts.append(
            f'<polygon points="{shape_points}" fill="{colour(i)}" fill-opacity="0.15" stroke="{colour(i)}" '
            f'stroke-width="2"><title>{escape(label)}</title></polygon>'
        )
        lx, ly = 20 + (i % 2) * 220, size + 4 + 22 * (i // 2)
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour(i)}"/>')
        parts.append(f'<text x="{lx + 18}" y="{ly}">{escape(_clip(label, 30))}</text>')
    parts.append("</svg>")
    return "".join(parts)
