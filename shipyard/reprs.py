"""Rich HTML views of Shipyard's records for Jupyter (``_repr_html_``): runs, search results, model versions,
drift verdicts. Every value is escaped: names, params and tags come from users and other processes.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_ROWS = 50  # rows a table shows; the rest are counted
MAX_KEYS = 8  # params or metrics shown inline in a row

_STYLE = (
    "<style>.shipyard-repr table{border-collapse:collapse;font-size:12px}"
    ".shipyard-repr th,.shipyard-repr td{border:1px solid #ddd;padding:2px 6px;text-align:left}"
    ".shipyard-repr th{background:#f4f4f4}.shipyard-repr .bad{color:#b00020;font-weight:600}"
    ".shipyard-repr .good{color:#1b5e20}</style>"
)


def text(value: Any) -> str:
    """``value`` as escaped HTML text (floats shortened, times as UTC)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return html.escape(f"{value:.6g}" if math.isfinite(value) else str(value))
    return html.escape(str(value))


def when(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def pairs(values: Mapping[str, Any], limit: int = MAX_KEYS) -> str:
    """``key=value, …`` (the first ``limit`` keys, sorted; the rest counted)."""
    keys = sorted(values)
    shown = ", ".join(f"{text(k)}={text(values[k])}" for k in keys[:limit])
    more = len(keys) - limit
    return shown + (f", … {more} more" if more > 0 else "")


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    total: int | None = None,
    raw: frozenset[int] = frozenset(),
) -> str:
    """An HTML table; cells are escaped unless their column index is in ``raw`` (already HTML)."""
    head = "".join(f"<th>{text(c)}</th>" for c in columns)
    body = []
    count = 0
    for row in rows:
        count += 1
        if count > MAX_ROWS:
            continue
        cells = (cell if i in raw else text(cell) for i, cell in enumerate(row))
        body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    total = count if total is None else total
    more = f"<p>… {total - MAX_ROWS} more</p>" if total > MAX_ROWS else ""
    return (
        f'{_STYLE}<div class="shipyard-repr"><b>{text(title)}</b>'
        f"<table><tr>{head}</tr>{''.join(body)}</table>{more}</div>"
    )


def run_html(run: Any) -> str:
    """One run: identity, status, times, params, metrics and tags."""
    rows = [
        ("run id", text(run.run_id)),
        ("experiment", text(run.experiment_id)),
        ("status", _status(run.display_status)),
        ("started (UTC)", text(when(run.start_time))),
        ("duration", text(_duration(run.duration_ms))),
    ]
    if run.parent_run_id:
        rows.append(("parent", text(run.parent_run_id)))
    for label, values in (("params", run.params), ("metrics", run.metrics), ("tags", run.tags)):
        if values:
            rows.append((label, pairs(values, limit=50)))
    return table(f"run {run.name}", ("field", "value"), rows, raw=frozenset({1}))


def runs_html(runs: Sequence[Any], next_page_token: str | None = None) -> str:
    """Search results: one row a run, its first metrics and params."""
    rows = (
        (
            text(r.name),
            text(r.run_id),
            _status(r.display_status),
            text(when(r.start_time)),
            pairs(r.metrics),
            pairs(r.params),
        )
        for r in runs
    )
    title = f"{len(runs)} runs" + (" (more pages: pass next_page_token)" if next_page_token else "")
    columns = ("name", "run id", "status", "started (UTC)", "metrics", "params")
    return table(title, columns, rows, total=len(runs), raw=frozenset(range(6)))


def model_version_html(version: Any) -> str:
    rows = [
        ("uri", text(version.uri)),
        ("flavor", text(version.flavor)),
        ("stage", text(getattr(version.stage, "value", version.stage))),
        ("aliases", text(", ".join(version.aliases))),
        ("run", text(version.run_id)),
        ("created (UTC)", text(when(version.created_at))),
        ("package sha256", text(version.manifest_sha256)),
    ]
    if version.description:
        rows.append(("description", text(version.description)))
    if version.tags:
        rows.append(("tags", pairs(version.tags, limit=50)))
    return table(
        f"model {version.name} version {version.version}", ("field", "value"), rows, raw=frozenset({1})
    )


def registered_model_html(model: Any) -> str:
    rows = [
        ("latest version", text(model.latest_version)),
        ("aliases", text(", ".join(f"@{a}: v{v}" for a, v in sorted(model.aliases.items())))),
        ("updated (UTC)", text(when(model.updated_at))),
    ]
    if model.description:
        rows.append(("description", text(model.description)))
    return table(f"registered model {model.name}", ("field", "value"), rows, raw=frozenset({1}))


def drift_html(drift: Any) -> str:
    """A dataset's drift verdict and each column's test."""
    verdict = "drift detected" if drift.dataset_drift else "no drift"
    title = f"{verdict}: {drift.drift_share:.0%} of columns drifted (threshold {drift.share_threshold:.0%})"
    rows = (
        (
            text(c.column),
            text(c.kind),
            text(c.test),
            text(c.statistic),
            text(c.threshold),
            '<span class="bad">drift</span>' if c.drift_detected else '<span class="good">ok</span>',
        )
        for c in drift.columns
    )
    missing = ""
    if drift.missing_in_current or drift.missing_in_reference:
        missing = (
            f"<p>missing in current: {text(', '.join(drift.missing_in_current)) or '-'}; "
            f"missing in reference: {text(', '.join(drift.missing_in_reference)) or '-'}</p>"
        )
    columns = ("column", "kind", "test", "statistic", "threshold", "verdict")
    return table(title, columns, rows, total=len(drift.columns), raw=frozenset(range(6))) + missing


def _status(status: str) -> str:
    css = {"FAILED": "bad", "LOST": "bad", "KILLED": "bad", "FINISHED": "good"}.get(status, "")
    return f'<span class="{css}">{text(status)}</span>' if css else text(status)


def _duration(ms: int | None) -> str:
    if ms is None:
        return "running"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
