"""Crafted skops files in packages an attacker writes: imported and loaded, they run nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from shipyard import UntrustedArtifact, models
from shipyard.cli import main
from shipyard.registry import package
from tests.registry import crafted_skops as crafted

pytest.importorskip("skops", reason="skops is not installed (pip install skops)")

VICTIM_TEXT = "precious data\n"


def _rewrite_manifest(folder: Path, **changes: object) -> None:
    """Edit MODEL.yaml the way an attacker would: the hashes of the files it lists stay self-consistent."""
    manifest = yaml.safe_load((folder / package.MANIFEST).read_text())
    manifest.update(changes)
    (folder / package.MANIFEST).write_text(package.dump_yaml(manifest))


def _crafted_package(folder: Path, skops_file: bytes) -> Path:
    """A real package whose model.skops is replaced by ``skops_file``, with MODEL.yaml rehashed to match."""
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    models.save(model, folder)
    (folder / "model.skops").write_bytes(skops_file)
    manifest = yaml.safe_load((folder / package.MANIFEST).read_text())
    files = [
        {**entry, "sha256": hashlib.sha256(skops_file).hexdigest(), "size": len(skops_file)}
        if entry["path"] == "model.skops"
        else entry
        for entry in manifest["files"]
    ]
    _rewrite_manifest(folder, files=files)
    return folder


def _tree(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def _import_with_cli(capsys: pytest.CaptureFixture[str], archive: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["models", "import", str(archive)])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out + err


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim" / "data.txt"
    path.parent.mkdir()
    path.write_text(VICTIM_TEXT)
    return path


def _issue_file(victim: Path) -> bytes:
    """The file from the issue: skops calls numpy.lib._datasource.open(victim, "w"), truncating it."""
    j = crafted.json_node
    return crafted.skops_bytes(crafted.call_node("numpy.lib._datasource.open", j(str(victim)), j("w")))


def test_crafted_package_loaded_from_a_folder_touches_nothing(tmp_path: Path, victim: Path) -> None:
    folder = _crafted_package(tmp_path / "pkg", _issue_file(victim))
    with pytest.raises(UntrustedArtifact, match=r"numpy\.lib\._datasource\.open"):
        models.load(str(folder))
    assert victim.read_text() == VICTIM_TEXT


def test_crafted_archive_imports_but_never_loads(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _crafted_package(tmp_path / "pkg", _issue_file(victim))
    archive = package.export_tarball(folder, tmp_path / "crafted.tar.gz", {"name": "crafted", "version": 1})

    code, output = _import_with_cli(capsys, archive)
    assert code == 0, output
    assert "imported as crafted version 1" in output
    with pytest.raises(
        UntrustedArtifact, match=r"numpy\.lib\._datasource\.open \(as ConstructorFromReduceNode\)"
    ):
        models.load("models:/crafted/1")
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.parametrize(
    "node",
    [
        "scipy.sparse.save_npz",
        "sklearn.tree._export.export_graphviz",
        "posix.system",
        "subprocess.Popen",
    ],
)
def test_crafted_archive_naming_other_writers_never_loads(
    tmp_path: Path, victim: Path, capsys: pytest.CaptureFixture[str], node: str
) -> None:
    j = crafted.json_node
    skops_file = crafted.skops_bytes(crafted.call_node(node, j(str(victim)), j("w")))
    folder = _crafted_package(tmp_path / "pkg", skops_file)
    archive = package.export_tarball(folder, tmp_path / "crafted.tar.gz", {"name": "crafted", "version": 1})
    assert _import_with_cli(capsys, archive)[0] == 0
    before = _tree(victim.parent)
    with pytest.raises(UntrustedArtifact, match=node.replace(".", r"\.")):
        models.load("models:/crafted/1")
    assert victim.read_text() == VICTIM_TEXT and _tree(victim.parent) == before
