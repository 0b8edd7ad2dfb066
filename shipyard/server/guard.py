"""Who may do what, per request: the caller's role and permissions checked against the record it touches.

Every route asks its request's :class:`Guard` before it reads or writes: writes need ``EDIT`` (deletes and
grants ``MANAGE``) on the experiment, registered model or deployment they touch, reads ``READ`` — and lists
are filtered, so a search never returns runs of experiments the caller cannot read. A server without
authentication (loopback, or ``--insecure-no-auth``) has no principal and its guard allows everything.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import Request

from shipyard.auth.records import Permission, Principal, ResourceType, Role
from shipyard.datasets.blobs import blob_digest
from shipyard.errors import Forbidden, NotFound
from shipyard.tracking.records import now_ms

if TYPE_CHECKING:
    from shipyard.auth.accounts import Accounts
    from shipyard.store.protocol import MetadataStores
    from shipyard.tracking.records import Experiment, Run

_CACHE_LIMIT = 100_000
READ, EDIT, MANAGE = Permission.READ, Permission.EDIT, Permission.MANAGE


class NameCache:
    """Experiment id -> name and run id -> experiment id, shared by a server process's requests (a metric
    flush then costs no extra read). Names change on a rename: the process that renames clears it, and
    every process forgets all it holds each ``ttl_s``, so a rename done by another worker of the same
    server reaches this one's permission checks within that time."""

    def __init__(self, ttl_s: float = 5.0, limit: int = _CACHE_LIMIT) -> None:
        self._ttl_s, self._limit = ttl_s, limit
        self._entries: dict[str, str] = {}
        self._since = time.monotonic()

    def get(self, key: str) -> str | None:
        if time.monotonic() - self._since > self._ttl_s:
            self.clear()
        return self._entries.get(key)

    def put(self, key: str, value: str) -> None:
        if len(self._entries) > self._limit:
            self.clear()
        self._entries[key] = value

    def clear(self) -> None:
        self._entries = {}
        self._since = time.monotonic()


class Guard:
    """The checks of one request (``principal`` None: authentication is off, everything is allowed)."""

    def __init__(
        self, principal: Principal | None, stores: MetadataStores, names: NameCache, accounts: Accounts
    ) -> None:
        self.principal = principal
        self._stores = stores
        self._names = names
        self._accounts = accounts
        self._creating: set[tuple[ResourceType, str]] = set()

    @property
    def user(self) -> str:
        return "anonymous" if self.principal is None else self.principal.user

    def role(self, role: Role, doing: str) -> None:
        """The caller's role must be at least ``role`` to do ``doing``."""
        p = self.principal
        if p is not None and not p.at_least(role):
            raise Forbidden(
                f"user {p.user!r} ({p.role.value}) may not {doing}: it needs the {role.value} role"
            )

    def admin(self, doing: str) -> None:
        self.role(Role.ADMIN, doing)

    # ------------------------------------------------------------------ experiments and runs
    def experiment(self, id_or_name: str, needed: Permission) -> None:
        """``needed`` on the experiment named or numbered ``id_or_name`` (a missing one is `NotFound`)."""
        if self.principal is None:
            return
        name = self._names.get(id_or_name)
        if name is None:
            name = self._remember(self._stores.tracking.get_experiment(id_or_name))
        self._check(ResourceType.EXPERIMENT, name, needed, f"experiment {name!r}")

    def experiment_name(self, name: str, needed: Permission) -> None:
        """``needed`` on the experiment called ``name``, which may not exist yet (its creation is checked
        by role: editors create experiments)."""
        if self.principal is None:
            return
        try:
            self.experiment(name, needed)
        except NotFound:
            self.role(Role.EDITOR, f"create experiment {name!r}")
            self._creating.add((ResourceType.EXPERIMENT, name))

    def own(self, kind: ResourceType, name: str, *, created_only: bool = False) -> None:
        """The caller created ``name``: it gets MANAGE there (unless ``created_only`` and this request did
        not create it). An admin has MANAGE everywhere already."""
        p = self.principal
        if p is None or p.role is Role.ADMIN or (created_only and (kind, name) not in self._creating):
            return
        # A single-sign-on identity without a user record has no grants: its role decides.
        with contextlib.suppress(NotFound):
            self._accounts.store.put_grant(p.user, kind, name, MANAGE, p.user, now_ms())

    def run(self, run_id: str, needed: Permission) -> None:
        """``needed`` on the experiment of run ``run_id`` (a missing run is `NotFound`)."""
        if self.principal is not None:
            self.experiment(self._experiment_of(run_id), needed)

    def _experiment_of(self, run_id: str) -> str:
        # A run never changes experiment: remember it, so a metric flush costs no extra read.
        key = f"run:{run_id}"
        found = self._names.get(key)
        if found is None:
            found = self._stores.tracking.get_run(run_id).experiment_id
            self._names.put(key, found)
        return found

    def runs(self, run_ids: Iterable[str], needed: Permission, *, missing_ok: bool = False) -> None:
        """``needed`` on the experiments of all ``run_ids`` (a missing run is `NotFound`, or skipped)."""
        if self.principal is None:
            return
        experiment_ids = set()
        for run_id in set(run_ids):
            try:
                experiment_ids.add(self._experiment_of(run_id))
            except NotFound:
                if not missing_ok:
                    raise
        for experiment_id in experiment_ids:
            self.experiment(experiment_id, needed)

    def can_read_experiment(self, experiment: Experiment) -> bool:
        if self.principal is None:
            return True
        self._remember(experiment)
        return self.principal.permission(ResourceType.EXPERIMENT, experiment.name).allows(READ)

    def readable_experiment_ids(self, ids: Iterable[str]) -> list[str]:
        """The ids among ``ids`` the caller may read (missing ones are left for the store to report)."""
        if self.principal is None:
            return list(ids)
        kept = []
        for experiment_id in ids:
            try:
                self.experiment(experiment_id, READ)
            except Forbidden:
                continue
            except NotFound:
                pass
            kept.append(experiment_id)
        return kept

    def readable_runs(self, found: Iterable[Run]) -> list[Run]:
        if self.principal is None:
            return list(found)
        return [run for run in found if self._may_read_experiment_id(run.experiment_id)]

    # ------------------------------------------------------------------ registered models
    def model(self, name: str, needed: Permission) -> None:
        if self.principal is not None:
            self._check(ResourceType.REGISTERED_MODEL, name, needed, f"registered model {name!r}")

    def model_name(self, name: str, needed: Permission) -> None:
        """``needed`` on registered model ``name``, or when it does not exist yet the role that creates it."""
        if self.principal is None:
            return
        try:
            self._stores.registry.get_model(name)
        except NotFound:
            self.role(Role.EDITOR, f"create registered model {name!r}")
            self._creating.add((ResourceType.REGISTERED_MODEL, name))
            return
        self.model(name, needed)

    def can_read_model(self, name: str) -> bool:
        p = self.principal
        return p is None or p.permission(ResourceType.REGISTERED_MODEL, name).allows(READ)

    # ------------------------------------------------------------------ deployments
    def deployment(self, name: str, needed: Permission) -> None:
        """``needed`` on deployment ``name`` (a missing one is `NotFound`, as a missing experiment is)."""
        if self.principal is None:
            return
        if not self._accounts.resource_exists(ResourceType.DEPLOYMENT, name):
            raise NotFound(f"no deployment named {name!r}; list them with: shipyard deployments list")
        self._check(ResourceType.DEPLOYMENT, name, needed, f"deployment {name!r}")

    def can_read_deployment(self, name: str) -> bool:
        p = self.principal
        return p is None or p.permission(ResourceType.DEPLOYMENT, name).allows(READ)

    # ------------------------------------------------------------------ dataset versions
    def dataset(self, name: str, needed: Permission) -> None:
        if self.principal is not None:
            self._check(ResourceType.DATASET, name, needed, f"dataset {name!r}")

    def dataset_name(self, name: str, needed: Permission) -> None:
        """``needed`` on dataset ``name``, or when it has no versions yet the role that creates it."""
        if self.principal is None:
            return
        try:
            self._stores.datasets.list_versions(name)
        except NotFound:
            self.role(Role.EDITOR, f"create dataset {name!r}")
            self._creating.add((ResourceType.DATASET, name))
            return
        self.dataset(name, needed)

    def can_read_dataset(self, name: str) -> bool:
        p = self.principal
        return p is None or p.permission(ResourceType.DATASET, name).allows(READ)

    def dataset_blob(self, sha256: str, needed: Permission) -> None:
        """A content-addressed blob, shared by every version holding it: read by whoever may read one of
        those datasets (a blob no version records yet, by editors: its uploader checks it landed); written by
        editors (the upload route checks the body hashes to the name); deleted by admins."""
        if self.principal is None:
            return
        if needed is READ:
            holders = self._stores.datasets.blob_holders([sha256]).get(sha256, [])
            if not holders:
                self.role(Role.EDITOR, "read dataset files not recorded in any version")
            elif not any(self.can_read_dataset(name) for name in holders):
                raise Forbidden(f"user {self.principal.user!r} may read no dataset holding blob {sha256}")
        elif needed is EDIT:
            self.role(Role.EDITOR, "store dataset files")
        else:
            self.admin(f"delete dataset blob {sha256}")

    # ------------------------------------------------------------------ helpers
    def _may_read_experiment_id(self, experiment_id: str) -> bool:
        try:
            self.experiment(experiment_id, READ)
        except (Forbidden, NotFound):
            return False
        return True

    def _check(self, kind: ResourceType, name: str, needed: Permission, what: str) -> None:
        p = self.principal
        assert p is not None
        have = p.permission(kind, name)
        if not have.allows(needed):
            raise Forbidden(
                f"user {p.user!r} has {have.value} on {what} and needs {needed.value} "
                f"(an admin can grant it: shipyard grant {p.user} {_resource(kind)}:{name} {needed.value})"
            )

    def _remember(self, experiment: Experiment) -> str:
        self._names.put(experiment.experiment_id, experiment.name)
        self._names.put(experiment.name, experiment.name)
        return experiment.name

    def renamed(self) -> None:
        """An experiment was renamed: forget the names this process remembers."""
        self._names.clear()


_MONITORING = ("baselines", "reports", "labels", "metrics")
ARTIFACTS_ROOT = "artifacts"  # the server's files are shipyard-artifacts://artifacts/… to its clients


def artifact_path(g: Guard, rel: str, needed: Permission) -> None:
    """``needed`` on what an artifact path belongs to — an allow-list under ``artifacts/``:
    ``<experiment id>/…`` an experiment's runs; ``registry/<model>/…`` a registered model's packages;
    ``payloads/<model>/…`` and ``monitoring/{baselines,reports,labels,metrics}/<model>…`` a served model's
    logs and reports (its registered model's permissions; an editor may start those of a model not
    registered yet); ``datasets/blobs/<aa>/<sha256>`` a dataset blob (:meth:`Guard.dataset_blob`). Any other
    path is an admin's."""
    if g.principal is None:
        return
    # Clients see the server's files as shipyard-artifacts://artifacts/…: the first segment is that root.
    root, _, inner = rel.partition("/")
    if root != ARTIFACTS_ROOT or not inner:
        g.admin(f"reach artifacts at {rel or 'the root'!r}")
        return
    parts = inner.split("/")
    if parts[0] == "datasets":
        digest = blob_digest(inner)
        if digest is None:
            g.admin(f"reach artifacts at {rel!r}")
        else:
            g.dataset_blob(digest, needed)
        return
    model = None
    if parts[0] in ("registry", "payloads") and len(parts) > 1:
        model = parts[1]
    elif parts[0] == "monitoring" and len(parts) > 2 and parts[1] in _MONITORING:
        model = parts[2].removesuffix(".parquet").removesuffix(".prom")
    if model:
        if parts[0] == "registry":
            g.model(model, needed)
        else:
            g.model_name(model, needed)
        return
    if parts[0] and parts[0] not in ("registry", "payloads", "monitoring"):
        try:
            g.experiment(parts[0], needed)
            return
        except NotFound:
            pass
    g.admin(f"reach artifacts at {rel or 'the root'!r}")


_GRANT_PREFIX = {
    ResourceType.EXPERIMENT: "experiment",
    ResourceType.REGISTERED_MODEL: "model",
    ResourceType.DEPLOYMENT: "deployment",
    ResourceType.DATASET: "dataset",
}


def _resource(kind: ResourceType) -> str:
    return _GRANT_PREFIX[kind]


def guard(request: Request) -> Guard:
    """The guard of ``request`` (built by the auth middleware's principal)."""
    state = request.app.state
    principal = getattr(request.state, "principal", None)
    return Guard(principal, state.stores, state.experiment_names, state.accounts)
