"""Where batch inference reads and writes: Parquet or CSV files at any fsspec URL, a folder of them, or a
dataset version (``data:name@3``), read in record batches of bounded size and written as they come."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.config import Settings
from shipyard.errors import AlreadyExists, InvalidInput, NotFound

Format = Literal["parquet", "csv"]
_SUFFIXES: dict[str, Format] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_CSV_BLOCK = 8 << 20  # bytes a CSV reader parses at once: its batches are about this big


def format_of(path: str) -> Format | None:
    """The format a file's suffix names (``.parquet``, ``.pq``, ``.csv``), or None."""
    return _SUFFIXES.get(os.path.splitext(path.rstrip("/"))[1].lower())


def _sniffed(path: str, fs: Any) -> Format | None:
    """A file named without a suffix (a pipeline step's artifact): Parquet when its magic bytes say so."""
    if format_of(path) is not None:
        return format_of(path)
    with fs.open(path, "rb") as handle:
        return "parquet" if handle.read(4) == b"PAR1" else None


@dataclass(frozen=True)
class Source:
    """The input of a batch job: its files in order, how lineage names it, and its sha256 when known
    (a dataset version's; files read from a URL are not hashed, which would read them twice)."""

    files: tuple[str, ...]
    uri: str
    sha256: str = ""


def resolve_source(location: str, settings: Settings) -> Source:
    """The files ``location`` names: a file, a folder of Parquet/CSV files (sorted by name), or a dataset
    version ``data:name@v`` (read from its verified local copy).

    Raises:
        NotFound: nothing at ``location``, or no such dataset version.
        InvalidInput: a file that is neither Parquet nor CSV, or a folder holding none.
    """
    if location.startswith("data:"):
        from shipyard.datasets import DatasetClient
        from shipyard.tracking import get_client

        client = DatasetClient(get_client(settings))
        version = client.version(location)
        local = str(client.local_path(version))
        files = _files_at(local, location)
        return Source(files, version.uri, version.sha256)
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        raise NotFound(f"batch input {location!r}: nothing there")
    files = _files_at(location, location)
    uri = location if "://" in location else "file://" + os.path.abspath(location)
    return Source(files, uri)


def _files_at(location: str, named: str) -> tuple[str, ...]:
    fs, path = fsspec.core.url_to_fs(location)
    local = _is_local(fs)
    protocol = fs.protocol[0] if isinstance(fs.protocol, tuple | list) else fs.protocol
    if fs.isdir(path):
        found = sorted(p for p in fs.find(path) if format_of(p) is not None)
        if not found:
            raise InvalidInput(f"batch input {named!r} is a folder with no .parquet or .csv file in it")
        formats = {format_of(p) for p in found}
        if len(formats) > 1:
            raise InvalidInput(f"batch input {named!r} mixes Parquet and CSV files; keep one format a folder")
        return tuple(p if local else f"{protocol}://{p}" for p in found)
    if _sniffed(path, fs) is None:
        raise InvalidInput(f"batch input {named!r} is neither .parquet nor .csv")
    return (location,)


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    return "file" in protocols


def read_schema(path: str) -> pa.Schema:
    """A file's columns, from the Parquet footer or the CSV header (no rows read)."""
    with fsspec.open(path, "rb") as handle:
        if format_of(path) != "csv":
            return pq.ParquetFile(handle).schema_arrow
        return pacsv.open_csv(handle, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK)).schema


def row_groups(path: str) -> list[int]:
    """The row count of each row group of a Parquet file (a CSV file is one unit of unknown size: [-1])."""
    if format_of(path) == "csv":
        return [-1]
    with fsspec.open(path, "rb") as handle:
        meta = pq.ParquetFile(handle).metadata
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def batches(
    path: str, columns: Sequence[str] | None, batch_rows: int, groups: Sequence[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """``columns`` (None: all) of the file at ``path`` in batches of at most ``batch_rows`` rows (Parquet:
    of the row groups ``groups`` only, default all); memory stays near one batch whatever the file's size."""
    with fsspec.open(path, "rb") as handle:
        if format_of(path) != "csv":  # .parquet, or a step's artifact sniffed as Parquet
            yield from pq.ParquetFile(handle).iter_batches(
                batch_size=batch_rows, row_groups=groups, columns=columns, use_threads=False
            )
            return
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False),
            convert_options=pacsv.ConvertOptions(include_columns=list(columns or ())),
        )
        for batch in reader:
            for start in range(0, batch.num_rows, batch_rows):
                yield batch.slice(start, batch_rows)


class _Hashing:
    """A write-only file that hashes what passes through it (the output's sha256, for lineage)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        return self.raw.write(view)  # type: ignore[no-any-return]

    def tell(self) -> int:
        return self.raw.tell()  # type: ignore[no-any-return]

    def flush(self) -> None:
        self.raw.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class Sink:
    """The output file, written batch by batch to a temporary name and moved into place when complete (a
    local path; an object store's upload appears only when complete anyway). Its sha256 is known at the end.

    Raises:
        AlreadyExists: something is at ``location`` and ``overwrite`` is False.
        InvalidInput: a name that is neither ``.parquet`` nor ``.csv``.
    """

    def __init__(self, location: str, *, overwrite: bool = False, fmt: Format | None = None) -> None:
        fmt = fmt or format_of(location)
        if fmt is None:
            raise InvalidInput(f"batch output {location!r} must end in .parquet or .csv")
        self.format: Format = fmt
        self.location = location
        self.fs, self.path = fsspec.core.url_to_fs(location)
        if self.fs.exists(self.path) and not overwrite:
            raise AlreadyExists(
                f"batch output {location!r} exists; pass --overwrite (overwrite=True) to replace it"
            )
        self.local = "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple | list) else [self.fs.protocol]
        )
        if self.local:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._writing = f"{self.path}.{uuid.uuid4().hex[:8]}.tmp" if self.local else self.path
        self._raw: Any = None
        self._file: _Hashing | None = None
        self._writer: Any = None
        self.rows = 0

    @property
    def uri(self) -> str:
        """How lineage names the output."""
        return self.location if "://" in self.location else "file://" + os.path.abspath(self.path)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if self._writer is None:
            self._raw = self.fs.open(self._writing, "wb")
            self._file = _Hashing(self._raw)
            if self.format == "parquet":
                self._writer = pq.ParquetWriter(self._file, batch.schema)
            else:
                self._writer = pacsv.CSVWriter(self._file, batch.schema)
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        self._writer.write_table(batch)
        self.rows += batch.num_rows

    def commit(self, schema: pa.Schema) -> str:
        """Finish the file (an empty one with ``schema`` when no row came) and return its sha256."""
        if self._writer is None:
            self.write(schema.empty_table())
        self._writer.close()
        self._raw.close()
        if self.local:
            os.replace(self._writing, self.path)
        assert self._file is not None
        return self._file.sha256.hexdigest()

    def abort(self) -> None:
        """Drop what was written (a failed job leaves no partial output behind)."""
        try:
            if self._writer is not None:
                self._writer.close()
            if self._raw is not None:
                self._raw.close()
        finally:
            if self._raw is not None and self.fs.exists(self._writing):
                self.fs.rm(self._writing)
