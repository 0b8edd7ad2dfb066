"""Describe a dataset a run consumed: a content hash and a schema summary.

The digest is over the *content*: for a DataFrame, pandas' per-row hashes (index included) plus the column
names and dtypes, so the same data gives the same digest in any process; for a file, its bytes; for a
folder, each file's relative path and bytes in sorted order.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from shipyard.datasets.records import DatasetVersion
from shipyard.datasets.refs import is_dataset_uri, parse_ref
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.protocol import DatasetStore
from shipyard.tracking.records import DatasetInput

_CHUNK = 1 << 20


def describe_dataset(data: Any, *, name: str | None = None, context: str | None = None) -> DatasetInput:
    """A `DatasetInput` for a pandas DataFrame/Series, a numpy array, or a path to a file or folder."""
    if isinstance(data, str | os.PathLike):
        return _describe_path(Path(data), name, context)
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return _describe_frame(data, name, context)
    if module == "numpy":
        return _describe_array(data, name, context)
    raise InvalidInput(
        f"log_input takes a pandas DataFrame, a numpy array or a path, got {type(data).__name__}"
    )


def describe_dataset_version(
    store: DatasetStore, uri: str, *, name: str | None = None, context: str | None = None
) -> tuple[DatasetInput, DatasetVersion]:
    """A `DatasetInput` for the dataset version ``data:customers@3`` names (``data:customers``: the newest,
    recorded by its number), and that version. Its digest is the snapshot's sha256; its source the exact
    ``data:name@version`` URI, which lineage uses as the dataset's URI.

    Raises:
        InvalidInput: a malformed reference. NotFound: no such dataset or version (the versions named).
    """
    if not is_dataset_uri(uri):
        raise InvalidInput(f"{uri!r} is not a dataset version reference like data:customers@3")
    ref = parse_ref(uri)
    version = store.get_version(ref.name, ref.version)
    return version_input(version, name=name, context=context), version


def version_input(
    version: DatasetVersion, *, name: str | None = None, context: str | None = None
) -> DatasetInput:
    """The `DatasetInput` a run that read ``version`` records: its snapshot hash and ``data:`` URI."""
    return DatasetInput(
        name=name or version.name,
        digest=version.sha256,
        source=version.uri,
        source_type="dataset_version",
        num_rows=None,
        schema={"kind": version.kind.value, "files": version.num_files, "size": version.size},
        context=context,
    )


def _describe_frame(frame: Any, name: str | None, context: str | None) -> DatasetInput:
    import pandas as pd

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    try:
        digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): fall back to their text form
        digest.update(frame.to_csv().encode())
    columns = [{"name": str(c), "dtype": str(t)} for c, t in frame.dtypes.items()]
    schema = {"columns": columns, "shape": list(frame.shape)}
    return DatasetInput(
        name=name or "dataframe",
        digest=digest.hexdigest(),
        source="<in-memory DataFrame>",
        source_type="pandas",
        num_rows=len(frame),
        schema=schema,
        context=context,
    )


def _describe_array(array: Any, name: str | None, context: str | None) -> DatasetInput:
    import numpy as np

    contiguous = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    if contiguous.dtype.hasobject:
        digest.update(repr(contiguous.tolist()).encode())
    else:
        digest.update(contiguous.tobytes())
    schema = {"dtype": str(contiguous.dtype), "shape": list(contiguous.shape)}
    return DatasetInput(
        name=name or "array",
        digest=digest.hexdigest(),
        source="<in-memory ndarray>",
        source_type="numpy",
        num_rows=int(contiguous.shape[0]) if contiguous.ndim else None,
        schema=schema,
        context=context,
    )


def _describe_path(path: Path, name: str | None, context: str | None) -> DatasetInput:
    if not path.exists():
        raise NotFound(f"dataset file {str(path)!r} does not exist")
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            _hash_file(file, digest)
        schema: dict[str, Any] = {"files": len(files)}
        num_rows = None
    else:
        _hash_file(path, digest)
        schema, num_rows = _file_schema(path)
    return DatasetInput(
        name=name or path.name,
        digest=digest.hexdigest(),
        source=str(path.resolve()),
        source_type="directory" if path.is_dir() else (path.suffix.lstrip(".").lower() or "file"),
        num_rows=num_rows,
        schema=schema,
        context=context,
    )


def _hash_file(path: Path, digest: Any) -> None:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)


def _file_schema(path: Path) -> tuple[dict[str, Any], int | None]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(path)
            columns = [{"name": f.name, "dtype": str(f.type)} for f in meta.schema_arrow]
            return {"columns": columns}, meta.metadata.num_rows
        if suffix in (".csv", ".tsv"):
            import pandas as pd

            sep = "\t" if suffix == ".tsv" else ","
            head = pd.read_csv(path, sep=sep, nrows=1000)
            with path.open("rb") as fh:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(_CHUNK), b""))
            columns = [{"name": str(c), "dtype": str(t)} for c, t in head.dtypes.items()]
            return {"columns": columns}, max(lines - 1, 0)
    except Exception as exc:  # a malformed file is still a valid input to hash; say why there is no schema
        return {"error": f"could not read schema: {exc}"}, None
    return {"size": path.stat().st_size}, None
