"""A tuning search's charts drawn as inline SVG on the server: parameter importances as horizontal bars, and
the trials of two objectives as a scatter with the Pareto front highlighted.

Like :mod:`shipyard.ui.parallel`: no script, no style attribute (the CSP forbids both; app.css colours the
classes), every name and value escaped with ``html.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np
from markupsafe import Markup

BAR_HEIGHT = 22
LABEL_WIDTH = 170
BAR_WIDTH = 360
SCATTER_WIDTH = 640
SCATTER_HEIGHT = 400
PAD = 48
PAD_LEFT = 72  # room for the y axis' tick labels
MAX_DOMINATED = 3000  # dominated trials drawn at most (one per 4-px cell first, then every n-th)
MAX_FRONT = 2000
_CELL = 4
_LABEL_CHARS = 24


def _short(text: str, limit: int = _LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def importance_bars(
    importances: Mapping[str, float],
    *,
    label: str = "Parameter importances",
    scale: float = 1.0,
    digits: str = ".3f",
    empty: str = "No parameter to score.",
) -> Markup:
    """Each name's importance as a bar, highest first, with its value at the bar's end; a value of ``scale``
    fills the bar (parameter importances are shares of 1; a model's mean |SHAP| is scaled by its largest)."""
    ranked = sorted(importances.items(), key=lambda kv: -kv[1])
    if not ranked:
        return Markup(f'<p class="muted">{escape(empty)}</p>')
    width = LABEL_WIDTH + BAR_WIDTH + 60
    height = BAR_HEIGHT * len(ranked) + 8
    parts = [
        f'<svg class="importances" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    for row, (name, value) in enumerate(ranked):
        y = 4 + row * BAR_HEIGHT
        share = value / scale if scale > 0 and math.isfinite(value) else 0.0
        length = min(max(share, 0.0), 1.0) * BAR_WIDTH
        parts.append(
            f'<g class="importance" data-param="{escape(name)}"><title>{escape(name)}: {value:.4g}</title>'
            f'<text class="bar-label" x="{LABEL_WIDTH - 8}" y="{y + 15}">{escape(_short(name))}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 3}" width="{length:.1f}" '
            f'height="{BAR_HEIGHT - 6}"/>'
            f'<text class="bar-value" x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">'
            f"{value:{digits}}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _scale(values: np.ndarray, low: float, high: float, start: float, end: float) -> np.ndarray:
    span = (high - low) or 1.0
    return start + (values - low) / span * (end - start)


def _spread(xs: np.ndarray, ys: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` points that still show where the points lie: one per ``_CELL``-px cell,
    then every n-th of those."""
    if len(xs) <= limit:
        return np.arange(len(xs))
    cells = (xs // _CELL).astype(np.int64) * 100_000 + (ys // _CELL).astype(np.int64)
    _, first = np.unique(cells, return_index=True)
    first.sort()
    if len(first) > limit:
        first = first[:: math.ceil(len(first) / limit)]
    return first


def pareto_scatter(
    first: np.ndarray,
    second: np.ndarray,
    front: np.ndarray,
    names: Sequence[str],
    directions: Sequence[str],
    numbers: np.ndarray,
    run_ids: Sequence[str],
) -> Markup:
    """Trials by two objectives (``first`` on x, ``second`` on y; NaN left out), the front's points (``front``
    a mask) highlighted, joined in order and linked to their runs; dominated trials drawn as small dots."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    usable = np.isfinite(a) & np.isfinite(b)
    if not usable.any():
        return Markup('<p class="muted">No completed trial has both objectives.</p>')
    lo_a, hi_a = float(a[usable].min()), float(a[usable].max())
    lo_b, hi_b = float(b[usable].min()), float(b[usable].max())
    xs = _scale(a, lo_a, hi_a, PAD_LEFT, SCATTER_WIDTH - 16)
    ys = _scale(b, lo_b, hi_b, SCATTER_HEIGHT - PAD, 16)
    w, h = SCATTER_WIDTH, SCATTER_HEIGHT
    label_x = f"{names[0]} ({directions[0]})"
    label_y = f"{names[1]} ({directions[1]})"
    parts = [
        f'<svg class="pareto" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="Pareto front of {escape(names[0])} and {escape(names[1])}">',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{h - PAD}" x2="{w - 16}" y2="{h - PAD}"/>',
        f'<line class="axis" x1="{PAD_LEFT}" y1="16" x2="{PAD_LEFT}" y2="{h - PAD}"/>',
        f'<text class="axis-tick" x="{PAD_LEFT}" y="{h - PAD + 14}">{lo_a:.4g}</text>',
        f'<text class="axis-tick end" x="{w - 16}" y="{h - PAD + 14}">{hi_a:.4g}</text>',
        f'<text class="axis-tick end" x="{PAD_LEFT - 4}" y="{h - PAD}">{lo_b:.4g}</text>',
        f'<text class="axis-tick end" x="{PAD_LEFT - 4}" y="24">{hi_b:.4g}</text>',
        f'<text class="axis-name" x="{(PAD_LEFT + w) // 2}" y="{h - 12}">'
        f"{escape(_short(label_x, 60))}</text>",
        f'<text class="axis-name" transform="translate(14 {(h - PAD) // 2}) rotate(-90)">'
        f"{escape(_short(label_y, 60))}</text>",
    ]
    dominated = np.flatnonzero(usable & ~front)
    for i in dominated[_spread(xs[dominated], ys[dominated], MAX_DOMINATED)]:
        parts.append(f'<circle class="trial" cx="{xs[i]:.1f}" cy="{ys[i]:.1f}" r="2.5"/>')
    on_front = np.flatnonzero(usable & front)
    on_front = on_front[np.argsort(a[on_front], kind="stable")]
    if len(on_front) > MAX_FRONT:
        on_front = on_front[:: math.ceil(len(on_front) / MAX_FRONT)]
    if len(on_front) > 1:
        points = " ".join(f"{xs[i]:.1f},{ys[i]:.1f}" for i in on_front)
        parts.append(f'<polyline class="front-line" points="{points}"/>')
    for i in on_front:
        title = f"trial {int(numbers[i])}: {names[0]} {a[i]:.6g}, {names[1]} {b[i]:.6g}"
        parts.append(
            f'<a href="/ui/runs/{escape(run_ids[i])}"><circle class="front" cx="{xs[i]:.1f}" '
            f'cy="{ys[i]:.1f}" r="4.5"><title>{escape(title)}</title></circle></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


__all__ = ["importance_bars", "pareto_scatter"]
