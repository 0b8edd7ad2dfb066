"""Dataset versions end to end, over every metadata backend: SQLite, PostgreSQL and a platform server
(team mode, its blobs through the server's artifact routes)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.datasets import DatasetClient, SnapshotKind
from shipyard.datasets.blobs import BLOBS_PREFIX, blob_path
from shipyard.errors import Conflict, IntegrityError, InvalidInput, NotFound
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.client import TrackingClient
from tests.conftest import PostgresCluster, make_settings, platform_server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "http"])
def dataset_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of each backend; team mode keeps its blobs on the server (``--artifacts``)."""
    if request.param == "sqlite":
        yield make_settings(tmp_path / "home")
    elif request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        yield make_settings(tmp_path / "home", db_url=cluster.create_database())
    else:
        with platform_server(make_settings(tmp_path / "server"), artifacts=str(tmp_path / "files")) as url:
            yield make_settings(tmp_path / "home", tracking_uri=url)


def _client(settings: Settings) -> DatasetClient:
    return DatasetClient(TrackingClient(settings))


def _folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_folder_round_trips_byte_for_byte(dataset_settings: Settings, tmp_path: Path) -> None:
    source = _folder(tmp_path / "src", {"a.csv": "id\n1\n", "sub/b.bin": "\x00\x01", "sub/deep/c.txt": "c"})
    client = _client(dataset_settings)
    v1 = client.add(source, "customers", description="first", tags={"origin": "crm"})
    assert (v1.ref, v1.kind, v1.num_files, v1.created) == ("customers@1", SnapshotKind.DIRECTORY, 3, True)
    assert [f.path for f in v1.files] == ["a.csv", "sub/b.bin", "sub/deep/c.txt"]
    assert v1.files[0].sha256 == hashlib.sha256(b"id\n1\n").hexdigest()
    restored = client.get("customers@1", tmp_path / "out")
    assert sorted(restored.written) == ["a.csv", "sub/b.bin", "sub/deep/c.txt"]
    for f in v1.files:
        assert (tmp_path / "out" / f.path).read_bytes() == (source / f.path).read_bytes()
    shown = client.version("customers@1")
    assert (shown.description, shown.tags, shown.created_by is not None) == ("first", {"origin": "crm"}, True)


def test_unchanged_content_is_not_a_new_version_unless_forced(
    dataset_settings: Settings, tmp_path: Path
) -> None:
    source = _folder(tmp_path / "src", {"a.csv": "id\n1\n"})
    client = _client(dataset_settings)
    client.add(source, "customers")
    again = client.add(source, "customers")
    assert (again.version, again.created) == (1, False)
    assert client.add(source, "customers", force=True).version == 2
    assert [v.version for v in client.versions("customers")] == [1, 2]


def test_latest_and_bare_names_mean_the_newest(dataset_settings: Settings, tmp_path: Path) -> None:
    client = _client(dataset_settings)
    source = _folder(tmp_path / "src", {"a.csv": "id\n1\n"})
    client.add(source, "customers")
    (source / "a.csv").write_text("id\n1\n2\n")
    client.add(source, "customers")
    assert client.version("customers").version == client.version("customers@latest").version == 2
    [summary] = client.list()
    assert (summary.name, summary.latest_version, summary.versions) == ("customers", 2, 2)


def test_a_single_file_is_restored_as_that_file(dataset_settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("x,y\n1,2\n")
    client = _client(dataset_settings)
    version = client.add(tmp_path / "train.csv", "train")
    assert version.kind is SnapshotKind.FILE and [f.path for f in version.files] == ["train.csv"]
    restored = client.get("train@1", tmp_path / "out")
    assert restored.path == tmp_path / "out" / "train.csv" and restored.path.read_text() == "x,y\n1,2\n"
    local = client.local_path("train")
    assert local.name == "train.csv" and local.read_text() == "x,y\n1,2\n"
    assert client.local_path("train@1") == local  # built once


def test_bad_refs_and_names_say_what_is_wrong(dataset_settings: Settings, tmp_path: Path) -> None:
    client = _client(dataset_settings)
    client.add(_folder(tmp_path / "src", {"a": "1"}), "customers")
    with pytest.raises(InvalidInput, match="version 'x' is not a number"):
        client.version("customers@x")
    with pytest.raises(NotFound, match="has no version 99; it has: 1"):
        client.version("customers@99")
    with pytest.raises(NotFound, match="no dataset named 'nope'"):
        client.version("nope@1")
    with pytest.raises(InvalidInput, match="dataset name 'bad/name' is not valid"):
        client.add(tmp_path / "src", "bad/name")
    with pytest.raises(NotFound, match="no such file or folder"):
        client.add(tmp_path / "missing", "customers")


def test_get_refuses_to_overwrite_different_files_unless_forced(
    dataset_settings: Settings, tmp_path: Path
) -> None:
    client = _client(dataset_settings)
    client.add(_folder(tmp_path / "src", {"a.csv": "1", "b.csv": "2"}), "customers")
    out = _folder(tmp_path / "out", {"a.csv": "1", "b.csv": "edited"})
    with pytest.raises(Conflict, match=r"1 file\(s\) under .* differ from customers@1: 'b.csv'"):
        client.get("customers", out)
    assert (out / "b.csv").read_text() == "edited"
    restored = client.get("customers", out, force=True)
    assert (restored.written, restored.unchanged) == (("b.csv",), ("a.csv",))
    assert (out / "b.csv").read_text() == "2"


def test_tables_diff_by_key_and_by_whole_rows(dataset_settings: Settings, tmp_path: Path) -> None:
    client = _client(dataset_settings)
    src = tmp_path / "src"
    src.mkdir()
    pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]}).to_parquet(src / "t.parquet", index=False)
    (src / "gone.txt").write_text("x")
    client.add(src, "customers")
    pd.DataFrame({"id": [1, 2, 4], "v": ["a", "B", "d"], "w": [1.0, 2.0, 3.0]}).to_parquet(
        src / "t.parquet", index=False
    )
    (src / "gone.txt").unlink()
    (src / "new.txt").write_text("y")
    client.add(src, "customers")
    keyed = client.diff("customers@1", "customers@2", key=["id"])
    assert (keyed.added, keyed.removed, keyed.changed) == (("new.txt",), ("gone.txt",), ("t.parquet",))
    [table] = keyed.tables
    assert (table.added, table.removed, table.changed) == (1, 1, 1)
    assert table.examples == {"added": [4], "removed": [3], "changed": [2]}
    assert [(c.name, c.change) for c in table.columns] == [("w", "added")]
    whole = client.diff("customers@1", "customers@2").tables[0]
    assert (whole.added, whole.removed, whole.changed) == (2, 2, None)
    with pytest.raises(
        InvalidInput, match=r"key column\(s\) 'nope' not in customers@1 file 't.parquet'; it has: id, v"
    ):
        client.diff("customers@1", "customers@2", key=["nope"])


def test_a_run_that_logs_a_version_reaches_it_in_lineage(dataset_settings: Settings, tmp_path: Path) -> None:
    client = _client(dataset_settings)
    version = client.add(_folder(tmp_path / "src", {"a.csv": "id\n1\n"}), "customers")
    with shipyard.start_run("training", settings=dataset_settings) as run:
        logged = run.log_input("data:customers@1", context="training")
        model_uri = f"runs:/{run.run_id}/model"
        LineageClient(client.tracking).record(
            "training",
            run_id=run.run_id,
            inputs=[(version.uri, ArtifactType.DATASET, version.sha256, "customers")],
            outputs=[(model_uri, ArtifactType.MODEL, "f" * 64, "model")],
        )
    assert (logged.digest, logged.source, logged.source_type) == (
        version.sha256,
        "data:customers@1",
        "dataset_version",
    )
    assert [d.source for d in client.tracking.dataset_inputs(run.run_id)] == ["data:customers@1"]
    graph = LineageClient(client.tracking).upstream(model_uri)
    assert [(a.uri, a.sha256) for a in graph.sources()] == [("data:customers@1", version.sha256)]
    assert [r.run_id for r in client.runs_using("customers@1")] == [run.run_id]
    with (
        shipyard.start_run("training", settings=dataset_settings) as run,
        pytest.raises(NotFound, match="it has: 1"),
    ):
        run.log_input("data:customers@7")


def test_a_corrupt_blob_is_caught_and_named(settings: Settings, tmp_path: Path) -> None:
    client = _client(settings)
    version = client.add(_folder(tmp_path / "src", {"a.csv": "good", "b.csv": "fine"}), "customers")
    blobs = ArtifactStore(settings.artifact_root).child(BLOBS_PREFIX)
    blobs.put_bytes(b"evil", blob_path(version.files[0].sha256))
    with pytest.raises(IntegrityError, match="customers@1: file 'a.csv' is corrupt in the store"):
        client.get("customers@1", tmp_path / "out")
    assert not (tmp_path / "out" / "a.csv").exists()  # a corrupt file never lands


def test_unchanged_files_are_stored_once(settings: Settings, tmp_path: Path) -> None:
    client = _client(settings)
    src = _folder(tmp_path / "src", {"big.bin": "x" * 10_000, "small.txt": "1"})
    client.add(src, "customers")
    (src / "small.txt").write_text("2")
    (src / "copy.bin").write_text("x" * 10_000)
    client.add(src, "customers")
    stored = ArtifactStore(settings.artifact_root).list(BLOBS_PREFIX, recursive=True)
    assert len(stored) == 3  # big.bin and its copy share one blob; small.txt has two contents


def test_a_symlink_out_of_the_folder_is_refused(settings: Settings, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src", {"a.csv": "1"})
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", src / "leak")
    with pytest.raises(InvalidInput, match="escapes"):
        _client(settings).add(src, "customers")


def test_versions_on_an_s3_artifact_root(s3_settings: Settings, tmp_path: Path) -> None:
    client = _client(s3_settings)
    src = _folder(tmp_path / "src", {"a.csv": "id\n1\n", "sub/b.txt": "b"})
    assert client.add(src, "customers").version == 1
    restored = client.get("customers@1", tmp_path / "out")
    assert sorted(restored.written) == ["a.csv", "sub/b.txt"]
    assert (tmp_path / "out" / "sub" / "b.txt").read_text() == "b"
    assert s3_settings.artifact_root.startswith("s3://")
