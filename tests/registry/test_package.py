"""Package manifests, tamper detection, cards, and safe archive import."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from shipyard import IntegrityError, InvalidInput, NotFound
from shipyard.registry import package


def _write(directory: Path, **overrides: object) -> package.Manifest:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "weights.bin").write_bytes(b"\x00\x01weights")
    options: dict = {
        "name": "model",
        "flavor": "pyfunc",
        "files": ["weights.bin"],
        "loader": {"function": "x:y"},
        "signature": None,
        "input_example": [[1, 2]],
        "requirements": ["numpy==2.0"],
        "metrics": {"acc": 0.9},
        "params": {"depth": "3"},
        "lineage": {"run_id": "r" * 32, "datasets": [{"name": "train", "digest": "d" * 64, "num_rows": 10}]},
        "description": "Predicts churn.",
    }
    options.update(overrides)
    return package.write_package(directory, **options)  # type: ignore[arg-type]


def test_manifest_round_trip_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    written = _write(tmp_path / "pkg")
    read = package.read_manifest(tmp_path / "pkg")
    assert read == written
    assert [f.path for f in read.files] == ["weights.bin", package.INPUT_EXAMPLE, package.CARD]
    assert read.files[0].sha256 == package.sha256_file(tmp_path / "pkg" / "weights.bin")
    package.verify_package(tmp_path / "pkg", read)


def test_card_has_intended_use_data_metrics_params_and_limitations(tmp_path: Path) -> None:
    _write(tmp_path / "pkg")
    card = (tmp_path / "pkg" / package.CARD).read_text()
    for heading in ("## Intended use", "## Data", "## Metrics", "## Parameters", "## Limitations"):
        assert heading in card
    assert "Predicts churn." in card and "| acc | 0.9 |" in card and "dddddddddddddddd" in card


def test_tampered_or_missing_file_is_named(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "pkg")
    (tmp_path / "pkg" / "weights.bin").write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="'weights.bin' has sha256"):
        package.verify_package(tmp_path / "pkg", manifest)
    (tmp_path / "pkg" / "weights.bin").unlink()
    with pytest.raises(IntegrityError, match="'weights.bin' listed in MODEL.yaml is missing"):
        package.verify_package(tmp_path / "pkg", manifest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"format: other/9\nname: m\nflavor: x\nfiles: [a]\n", "'format'"),
        (b"format: shipyard-model/1\nname: m\nfiles: []\n", "'flavor'"),
        (b"format: shipyard-model/1\nname: m\nflavor: x\nfiles: [{path: a}]\n", "'files'"),
        (b"- just\n- a list\n", "not a mapping"),
        (b"{unclosed: [", "not valid YAML"),
    ],
)
def test_bad_manifest_names_the_field(text: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        package.parse_manifest(text, "MODEL.yaml")


def test_directory_without_manifest_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no MODEL.yaml"):
        package.read_manifest(tmp_path)


def test_export_import_round_trip(tmp_path: Path) -> None:
    _write(tmp_path / "pkg")
    archive = package.export_tarball(
        tmp_path / "pkg", tmp_path / "out" / "m.tar.gz", {"name": "churn", "version": 2}
    )
    info = package.import_tarball(archive, tmp_path / "back")
    assert info == {"name": "churn", "version": 2}
    package.verify_package(tmp_path / "back", package.read_manifest(tmp_path / "back"))


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/owned", "a/../../b"])
def test_import_refuses_paths_that_leave_the_folder(tmp_path: Path, name: str) -> None:
    archive = _archive_with(tmp_path, tarfile.TarInfo(name), b"x")
    with pytest.raises(InvalidInput, match="refusing archive member"):
        package.import_tarball(archive, tmp_path / "target")
    assert not (tmp_path / "escape.txt").exists()


def test_import_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("MODEL.yaml")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(InvalidInput, match="refusing archive member 'MODEL.yaml'"):
        package.import_tarball(_archive_with(tmp_path, link), tmp_path / "target")


def test_import_of_a_non_archive_is_invalid(tmp_path: Path) -> None:
    bogus = tmp_path / "m.tar.gz"
    bogus.write_text("not a tarball")
    with pytest.raises(InvalidInput, match="not a readable model archive"):
        package.import_tarball(bogus, tmp_path / "target")


def test_card_leaves_unknown_dataset_fields_blank(tmp_path: Path) -> None:
    # A dataset logged from a file path has no row count or context: the card must not print 'None'.
    lineage = {"datasets": [{"name": "train", "digest": "e" * 64, "num_rows": None, "context": None}]}
    _write(tmp_path / "pkg", lineage=lineage)
    card = (tmp_path / "pkg" / package.CARD).read_text()
    assert "| train | `eeeeeeeeeeeeeeee…` |  |  |" in card and "None" not in card
