"""Parallel coordinates of compared runs, drawn as inline SVG on the server (no script needed).

Each axis is a param or metric: numbers are scaled between the axis' lowest and highest value, anything else
is placed by category (its distinct values, sorted). A run is one polyline across the axes; a run without a
value on an axis leaves a gap there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

WIDTH_PER_AXIS = 140
HEIGHT = 320
PAD = 30
MAX_AXES = 24
_LABEL_CHARS = 22


def _number(value: object) -> float | None:
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _positions(values: Sequence[object]) -> tuple[list[float | None], str, str]:
    """Each value's height on its axis (0 bottom .. 1 top) and the axis' low and high labels."""
    present = [v for v in values if v is not None and v != ""]
    numbers = [_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        low, high = min(numbers), max(numbers)  # type: ignore[type-var]
        span = (high - low) or 1.0  # type: ignore[operator]
        out = [None if (n := _number(v)) is None else (n - low) / span for v in values]  # type: ignore[operator]
        return out, f"{low:.4g}", f"{high:.4g}"
    categories = sorted({str(v) for v in present})
    if not categories:
        return [None] * len(values), "", ""
    where = {c: (i / (len(categories) - 1) if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
    out = [None if v is None or v == "" else where[str(v)] for v in values]
    return out, categories[0], categories[-1]


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def parallel_svg(run_names: Sequence[str], axes: Mapping[str, Sequence[object]]) -> Markup:
    """The chart for runs ``run_names`` over ``axes`` (axis name → each run's value, None when absent)."""
    chosen = list(axes.items())[:MAX_AXES]
    if not chosen or not run_names:
        return Markup('<p class="muted">Nothing to draw.</p>')
    width = PAD * 2 + WIDTH_PER_AXIS * max(len(chosen) - 1, 1)
    inner = HEIGHT - 2 * PAD
    xs = [PAD + i * WIDTH_PER_AXIS for i in range(len(chosen))]
    placed = []
    parts = [
        f'<svg class="parallel-coordinates" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" '
        'role="img" aria-label="Parallel coordinates of the compared runs">'
    ]
    for x, (name, values) in zip(xs, chosen, strict=True):
        heights, low, high = _positions(values)
        placed.append(heights)
        parts.append(f'<line class="axis" x1="{x}" y1="{PAD}" x2="{x}" y2="{HEIGHT - PAD}"/>')
        parts.append(
            f'<text class="axis-name" x="{x}" y="{PAD - 12}"><title>{escape(name)}</title>'
            f"{escape(_short(name))}</text>"
        )
        parts.append(f'<text class="axis-tick" x="{x + 4}" y="{PAD + 4}">{escape(_short(high))}</text>')
        parts.append(f'<text class="axis-tick" x="{x + 4}" y="{HEIGHT - PAD}">{escape(_short(low))}</text>')
    for row, name in enumerate(run_names):
        points: list[str] = []
        segments: list[str] = []
        for x, heights in zip(xs, placed, strict=True):
            h = heights[row]
            if h is None:
                if len(points) > 1:
                    segments.append(" ".join(points))
                points = []
                continue
            points.append(f"{x},{PAD + (1 - h) * inner:.1f}")
        if len(points) > 1:
            segments.append(" ".join(points))
        for segment in segments:
            title = f"<title>{escape(name)}</title>"
            parts.append(f'<polyline class="run-line" data-run="{row}" points="{segment}">{title}</polyline>')
    parts.append("</svg>")
    return Markup("".join(parts))
