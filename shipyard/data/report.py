"""A self-contained HTML report of a :class:`~shipyard.data.drift.DatasetDrift`: one string, no I/O.

The document needs nothing outside itself: inline CSS, inline SVG charts, no scripts, fonts or links to other
sites, so it can be attached to a run, mailed or opened offline. It reads top down:

1. a summary: the dataset verdict, the drifted share against its threshold, how many columns were compared,
   the columns present on one side only, and the rows on each side;
2. a table of the compared columns, drifted ones first (otherwise in the result's order), with each column's
   kind, test, statistic, threshold and verdict;
3. per column, a chart overlaying the reference and current distributions: numeric columns as histograms over
   :data:`NUMERIC_BINS` shared equal-width bins spanning both sides (two semi-transparent bar series);
   categorical and binary columns as grouped bars over the :data:`TOP_CATEGORIES` most frequent values of both
   sides together. Every chart has a ``<title>``/``<desc>`` for screen readers and its numbers in a
   ``<details>`` table.

Bars show proportions of each side's own non-missing rows, so samples of different sizes compare directly.
Every string that comes from the data (column names, category values, the title) is escaped. The output is
deterministic: the same inputs give the same bytes (no timestamp unless ``generated`` is passed).
"""

from __future__ import annotations

import html
import itertools
from typing import Any

import numpy as np
import pandas as pd

from shipyard.data.drift import ColumnDrift, DatasetDrift, StatTest, clean_values

__all__ = ["NUMERIC_BINS", "TOP_CATEGORIES", "render_drift_report"]

NUMERIC_BINS = 20
TOP_CATEGORIES = 20
REFERENCE_COLOR = "#1f77b4"
CURRENT_COLOR = "#ff7f0e"

# chart geometry, in SVG user units
_WIDTH, _PLOT_HEIGHT = 560, 160
_LEFT, _RIGHT, _TOP = 48, 12, 28
_LABEL_CHARS = 14

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:980px;
padding:0 1rem;color:#1b1f24;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.05rem;
margin:1.6rem 0 .3rem;word-break:break-word}
.verdict{display:inline-block;padding:.15rem .6rem;border-radius:4px;font-weight:600}
.drift{background:#fde2e1;color:#8a1c17}.ok{background:#dff3e3;color:#185c2a}
table{border-collapse:collapse;margin:.5rem 0}th,td{border-bottom:1px solid #d8dde3;padding:.25rem .6rem;
text-align:left;vertical-align:top}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
dl.summary{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dl.summary dt{font-weight:600}
dl.summary dd{margin:0}.muted{color:#57606a;font-size:.9rem}details{margin:.3rem 0 1rem}
summary{cursor:pointer;color:#0b5cad}svg{max-width:100%;height:auto}
.swatch{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;vertical-align:-.05em}
"""


def _e(value: Any) -> str:
    """Escape for text and (double- or single-quoted) attribute values."""
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    """A short, stable number for text: 4 significant digits."""
    return f"{value:.4g}"


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _coord(value: float) -> str:
    """An SVG coordinate, rounded to 0.1 unit (keeps the file small)."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _label(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        return f"{float(value):g}"
    return str(value)


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


# --------------------------------------------------------------------------------------------- distributions


def _histogram(reference: np.ndarray, current: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """Labels of the shared bins, both sides' proportions per bin, and the x-axis range text."""
    reference, current = reference.astype(float), current.astype(float)
    edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins=NUMERIC_BINS)
    ref_p = np.histogram(reference, edges)[0] / reference.size
    cur_p = np.histogram(current, edges)[0] / current.size
    labels = [
        f"[{_num(lo)}, {_num(hi)}{']' if i == len(edges) - 2 else ')'}"
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]
    return labels, ref_p, cur_p, f"{_num(edges[0])} to {_num(edges[-1])}"


def _categories(reference: np.ndarray, current: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """The most frequent categories (both sides together), their proportions, and how many were left out."""
    ref_counts = pd.Series(reference).value_counts()
    cur_counts = pd.Series(current).value_counts()
    ref_p = ref_counts / reference.size
    cur_p = cur_counts / current.size
    keys = set(ref_p.index.tolist()) | set(cur_p.index.tolist())
    weight = {k: float(ref_p.get(k, 0.0)) + float(cur_p.get(k, 0.0)) for k in keys}
    ranked = sorted(keys, key=lambda k: (-weight[k], _label(k)))
    shown = ranked[:TOP_CATEGORIES]
    return (
        [_label(k) for k in shown],
        np.array([float(ref_p.get(k, 0.0)) for k in shown]),
        np.array([float(cur_p.get(k, 0.0)) for k in shown]),
        len(ranked) - len(shown),
    )


# ------------------------------------------------------------------------------------------------------ svg


def _svg(
    index: int,
    column: ColumnDrift,
    labels: list[str],
    ref_p: np.ndarray,
    cur_p: np.ndarray,
    *,
    grouped: bool,
    axis_text: str,
) -> str:
    n = len(labels)
    top = max(float(ref_p.max(initial=0.0)), float(cur_p.max(initial=0.0))) or 1.0
    plot_width = _WIDTH - _LEFT - _RIGHT
    label_space = 84 if grouped else 30
    height = _TOP + _PLOT_HEIGHT + label_space
    base = _TOP + _PLOT_HEIGHT
    slot = plot_width / max(n, 1)
    what, each = ("categories", "category") if grouped else ("bins", "bin")
    title = f"Distribution of {column.column}: reference and current, proportion of rows per {each}"
    if grouped:
        desc = f"Grouped bars over the {n} most frequent {what}; tallest bar {_pct(top)}."
    else:
        desc = f"Overlaid histograms over {n} equal-width {what} from {axis_text}; tallest bar {_pct(top)}."
    tid, did = f"chart-{index}-title", f"chart-{index}-desc"
    parts = [
        f'<svg role="img" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" aria-labelledby="{tid} {did}">',
        f'<title id="{tid}">{_e(title)}</title>',
        f'<desc id="{did}">{_e(desc)}</desc>',
        # legend
        f'<rect x="{_LEFT}" y="6" width="12" height="12" fill="{REFERENCE_COLOR}" fill-opacity="0.55"/>',
        f'<text x="{_LEFT + 16}" y="16" font-size="12">reference</text>',
        f'<rect x="{_LEFT + 96}" y="6" width="12" height="12" fill="{CURRENT_COLOR}" fill-opacity="0.55"/>',
        f'<text x="{_LEFT + 112}" y="16" font-size="12">current</text>',
        # axes
        f'<line x1="{_LEFT}" y1="{base}" x2="{_WIDTH - _RIGHT}" y2="{base}" stroke="#57606a"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#57606a"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" font-size="11" text-anchor="end">{_pct(top)}</text>',
        f'<text x="{_LEFT - 4}" y="{base}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x0 = _LEFT + i * slot
        bars = []
        if grouped:
            width = slot * 0.4
            bars = [
                (x0 + slot * 0.1, width, ref_p[i], REFERENCE_COLOR),
                (x0 + slot * 0.5, width, cur_p[i], CURRENT_COLOR),
            ]
        else:
            bars = [
                (x0 + 0.5, slot - 1, ref_p[i], REFERENCE_COLOR),
                (x0 + 0.5, slot - 1, cur_p[i], CURRENT_COLOR),
            ]
        for x, width, value, color in bars:
            h = _PLOT_HEIGHT * float(value) / top
            if h <= 0:
                continue
            parts.append(
                f'<rect x="{_coord(x)}" y="{_coord(base - h)}" width="{_coord(width)}" height="{_coord(h)}" '
                f'fill="{color}" fill-opacity="0.55"/>'
            )
        if grouped:
            cx, cy = _coord(x0 + slot / 2), base + 10
            parts.append(
                f'<text x="{cx}" y="{cy}" font-size="10" text-anchor="end" '
                f'transform="rotate(-40 {cx} {cy})">{_e(_short(label))}<title>{_e(label)}</title></text>'
            )
    if not grouped:
        lo, _, hi = axis_text.partition(" to ")
        parts.append(f'<text x="{_LEFT}" y="{base + 16}" font-size="11">{_e(lo)}</text>')
        parts.append(
            f'<text x="{_WIDTH - _RIGHT}" y="{base + 16}" font-size="11" text-anchor="end">{_e(hi)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _chart(index: int, column: ColumnDrift, reference: pd.DataFrame, current: pd.DataFrame) -> str:
    name = column.column
    if name not in reference.columns or name not in current.columns:
        return '<p class="muted">No chart: the column is not in both data frames given to the report.</p>'
    ref, _ = clean_values(name, "reference", reference[name])
    cur, _ = clean_values(name, "current", current[name])
    numeric = column.kind == "numeric" and ref.dtype.kind in "iuf" and cur.dtype.kind in "iuf"
    left_out = 0
    if numeric:
        labels, ref_p, cur_p, axis_text = _histogram(ref, cur)
        head = "bin"
    else:
        labels, ref_p, cur_p, left_out = _categories(ref, cur)
        axis_text, head = "", "category"
    svg = _svg(index, column, labels, ref_p, cur_p, grouped=not numeric, axis_text=axis_text)
    rows = "\n".join(
        f'<tr><td>{_e(label)}</td><td class="num">{_pct(r)}</td><td class="num">{_pct(c)}</td></tr>'
        for label, r, c in zip(labels, ref_p, cur_p, strict=True)
    )
    more = f'<p class="muted">{left_out} less frequent categories are not shown.</p>' if left_out else ""
    return (
        f"{svg}\n<details><summary>Numbers</summary>\n"
        f'<table><thead><tr><th>{head}</th><th class="num">reference</th><th class="num">current</th>'
        f"</tr></thead>\n<tbody>\n{rows}\n</tbody></table>{more}</details>"
    )


# --------------------------------------------------------------------------------------------------- report


def _rule(column: ColumnDrift) -> str:
    try:
        kind = StatTest(column.test).kind
    except ValueError:
        return f"{column.threshold:g}"
    return f"p &lt; {column.threshold:g}" if kind == "p_value" else f"distance ≥ {column.threshold:g}"


def _notes(column: ColumnDrift) -> str:
    notes = [column.note] if column.note else []
    if column.reference_missing or column.current_missing:
        notes.append(f"missing: {column.reference_missing:,} reference, {column.current_missing:,} current")
    return "; ".join(notes)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"<code>{_e(n)}</code>" for n in names) if names else "none"


def render_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    result: DatasetDrift,
    *,
    title: str = "Data drift",
    generated: str | None = None,
) -> str:
    """Render ``result`` (from :func:`~shipyard.data.drift.dataset_drift` on the same frames) as HTML.

    Args:
        reference: the reference data the result was computed from; its columns feed the charts.
        current: the current data, likewise.
        result: the drift verdicts.
        title: the document's title and heading (escaped).
        generated: optional text shown under the heading, e.g. a timestamp or run id (escaped); nothing is
            added by default, so the output is the same for the same inputs.

    Returns:
        One self-contained HTML document (inline CSS and SVG, no scripts, no external resources).
    """
    order = sorted(range(len(result.columns)), key=lambda i: (not result.columns[i].drift_detected, i))
    columns = [result.columns[i] for i in order]
    drifted = sum(c.drift_detected for c in columns)
    verdict_class = "drift" if result.dataset_drift else "ok"
    verdict = "Dataset drift detected" if result.dataset_drift else "No dataset drift"
    compared = len(columns)

    summary = f"""<section aria-labelledby="summary-heading">
<h2 id="summary-heading">Summary</h2>
<p><span class="verdict {verdict_class}">{verdict}</span></p>
<dl class="summary">
<dt>Drifted columns</dt><dd>{drifted} of {compared} ({_pct(result.drift_share)}); the dataset drifts at \
{_pct(result.share_threshold)} or more</dd>
<dt>Columns compared</dt><dd>{compared}</dd>
<dt>Missing in current</dt><dd>{_names(result.missing_in_current)}</dd>
<dt>Missing in reference</dt><dd>{_names(result.missing_in_reference)}</dd>
<dt>Rows</dt><dd>{len(reference):,} reference, {len(current):,} current</dd>
</dl>
</section>"""

    rows = "\n".join(
        f'<tr><td><a href="#column-{i}">{_e(c.column)}</a></td><td>{_e(c.kind)}</td><td>{_e(c.test)}</td>'
        f'<td class="num">{_num(c.statistic)}</td><td class="num">{_rule(c)}</td>'
        f"<td>{'<strong>drift</strong>' if c.drift_detected else 'no drift'}</td>"
        f"<td>{_e(_notes(c))}</td></tr>"
        for i, c in enumerate(columns)
    )
    table = f"""<section aria-labelledby="columns-heading">
<h2 id="columns-heading">Columns</h2>
<p class="muted">Drifted columns first. p-value tests (ks, chisquare, chisquare_evidently, z) drift below \
the threshold; distance tests (wasserstein, jensenshannon, psi) at or above it.</p>
<table>
<thead><tr><th>column</th><th>kind</th><th>test</th><th class="num">p-value or distance</th>\
<th class="num">drift when</th><th>verdict</th><th>notes</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</section>"""

    charts = "\n".join(
        f'<section id="column-{i}" aria-labelledby="column-{i}-heading">\n'
        f'<h3 id="column-{i}-heading">{_e(c.column)} '
        f'<span class="verdict {"drift" if c.drift_detected else "ok"}">'
        f"{'drift' if c.drift_detected else 'no drift'}</span></h3>\n"
        f'<p class="muted">{_e(c.kind)}, {_e(c.test)} = {_num(c.statistic)} ({_rule(c)}); '
        f"{c.reference_rows:,} reference and {c.current_rows:,} current values</p>\n"
        f"{_chart(i, c, reference, current)}\n</section>"
        for i, c in enumerate(columns)
    )
    legend = (
        f'<p class="muted">Proportion of each side\'s non-missing rows:'
        f'<span class="swatch" style="background:{REFERENCE_COLOR};opacity:.55"></span>reference'
        f'<span class="swatch" style="background:{CURRENT_COLOR};opacity:.55"></span>current</p>'
    )
    sub = f'<p class="muted">{_e(generated)}</p>\n' if generated else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{_e(title)}</h1>
{sub}{summary}
{table}
<section aria-labelledby="charts-heading">
<h2 id="charts-heading">Distributions</h2>
{legend}
{charts}
</section>
</main>
</body>
</html>
"""
