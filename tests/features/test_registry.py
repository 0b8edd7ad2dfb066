"""The feature registry: plan and apply a repository, versions for every change (embedded on SQLite and
PostgreSQL, and through the platform server), the repository loader and the ``shipyard features`` CLI."""

from __future__ import annotations

import json
import os
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shipyard import Settings
from shipyard.errors import Conflict, Forbidden, InvalidInput, NotFound
from shipyard.features import DataFrameSource, Entity, FeatureService, FeatureStore, FeatureView, Field
from shipyard.features.repository import load_repository
from shipyard.store import open_server_stores, open_stores
from tests.conftest import console, make_settings, platform_server

ROWS = pd.DataFrame(
    {"customer_id": [1], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC")], "spend": [1.0]}
)
customer = Entity("customer", ["customer_id"], description="a buyer")


def views(*fields: Field) -> FeatureView:
    return FeatureView("stats", [customer], fields or [Field("spend", "float64")], DataFrameSource(ROWS))


@pytest.fixture(params=["embedded", "server"])
def registry_settings(request: pytest.FixtureRequest, backend_settings: Settings) -> Iterator[Settings]:
    """The registry of each metadata backend, embedded, and of SQLite through the platform server."""
    if request.param == "embedded":
        yield backend_settings
        return
    with platform_server(backend_settings) as url:
        yield make_settings(Path(str(backend_settings.home)) / "client", tracking_uri=url)


def test_apply_versions_each_change_and_nothing_else(registry_settings: Settings) -> None:
    stats = views()
    service = FeatureService("churn", [stats])
    store = FeatureStore([stats, service], settings=registry_settings)
    plan = store.plan()
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        ("added", "entity", "customer"),
        ("added", "feature_view", "stats"),
        ("added", "feature_service", "churn"),
    ]
    first = store.apply(user="ana")
    assert [(v.name, v.version) for v in first] == [("customer", 1), ("stats", 1), ("churn", 1)]
    assert store.apply() == [] and store.plan().empty  # unchanged: no new versions
    assert store.service_version("churn").version == 1

    wider = views(Field("spend", "float64"), Field("visits", "int64"))
    store = FeatureStore([wider, FeatureService("churn", [wider])], settings=registry_settings)
    with pytest.raises(Conflict, match="differs from its applied version 1"):
        store.service_version("churn")
    plan = store.plan()
    changed = {c.name: c for c in plan.changes}
    assert changed["stats"].action == "changed" and "+ field visits: int64" in changed["stats"].details
    assert "~ features" in "\n".join(changed["churn"].details)
    assert "~ feature_view stats (version 1 -> 2)" in plan.lines()
    store.apply()
    assert store.service_version("churn").version == 2

    # Removing the service marks it deleted; adding it back is version 4.
    FeatureStore([wider], settings=registry_settings).apply()
    registry = open_stores(registry_settings).features
    assert [(v.version, v.deleted) for v in registry.history("feature_service", "churn")] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    with pytest.raises(NotFound, match="no feature service 'churn' in the feature registry"):
        FeatureStore([wider, FeatureService("churn", [wider])], settings=registry_settings).service_version(
            "churn"
        )
    FeatureStore([wider, FeatureService("churn", [wider])], settings=registry_settings).apply()
    assert registry.history("feature_service", "churn")[-1].version == 4
    assert {v.created_by for v in registry.history("entity", "customer")} <= {"ana", "anonymous"}


def test_concurrent_applies_never_share_a_version(settings: Settings) -> None:
    errors: list[BaseException] = []

    def apply(n: int) -> None:
        try:
            for i in range(5):
                store = FeatureStore(
                    [views(Field("spend", "float64"), Field(f"f{n}_{i}", "int64"))], settings=settings
                )
                store.apply()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    versions = [v.version for v in open_stores(settings).features.history("feature_view", "stats")]
    assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 5


def test_a_viewer_cannot_apply(tmp_path: Path) -> None:
    from shipyard.auth.accounts import Accounts

    server_settings = make_settings(tmp_path / "server")
    accounts = Accounts(open_server_stores(server_settings).auth)
    accounts.create_user("vic", role="viewer")
    token = accounts.create_token("vic", "t")[1]
    with platform_server(server_settings, require_auth=True) as url:
        client = make_settings(tmp_path / "client", tracking_uri=url, tracking_token=token)
        store = FeatureStore([views()], settings=client)
        assert len(store.plan().changes) == 2  # reading is a viewer's right
        with pytest.raises(Forbidden, match="apply feature definitions"):
            store.apply()


REPO = {
    "entities.py": """
        from shipyard.features import Entity
        customer = Entity("customer", ["customer_id"])
    """,
    "views.py": """
        from datetime import timedelta
        from shipyard.features import FeatureService, FeatureView, Field, FileSource
        from entities import customer
        spend = [Field("spend", "float64")]
        stats = FeatureView("stats", [customer], spend, FileSource("stats.parquet"), ttl=timedelta(days=30))
        churn = FeatureService("churn", [stats])
    """,
    "_helpers.py": "raise RuntimeError('not imported: starts with _')",
}


def write_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_a_repository_is_its_files_definitions(tmp_path: Path) -> None:
    repo = load_repository(write_repo(tmp_path / "repo", REPO))
    assert sorted((type(d).__name__, d.name) for d in repo.definitions) == [
        ("Entity", "customer"),
        ("FeatureService", "churn"),
        ("FeatureView", "stats"),
    ]
    assert repo.files == ("entities.py", "views.py")
    broken = write_repo(
        tmp_path / "broken", {"views.py": "from shipyard.features import Field\n\nx = Field('1a', 'int64')\n"}
    )
    with pytest.raises(InvalidInput, match=r"feature repository views.py, line 3: InvalidInput: field: '1a'"):
        load_repository(broken)
    with pytest.raises(InvalidInput, match="no Python files"):
        load_repository(write_repo(tmp_path / "empty", {"README.md": "nothing"}))
    with pytest.raises(InvalidInput, match="not a folder"):
        load_repository(tmp_path / "nope")


def test_the_cli_plans_applies_and_lists(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", REPO)
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_CEILING_DIRECTORIES": str(tmp_path),
    }
    planned = console("features", "plan", "--repo", str(repo), env=env, cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert "+ feature_view stats" in planned.stdout and "3 to change" in planned.stdout
    applied = console("features", "apply", "--repo", str(repo), "--json", env=env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert {(v["name"], v["version"]) for v in json.loads(applied.stdout)} == {
        ("customer", 1),
        ("stats", 1),
        ("churn", 1),
    }
    again = console("features", "plan", "--repo", str(repo), env=env, cwd=tmp_path)
    assert "No changes: 3 definitions" in again.stdout
    listed = console("features", "list", "--json", env=env, cwd=tmp_path)
    assert {v["name"] for v in json.loads(listed.stdout)} == {"customer", "stats", "churn"}
    bad = console("features", "plan", "--repo", str(tmp_path / "missing"), env=env, cwd=tmp_path)
    assert bad.returncode != 0 and "not a folder" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
