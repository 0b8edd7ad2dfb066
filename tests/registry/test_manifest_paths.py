"""A MODEL.yaml listing a path outside its package is refused before anything is created on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from shipyard import InvalidInput, models
from shipyard.cli import main
from shipyard.registry import package


def _tree(root: Path) -> list[str]:
    """Every path under ``root`` (none if it does not exist)."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def _import_with_cli(capsys: pytest.CaptureFixture[str], archive: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(["models", "import", str(archive)])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out + err


@pytest.mark.parametrize(
    "listed", ["../escaped/x", "a/../../escaped/x", "{tmp}/abs/escaped/x", "sub/../../../x"]
)
def test_import_of_a_manifest_listing_an_outside_path_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], listed: str
) -> None:
    listed = listed.format(tmp=tmp_path)  # an absolute path, but one inside this test's folder
    folder = tmp_path / "pkg"
    models.save(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), folder)
    # The attacker lists a path outside the package, with a self-consistent hash.
    manifest = yaml.safe_load((folder / package.MANIFEST).read_text())
    manifest["files"].append({"path": listed, "sha256": hashlib.sha256(b"").hexdigest(), "size": 0})
    (folder / package.MANIFEST).write_text(package.dump_yaml(manifest))
    archive = package.export_tarball(folder, tmp_path / "evil.tar.gz", {"name": "evil", "version": 1})
    # Every temporary folder the import makes lives under sandbox/tmp, so any directory created beside or
    # inside one shows up in the tree below.
    sandbox = tmp_path / "sandbox"
    (sandbox / "tmp").mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(sandbox / "tmp"))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    artifacts = Path(os.environ["SHIPYARD_HOME"]) / "artifacts"
    before_sandbox, before_artifacts = _tree(sandbox), _tree(artifacts)

    code, output = _import_with_cli(capsys, archive)

    assert code != 0 and listed in output, output
    assert _tree(sandbox) == before_sandbox
    assert _tree(artifacts) == before_artifacts
    assert models.list_models() == []
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "abs").exists()
    with pytest.raises(InvalidInput, match="'..' component|absolute"):
        models.import_archive(archive)
    assert _tree(sandbox) == before_sandbox
