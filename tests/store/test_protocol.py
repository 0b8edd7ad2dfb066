"""The storage boundary holds: SQL lives only in ``shipyard/store``, and both implementations (SQL and the
platform server's HTTP stores) have every method of the protocols with the same parameters."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.store import protocol
from shipyard.store.sql import SqlStores
from shipyard.tracking import TrackingClient

PACKAGE = Path(__file__).resolve().parents[2] / "shipyard"
PROTOCOLS = {
    "tracking": protocol.TrackingStore,
    "registry": protocol.RegistryStore,
    "lineage": protocol.LineageStore,
    "schedules": protocol.ScheduleStore,
    "datasets": protocol.DatasetStore,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


# Modules that read another system's database (never Shipyard's): the MLflow importer reads MLflow's tables.
FOREIGN_DATABASES = {Path("importers/mlflow/sql_source.py")}


def test_no_module_outside_store_touches_sql() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "store":
            continue
        if relative in FOREIGN_DATABASES:
            assert not {n for n in _imports(path) if n.startswith("shipyard.store")} - {"shipyard.store"}, (
                f"{relative} reads a foreign database: it may not reach Shipyard's own"
            )
            continue
        sql = {
            name
            for name in _imports(path)
            if name.split(".")[0] == "sqlalchemy"
            or name.startswith(("shipyard.store.db", "shipyard.store.schema", "shipyard.store.sql"))
        }
        if sql:
            offenders.append(f"{relative}: {', '.join(sorted(sql))}")
    assert not offenders, "SQL outside shipyard/store:\n" + "\n".join(offenders)


def _methods(kind: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(kind).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize("implementation", ["sql", "http"])
@pytest.mark.parametrize("part", sorted(PROTOCOLS))
def test_each_implementation_has_every_protocol_method(
    part: str, implementation: str, settings: Settings
) -> None:
    from shipyard.store.http import HttpStores

    stores = (
        SqlStores.open(settings) if implementation == "sql" else HttpStores("http://127.0.0.1:9", settings)
    )
    store = getattr(stores, part)
    wanted = _methods(PROTOCOLS[part])
    assert wanted, f"{PROTOCOLS[part].__name__} declares no methods"
    for name, signature in wanted.items():
        method = getattr(store, name, None)
        assert method is not None, f"{type(store).__name__} lacks {name}"
        expected = [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]
        actual = [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]
        assert actual == expected, f"{type(store).__name__}.{name}{inspect.signature(method)} != protocol"


def test_clients_reach_every_store_through_the_protocol(settings: Settings) -> None:
    stores = SqlStores.open(settings)
    client = TrackingClient(settings, stores=stores)
    assert client.backend is stores.tracking
    for part in PROTOCOLS:
        assert hasattr(stores, part)


def test_the_sql_auth_store_has_every_auth_protocol_method(settings: Settings) -> None:
    """Access records live only on a server, so only SQL implements `AuthStore` (no HTTP twin)."""
    store = SqlStores.open(settings).auth
    for name, signature in _methods(protocol.AuthStore).items():
        method = getattr(store, name, None)
        assert method is not None, f"SqlAuthStore lacks {name}"
        expected = [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]
        actual = [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]
        assert actual == expected, f"SqlAuthStore.{name}{inspect.signature(method)} != protocol"


def test_the_sql_import_store_has_every_import_protocol_method(settings: Settings) -> None:
    """Copied records are written into the database itself, so only SQL implements `ImportStore`."""
    store = SqlStores.open(settings).imports
    wanted = _methods(protocol.ImportStore)
    assert wanted
    for name, signature in wanted.items():
        method = getattr(store, name, None)
        assert method is not None, f"SqlImportStore lacks {name}"
        expected = [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]
        actual = [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]
        assert actual == expected, f"SqlImportStore.{name}{inspect.signature(method)} != protocol"


def test_the_sql_deployment_store_has_every_deployment_protocol_method(settings: Settings) -> None:
    """Deployment records live only on a server, so only SQL implements `DeploymentStore` (no HTTP twin)."""
    store = SqlStores.open(settings).deployments
    wanted = _methods(protocol.DeploymentStore)
    assert wanted
    for name, signature in wanted.items():
        method = getattr(store, name, None)
        assert method is not None, f"SqlDeploymentStore lacks {name}"
        expected = [(p.name, p.kind) for p in signature.parameters.values() if p.name != "self"]
        actual = [(p.name, p.kind) for p in inspect.signature(method).parameters.values()]
        assert actual == expected, f"SqlDeploymentStore.{name}{inspect.signature(method)} != protocol"
