"""Registered models: the list, a model's versions and audit timeline, a version's card, signature, files,
lineage, checks (its gate's and audit's outcomes), recorded feature importance and tags, and promotion (stage
and alias) for those who may edit the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from shipyard.audit.auditing import TAG_PREFIX as AUDIT_PREFIX
from shipyard.errors import Forbidden, InvalidInput, NotFound, ShipyardError
from shipyard.explain.importance import IMPORTANCE_TAG, RecordedImportance
from shipyard.registry.package import CARD, MANIFEST, Manifest, parse_manifest
from shipyard.registry.records import GATE_PREFIX, ModelVersion, Stage
from shipyard.server.artifact_routes import package_store
from shipyard.server.guard import EDIT, READ, guard
from shipyard.store.protocol import RegistryStore
from shipyard.ui.forms import read_form
from shipyard.ui.templating import render
from shipyard.ui.tuning_svg import importance_bars

router = APIRouter(include_in_schema=False)
MAX_CARD_BYTES = 256 << 10
MAX_IMPORTANCE_BARS = 20
_CHECKS = (("gate", GATE_PREFIX), ("audit", AUDIT_PREFIX))


def _store(request: Request) -> RegistryStore:
    return request.app.state.stores.registry


@router.get("/ui/models")
def models(request: Request) -> Response:
    g = guard(request)
    found = [m for m in _store(request).list_models() if g.can_read_model(m.name)]
    found.sort(key=lambda m: -m.updated_at)
    return render(request, "models.html", section="models", models=found)


@router.get("/ui/models/{name}")
def model(name: str, request: Request) -> Response:
    guard(request).model(name, READ)
    store = _store(request)
    found = store.get_model(name)
    versions = sorted(store.list_versions(name), key=lambda v: -v.version)
    return render(
        request,
        "model.html",
        section="models",
        model=found,
        versions=versions,
        events=sorted(store.events(name), key=lambda e: -e.created_at),
        stages=[s.value for s in Stage],
    )


def _may_edit(request: Request, name: str) -> bool:
    """Whether to show the model's write controls (the write routes check again)."""
    try:
        guard(request).model(name, EDIT)
    except Forbidden:
        return False
    return True


def _package(request: Request, version: ModelVersion) -> tuple[Manifest | None, str | None, str | None]:
    """The version's manifest and card, or why they cannot be shown (a package gone, say)."""
    try:
        files = package_store(request, version.package_uri)
        manifest = parse_manifest(files.read_bytes(MANIFEST), f"{version.name} v{version.version}")
        card = None
        if any(f.path == CARD and f.size <= MAX_CARD_BYTES for f in manifest.files):
            card = files.read_bytes(CARD).decode("utf-8", errors="replace")
        return manifest, card, None
    except (ShipyardError, OSError) as exc:
        return None, None, f"the package at {version.package_uri} cannot be read: {exc}"


def _checks(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """The latest gate and audit outcomes the version's tags record (``shipyard models gate``, ``shipyard
    audit model``)."""
    found = []
    for kind, prefix in _CHECKS:
        status = tags.get(f"{prefix}status")
        if status:
            facts = {key: tags.get(f"{prefix}{key}", "") for key in ("at", "failed", "run", "against")}
            found.append({"kind": kind, "status": status, **facts})
    return found


def _importance(tags: Mapping[str, str]) -> tuple[RecordedImportance | None, Markup | None, str | None]:
    """The recorded feature importance, its bars (the most important first), or why the tag is unreadable."""
    text = tags.get(IMPORTANCE_TAG)
    if not text:
        return None, None, None
    try:
        recorded = RecordedImportance.from_json(text)
    except InvalidInput as exc:
        return None, None, str(exc)
    top = dict(list(recorded.importance.items())[:MAX_IMPORTANCE_BARS])
    peak = max(top.values(), default=0.0)
    bars = importance_bars(
        top, label="Feature importance", scale=peak, digits=".4g", empty="No feature was scored."
    )
    return recorded, bars, None


def _other_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags besides those the checks and importance cards show."""
    shown = tuple(prefix for _, prefix in _CHECKS)
    return {k: v for k, v in tags.items() if k != IMPORTANCE_TAG and not k.startswith(shown)}


@router.get("/ui/models/{name}/versions/{version}")
def model_version(name: str, version: int, request: Request) -> Response:
    guard(request).model(name, READ)
    found = _store(request).get_version(name, version)
    manifest, card, problem = _package(request, found)
    run: Any = None
    datasets: list[Any] = []
    if found.run_id:
        tracking = request.app.state.stores.tracking
        try:
            run = tracking.get_run(found.run_id)
            if guard(request).can_read_experiment(tracking.get_experiment(run.experiment_id)):
                datasets = tracking.dataset_inputs(found.run_id)
            else:
                run = None
        except NotFound:
            run = None
    importance, importance_figure, importance_problem = _importance(found.tags)
    return render(
        request,
        "model_version.html",
        section="models",
        version=found,
        manifest=manifest,
        card=card,
        problem=problem,
        run=run,
        datasets=datasets,
        checks=_checks(found.tags),
        importance=importance,
        importance_figure=importance_figure,
        importance_problem=importance_problem,
        tags=_other_tags(found.tags),
        stages=[s.value for s in Stage],
        can_edit=_may_edit(request, name),
    )


@router.post("/ui/models/{name}/versions/{version}/stage")
async def promote(name: str, version: int, request: Request) -> Response:
    fields = await read_form(request)
    guard(request).model(name, EDIT)
    stage = Stage.parse(fields.get("stage", ""))
    reason = fields.get("reason") or None
    archive = fields.get("archive_others") == "on"
    await run_in_threadpool(
        _store(request).transition, name, version, stage, reason=reason, archive_others=archive
    )
    return RedirectResponse(f"/ui/models/{name}/versions/{version}", status_code=303)


@router.post("/ui/models/{name}/versions/{version}/alias")
async def set_alias(name: str, version: int, request: Request) -> Response:
    fields = await read_form(request)
    guard(request).model(name, EDIT)
    alias = fields.get("alias", "").strip()
    if not alias:
        raise InvalidInput("alias: give the alias to point at this version (champion, say)")
    await run_in_threadpool(
        _store(request).set_alias, name, alias, version, reason=fields.get("reason") or None
    )
    return RedirectResponse(f"/ui/models/{name}/versions/{version}", status_code=303)
