"""Reading back what monitoring runs wrote: a model's drift reports, newest first, and the alerts they fired.

Each run of :func:`~shipyard.monitoring.job.run_monitor` leaves ``monitoring/reports/<model>/<id>.json`` (and
``<id>.html``) in the artifact store, ``<id>`` its UTC time as ``YYYYmmddTHHMMSSZ``; ids sort in time order,
so pages are keyed by id (``before``: the last id of the previous page) and stay stable while new reports
arrive. Everything is read through an :class:`~shipyard.store.artifacts.ArtifactStore`, so the same code
answers the CLI embedded, in team mode, and the server's ``/api/v1/monitoring`` routes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.baseline import check_model_name
from shipyard.monitoring.job import REPORTS_PREFIX
from shipyard.store.artifacts import ArtifactStore

_REPORT_ID = re.compile(r"\d{8}T\d{6}Z")
# An alerts page token: the report to go on from and how many of its alerts were already given.
_ALERT_TOKEN = re.compile(r"(\d{8}T\d{6}Z)\.(\d{1,6})")


@dataclass(frozen=True)
class ReportSummary:
    """One monitoring run's headline numbers (``run_id``: its tracked run, when it recorded one)."""

    report_id: str
    model: str
    generated: str | None
    rows: int | None
    drift_share: float | None
    dataset_drift: bool | None
    drifted_columns: list[str]
    alerts_fired: list[str]
    version: str | None
    run_id: str | None


def check_report_id(report_id: str) -> str:
    """``report_id`` unchanged when it has the form reports are named by (so it can never leave the folder).

    Raises:
        InvalidInput: any other text.
    """
    if not isinstance(report_id, str) or not _REPORT_ID.fullmatch(report_id):
        raise InvalidInput(f"report id {report_id!r} must look like 20240131T120000Z (a report's UTC time)")
    return report_id


def report_ids(store: ArtifactStore, model: str) -> list[str]:
    """The ids of ``model``'s reports, newest first."""
    prefix = f"{REPORTS_PREFIX}/{check_model_name(model)}"
    if not store.exists(prefix):
        return []
    names = (f.path.rpartition("/")[2] for f in store.list(prefix, recursive=True))
    ids = {n.removesuffix(".json") for n in names if n.endswith(".json")}
    return sorted((i for i in ids if _REPORT_ID.fullmatch(i)), reverse=True)


def list_reports(
    store: ArtifactStore, model: str, *, limit: int = 50, before: str | None = None
) -> tuple[list[ReportSummary], str | None]:
    """A page of ``model``'s reports, newest first, older than ``before``; and the token of the next page
    (the last id given) or None."""
    ids = _older(report_ids(store, model), before)
    page = ids[:limit]
    summaries = [_summary(model, report_id, read_report(store, model, report_id)) for report_id in page]
    return summaries, page[-1] if len(ids) > limit else None


def read_report(store: ArtifactStore, model: str, report_id: str) -> dict[str, Any]:
    """The JSON document of one report (drift per column, skew, performance, alerts fired).

    Raises:
        NotFound: ``model`` has no report ``report_id`` (the reports it has are listed by ``list_reports``).
        InvalidInput: a bad model name or report id.
    """
    document = json.loads(_read(store, model, report_id, "json"))
    if not isinstance(document, dict):
        raise InvalidInput(f"report {report_id} of model {model!r} is not a JSON object")
    return document


def report_html(store: ArtifactStore, model: str, report_id: str) -> bytes:
    """The HTML page of one report (see :func:`read_report` for the errors)."""
    return _read(store, model, report_id, "html")


def list_alerts(
    store: ArtifactStore, model: str, *, limit: int = 50, page_token: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Alerts fired on ``model``, newest report first (in rule order within a report), each with its
    ``report_id`` and ``generated`` time; and the next page's token or None. Reports are read until the page
    is full (one file each)."""
    start, skip = None, 0
    if page_token:
        match = _ALERT_TOKEN.fullmatch(page_token)
        if match is None:
            raise InvalidInput(f"page_token {page_token!r} is not a token returned by an alerts listing")
        start, skip = match.group(1), int(match.group(2))
    ids = report_ids(store, model)
    if start is not None:
        ids = [i for i in ids if i <= start]
    out: list[dict[str, Any]] = []
    for report_id in ids:
        document = read_report(store, model, report_id)
        fired = document.get("alerts_fired") or []
        offset = skip if report_id == start else 0
        for index in range(offset, len(fired)):
            if len(out) == limit:
                return out, f"{report_id}.{index}"
            out.append({**fired[index], "report_id": report_id, "generated": document.get("generated")})
    return out, None


def _older(ids: list[str], before: str | None) -> list[str]:
    if before is None:
        return ids
    check_report_id(before)
    return [i for i in ids if i < before]


def _read(store: ArtifactStore, model: str, report_id: str, suffix: str) -> bytes:
    path = f"{REPORTS_PREFIX}/{check_model_name(model)}/{check_report_id(report_id)}.{suffix}"
    if not store.exists(path):
        raise NotFound(f"model {model!r} has no monitoring report {report_id} ({suffix})")
    return store.read_bytes(path)


def _summary(model: str, report_id: str, document: dict[str, Any]) -> ReportSummary:
    drift = document.get("drift") or {}
    return ReportSummary(
        report_id=report_id,
        model=model,
        generated=document.get("generated"),
        rows=document.get("rows"),
        drift_share=drift.get("drift_share"),
        dataset_drift=drift.get("dataset_drift"),
        drifted_columns=list(document.get("drifted_columns") or []),
        alerts_fired=[str(a.get("rule")) for a in document.get("alerts_fired") or []],
        version=document.get("version"),
        run_id=document.get("run_id"),
    )


__all__ = [
    "ReportSummary",
    "check_report_id",
    "list_alerts",
    "list_reports",
    "read_report",
    "report_html",
    "report_ids",
]
