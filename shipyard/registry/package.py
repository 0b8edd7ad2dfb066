"""Model packages: a folder with the flavor's files, ``MODEL.yaml`` (the manifest) and ``MODEL_CARD.md``.

The manifest lists every file with its sha256 and size, the flavor and what its loader needs, the
signature, pinned requirements, the run's metrics and params, and lineage. :func:`verify_package` checks
every listed file before a flavor reads it; a package travels as a ``.tar.gz`` whose extraction refuses
links, devices and paths that leave the target folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipyard.errors import IntegrityError, InvalidInput, NotFound

MANIFEST = "MODEL.yaml"
CARD = "MODEL_CARD.md"
INPUT_EXAMPLE = "input_example.json"
BASELINE = "baseline.parquet"
BASELINE_SCHEMA = "baseline_schema.yaml"
FORMAT = "shipyard-model/1"
_MAX_IMPORT_BYTES = 8 * 2**30


@dataclass(frozen=True)
class PackageFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The parsed ``MODEL.yaml``."""

    name: str
    flavor: str
    files: tuple[PackageFile, ...]
    loader: Mapping[str, Any] = field(default_factory=dict)
    signature: Mapping[str, Any] | None = None
    requirements: tuple[str, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    limitations: str | None = None
    created_at: str = ""
    python: str = ""
    has_input_example: bool = False
    has_baseline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "flavor": self.flavor,
            "created_at": self.created_at,
            "python": self.python,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "loader": dict(self.loader),
            "signature": dict(self.signature) if self.signature is not None else None,
            "input_example": INPUT_EXAMPLE if self.has_input_example else None,
            "baseline": BASELINE if self.has_baseline else None,
            "requirements": list(self.requirements),
            "metrics": dict(self.metrics),
            "params": dict(self.params),
            "lineage": dict(self.lineage),
            "description": self.description,
            "limitations": self.limitations,
            "card": CARD,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Manifest:
        if not isinstance(data, dict):
            raise InvalidInput(f"{source} is not a mapping")
        if data.get("format") != FORMAT:
            raise InvalidInput(
                f"{source}: field 'format' is {data.get('format')!r}; this Shipyard reads {FORMAT!r}"
            )
        for required in ("name", "flavor", "files"):
            if not data.get(required):
                raise InvalidInput(f"{source}: field {required!r} is missing")
        try:
            files = tuple(
                PackageFile(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in data["files"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"{source}: field 'files' must list path, sha256 and size for each file"
            ) from exc
        return cls(
            name=str(data["name"]),
            flavor=str(data["flavor"]),
            files=files,
            loader=data.get("loader") or {},
            signature=data.get("signature"),
            requirements=tuple(data.get("requirements") or ()),
            metrics=data.get("metrics") or {},
            params=data.get("params") or {},
            lineage=data.get("lineage") or {},
            description=data.get("description"),
            limitations=data.get("limitations"),
            created_at=str(data.get("created_at") or ""),
            python=str(data.get("python") or ""),
            has_input_example=bool(data.get("input_example")),
            has_baseline=bool(data.get("baseline")),
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_package(
    directory: Path,
    *,
    name: str,
    flavor: str,
    files: Sequence[str],
    loader: Mapping[str, Any],
    signature: Mapping[str, Any] | None,
    input_example: Any | None,
    requirements: Sequence[str],
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    lineage: Mapping[str, Any],
    description: str | None = None,
    limitations: str | None = None,
    baseline: bytes | None = None,
    baseline_schema: str | None = None,
) -> Manifest:
    """Write the input example, the baseline (Parquet bytes) and its schema (YAML), the card and
    ``MODEL.yaml`` beside the flavor's ``files``."""
    listed = list(files)
    if input_example is not None:
        (directory / INPUT_EXAMPLE).write_text(json.dumps(encode_example(input_example)), encoding="utf-8")
        listed.append(INPUT_EXAMPLE)
    if baseline is not None:
        (directory / BASELINE).write_bytes(baseline)
        listed.append(BASELINE)
    if baseline_schema is not None:
        (directory / BASELINE_SCHEMA).write_text(baseline_schema, encoding="utf-8")
        listed.append(BASELINE_SCHEMA)
    draft = Manifest(
        name=name,
        flavor=flavor,
        files=(),
        loader=loader,
        signature=signature,
        requirements=tuple(requirements),
        metrics=dict(metrics),
        params=dict(params),
        lineage=dict(lineage),
        description=description,
        limitations=limitations,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        python=platform.python_version(),
        has_input_example=input_example is not None,
        has_baseline=baseline is not None,
    )
    (directory / CARD).write_text(render_card(draft), encoding="utf-8")
    listed.append(CARD)
    entries = []
    for relative in listed:
        path = directory / relative
        entries.append(PackageFile(relative, sha256_file(path), path.stat().st_size))
    manifest = Manifest(**{**draft.__dict__, "files": tuple(entries)})
    (directory / MANIFEST).write_text(dump_yaml(manifest.to_dict()), encoding="utf-8")
    return manifest


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    if not path.is_file():
        raise NotFound(f"{directory} is not a model package: it has no {MANIFEST}")
    return parse_manifest(path.read_bytes(), str(path))


def parse_manifest(data: bytes, source: str) -> Manifest:
    import yaml

    try:
        # libyaml's safe loader when present: ~8x faster than the pure-Python one on every register/load.
        loaded = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML: {exc}") from exc
    return Manifest.from_dict(loaded, source)


def verify_package(directory: Path, manifest: Manifest) -> None:
    """Check every file the manifest lists; `IntegrityError` names the first that differs."""
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise IntegrityError(
                f"model package {directory}: file {entry.path!r} listed in {MANIFEST} is missing"
            )
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise IntegrityError(
                f"model package {directory}: {entry.path!r} has sha256 {actual}, but {MANIFEST} records "
                f"{entry.sha256}; the file was changed after the model was saved"
            )


def dump_yaml(data: Mapping[str, Any]) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(_plain(data), Dumper=dumper, sort_keys=False, allow_unicode=True)


def _plain(value: Any) -> Any:
    # YAML-safe values only: numpy scalars and tuples become plain Python.
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


# ---------------------------------------------------------------------- input examples
def encode_example(example: Any) -> dict[str, Any]:
    """A JSON-safe form of a DataFrame, ndarray or list input example."""
    module = type(example).__module__.split(".")[0]
    if module == "pandas":
        frame = example.to_frame() if example.ndim == 1 else example
        return {
            "type": "dataframe",
            "columns": [str(c) for c in frame.columns],
            "dtypes": [str(t) for t in frame.dtypes],
            "data": json.loads(frame.to_json(orient="values", date_format="iso")),
        }
    if module == "numpy":
        return {"type": "ndarray", "dtype": str(example.dtype), "data": example.tolist()}
    if isinstance(example, list | dict):
        return {"type": "json", "data": example}
    raise InvalidInput(
        f"input_example must be a DataFrame, an ndarray, a list or a dict, got {type(example).__name__}"
    )


def decode_example(data: Mapping[str, Any]) -> Any:
    kind = data.get("type")
    if kind == "dataframe":
        import pandas as pd

        frame = pd.DataFrame(data["data"], columns=data["columns"])
        for column, dtype in zip(data["columns"], data.get("dtypes", []), strict=False):
            # On failure keep what JSON gave: the signature check reports a real mismatch.
            with contextlib.suppress(TypeError, ValueError):
                frame[column] = frame[column].astype(dtype)
        return frame
    if kind == "ndarray":
        import numpy as np

        return np.asarray(data["data"], dtype=data["dtype"])
    return data.get("data")


def load_example(directory: Path) -> Any | None:
    path = directory / INPUT_EXAMPLE
    return decode_example(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


# ---------------------------------------------------------------------- the model card
def render_card(manifest: Manifest) -> str:
    """A Markdown model card from what the manifest knows; the limitations field is left for people."""
    lines = [f"# Model card: {manifest.name}", ""]
    lines += [
        "## Intended use",
        "",
        manifest.description or "_Describe what this model is for and who uses it._",
        "",
    ]
    lines += ["## Model", "", f"- Flavor: `{manifest.flavor}`", f"- Python: {manifest.python}"]
    if manifest.requirements:
        lines.append(f"- Requirements: {', '.join(f'`{r}`' for r in manifest.requirements)}")
    lines.append("")
    lineage = manifest.lineage
    lines += ["## Data", ""]
    datasets = lineage.get("datasets") or []
    if datasets:
        lines += ["| dataset | digest (sha256) | rows | context |", "|---|---|---|---|"]
        lines += [
            f"| {_cell(d.get('name'))} | `{str(d.get('digest') or '')[:16]}…` | {_cell(d.get('num_rows'))} "
            f"| {_cell(d.get('context'))} |"
            for d in datasets
        ]
    else:
        lines.append("_No dataset inputs were logged by the training run._")
    if lineage.get("run_id"):
        lines += ["", f"Trained in run `{lineage['run_id']}`."]
    lines += ["", "## Metrics", ""]
    lines += _table(manifest.metrics, "metric") if manifest.metrics else ["_No metrics were logged._"]
    lines += ["", "## Parameters", ""]
    lines += _table(manifest.params, "param") if manifest.params else ["_No parameters were logged._"]
    if manifest.signature:
        lines += [
            "",
            "## Signature",
            "",
            "```json",
            json.dumps(manifest.signature, indent=2, default=str),
            "```",
        ]
    lines += [
        "",
        "## Limitations",
        "",
        manifest.limitations
        or "_Not stated. Describe known failure modes, "
        "populations the data does not cover, and fairness considerations._",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """A table cell: unknown values (None) are left blank rather than printed as 'None'."""
    return "" if value is None else str(value)


def _table(values: Mapping[str, Any], what: str) -> list[str]:
    return [f"| {what} | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in sorted(values.items()))]


# ---------------------------------------------------------------------- export and import
def export_tarball(directory: Path, destination: Path, registry_info: Mapping[str, Any]) -> Path:
    """Write the package folder (plus ``REGISTRY.json`` describing the version) as a ``.tar.gz``."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
        info = json.dumps(dict(registry_info), indent=2, default=str).encode()
        member = tarfile.TarInfo("REGISTRY.json")
        member.size = len(info)
        tar.addfile(member, io.BytesIO(info))
    return destination


def import_tarball(source: Path, target: Path) -> dict[str, Any]:
    """Extract a package exported by :func:`export_tarball` into ``target``; returns its REGISTRY.json.

    Refuses (InvalidInput naming the member) absolute paths, ``..``, links, devices and oversized archives.
    """
    if not source.is_file():
        raise NotFound(f"model archive {str(source)!r} does not exist")
    try:
        tar = tarfile.open(source, "r:*")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError) as exc:
        raise InvalidInput(f"{source} is not a readable model archive: {exc}") from exc
    with tar:
        total = 0
        for member in tar.getmembers():
            name = member.name
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or (not member.isfile() and not member.isdir()):
                raise InvalidInput(
                    f"{source}: refusing archive member {name!r} (links, devices and paths "
                    "outside the package are not allowed)"
                )
            total += member.size
            if total > _MAX_IMPORT_BYTES:
                raise InvalidInput(f"{source}: archive is larger than {_MAX_IMPORT_BYTES} bytes")
        target.mkdir(parents=True, exist_ok=True)
        tar.extractall(target, filter="data")
    info_path = target / "REGISTRY.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    info_path.unlink(missing_ok=True)
    return info
