"""The artifact store: files under one root URL, over fsspec.

Every path a caller gives passes :func:`safe_relpath` before it touches storage, so no ``..``, absolute path
or URL can leave the root. On local filesystems the store also resolves symlinks and refuses any path whose
real location leaves the root, and writes are atomic: a hidden temp file in the same directory, fsynced, then
``os.replace``d into place. Other fsspec backends (``memory://``, ``s3://`` …) get the lexical check only, and
store a file when it is closed. An object store's own errors (no connection, a missing bucket, denied
credentials) come out as one :class:`~shipyard.errors.ArtifactStoreError` naming the root URL.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import io
import os
import pathlib
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem

from shipyard.errors import ArtifactStoreError, IntegrityError, InvalidInput, NotFound, ShipyardError

if TYPE_CHECKING:
    from shipyard.config import Settings

CHUNK_SIZE = 1 << 20
"""Bytes per read when streaming files in and out (1 MiB)."""

_MODES = frozenset({"rb", "wb", "r", "w"})
# The package extra that installs each object store's fsspec backend (pyproject.toml).
_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Artifacts a platform server keeps (team mode), reached through it: see shipyard.store.server_artifacts.
_SERVER_PROTOCOL = "shipyard-artifacts"
# A process the server started to run a pipeline (and its step workers) keeps the server's files itself.
_SERVED = "Served" if os.environ.get("SHIPYARD_SERVED_ARTIFACTS") else "Server"
fsspec.register_implementation(
    _SERVER_PROTOCOL, f"shipyard.store.server_artifacts.{_SERVED}ArtifactFileSystem", clobber=False
)

# Temp files of in-flight (or crashed) local writes. Hidden, and never listed or downloaded as artifacts.
_PARTIAL = re.compile(r"\..+\.[0-9a-f]{32}\.partial")


@dataclass(frozen=True)
class FileInfo:
    """One entry of the store.

    Attributes:
        path: '/'-separated path relative to the store root.
        size: bytes (0 for directories).
        sha256: hex digest, or None for directories and listings (listing does not read files).
        is_dir: True for a directory entry of a non-recursive listing.
    """

    path: str
    size: int
    sha256: str | None
    is_dir: bool = False


@functools.cache
def _known_protocols() -> frozenset[str]:
    return frozenset(p.lower() for p in fsspec.available_protocols()) | {"file", "local"}


def safe_relpath(path: str, *, allow_root: bool = False) -> str:
    """Normalise a user-given artifact path into a clean 'a/b/c' path relative to a store root.

    Empty and '.' components are dropped. ``allow_root`` lets '' (the root itself) through, for listings.

    Raises:
        InvalidInput: naming the path, if it is not a string, is absolute (``/x``), names a drive (``C:x``)
            or a URL (``s3://…``, ``file:x``, ``a::b`` chaining), has a '..' component, a NUL byte or a
            backslash, or is empty when a file path is needed.
    """
    if not isinstance(path, str):
        raise InvalidInput(f"artifact path must be a string, got {type(path).__name__}")
    if "\x00" in path:
        raise InvalidInput(f"artifact path {path!r} contains a NUL byte")
    if "\\" in path:
        raise InvalidInput(f"artifact path {path!r} contains a backslash; separate components with '/'")
    if path.startswith("/"):
        raise InvalidInput(f"artifact path {path!r} is absolute; give a path relative to the artifact root")
    if "::" in path:  # fsspec would read 'a::b' in a URL as a chain of filesystems
        raise InvalidInput(f"artifact path {path!r} contains '::'")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput(f"artifact path {path!r} contains a '..' component")
    if parts and (scheme := _SCHEME.match(parts[0])):
        # NOTE: 'run:1/x' stays legal; a drive letter, '…://' or a known fsspec protocol does not.
        name = scheme.group(1)
        if len(name) == 1 or path.startswith(f"{name}://") or name.lower() in _known_protocols():
            raise InvalidInput(
                f"artifact path {path!r} looks like a URL or drive; give a path relative to the artifact root"
            )
    if not parts and not allow_root:
        raise InvalidInput(f"artifact path {path!r} is empty; name a file under the artifact root")
    return "/".join(parts)


def _join(base: str, rel: str) -> str:
    """Join a clean relative path onto a filesystem path ('' rel gives the base; a '' base is the fs root)."""
    return f"{base.rstrip('/')}/{rel}" if rel else base


def _subpath(rel: str, name: str) -> str:
    """Join two store-relative paths, either of which may be '' (the root)."""
    return f"{rel}/{name}" if rel and name else rel or name


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _check_sha256(expected: str | None) -> str | None:
    if expected is None:
        return None
    digest = expected.lower()
    if not _SHA256.fullmatch(digest):
        raise InvalidInput(f"expected_sha256 {expected!r} is not a 64-character hex sha256 digest")
    return digest


def _walk_local(top: str, boundary: str, where: str, *, skip_partial: bool) -> builtins.list[tuple[str, str]]:
    """Regular files under the real directory ``top``, as (real path, '/'-path relative to top), sorted.

    Symlinks are followed only where they resolve inside the real path ``boundary``.

    Raises:
        InvalidInput: for a symlink that leaves ``boundary`` (the message says it "escapes" ``where``), a
            symlink loop, or an entry that is neither a file nor a directory (broken link, socket, FIFO …).
    """
    found: builtins.list[tuple[str, str]] = []

    def visit(directory: str, prefix: str, ancestors: frozenset[str]) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if skip_partial and _PARTIAL.fullmatch(entry.name):
                continue
            rel = prefix + entry.name
            real = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            if not _within(real, boundary):
                raise InvalidInput(f"{entry.path!r} is a symlink that escapes {where}")
            if entry.is_dir():
                if real in ancestors:
                    raise InvalidInput(f"{entry.path!r} is a symlink loop")
                visit(real, rel + "/", ancestors | {real})
            elif entry.is_file():
                found.append((real, rel))
            else:
                raise InvalidInput(f"{entry.path!r} is not a regular file or directory (broken symlink?)")

    visit(top, "", frozenset({top}))
    return found


class _AtomicLocalFile(io.BufferedIOBase):
    """A binary writer that lands under its final name only on a clean close.

    Bytes go to a hidden temp file beside ``final``; ``close()`` fsyncs it and ``os.replace``s it into place,
    so readers see the old file or the whole new one. Leaving a ``with`` block by an exception discards it.
    """

    def __init__(self, final: str) -> None:
        super().__init__()
        parent, name = os.path.split(final)
        self._final = final
        self._tmp = os.path.join(parent, f".{name}.{uuid.uuid4().hex}.partial")
        self._file = builtins.open(self._tmp, "xb")  # noqa: SIM115 - closed by close() or discard()

    @property
    def name(self) -> str:
        return self._final

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._final)
        except BaseException:
            self.discard()
            raise
        super().close()

    def discard(self) -> None:
        """Close without publishing: the temp file is removed and the final name left as it was."""
        if self.closed:
            return
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
        super().close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


class _AtomicLocalText(io.TextIOWrapper):
    """Text mode over :class:`_AtomicLocalFile`, keeping its discard-on-exception."""

    def __init__(self, raw: _AtomicLocalFile) -> None:
        super().__init__(raw, encoding="utf-8")
        self._raw = raw

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._raw.discard()  # the wrapper then reads as closed, so nothing is flushed later


class ArtifactStore:
    """Files under one root URL: a local folder or any fsspec URL (``file://``, ``memory://``, ``s3://`` …).

    Contract: nothing outside the root is ever read or written. Paths are checked lexically by
    :func:`safe_relpath`; on local filesystems symlinks are resolved too, and one that leads out of the root
    is refused ("escapes the artifact root"). Local writes are atomic. The root is created on first write.

    Thread safety: the store holds no mutable state, so threads may use one store for distinct paths at once;
    concurrent writes to the same local path are last-writer-wins, each whole.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Open a store; nothing is touched until the first read or write.

        Args:
            root: a local path (made absolute) or an fsspec URL.
            storage_options: passed to the fsspec filesystem (credentials, endpoint …).

        Raises:
            InvalidInput: for an empty root or an unknown protocol.
            ArtifactStoreError: a known protocol whose fsspec backend is not installed (the extra named).
        """
        url = os.fspath(root)
        if not url:
            raise InvalidInput("artifact root is empty")
        # An unknown protocol is a ValueError; a known one whose package is missing an ImportError.
        try:
            fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except ValueError as exc:
            raise InvalidInput(f"cannot open artifact root {url!r}: {exc}") from exc
        except ImportError as exc:
            extra = _EXTRAS.get(url.partition("://")[0].lower())
            hint = f"; pip install 'shipyard[{extra}]'" if extra else ""
            raise ArtifactStoreError(f"cannot open artifact root {url!r}: {exc}{hint}") from exc
        self._fs: fsspec.AbstractFileSystem = fs
        self._path: str = path
        # A child store keeps its parent's boundary, so a symlinked subfolder cannot widen what it may touch.
        self._boundary: str = path
        self._local: bool = isinstance(fs, LocalFileSystem)
        self._bucket_seen = False

    @classmethod
    def configured(cls, settings: Settings, root: str | None = None) -> ArtifactStore:
        """A store on ``root`` (default: the artifact root) with the settings' storage options when ``root``
        is on the artifact root's filesystem: how the package opens every store it keeps artifacts in."""
        url = settings.artifact_root if root is None else root
        if settings.tracking_uri and url.lower().startswith(f"{_SERVER_PROTOCOL}:"):
            # Artifacts a platform server keeps: through the server these settings name (not whichever
            # settings are current in this process), e.g. in a pipeline step's worker.
            options = {"server_url": settings.tracking_uri, "token": settings.tracking_token}
            return cls(url, storage_options=options)
        return cls(url, storage_options=settings.storage_options_for(url))

    @property
    def root(self) -> str:
        """Canonical URL of the root, e.g. ``file:///abs/path`` or ``s3://bucket/prefix``."""
        url: str = self._fs.unstrip_protocol(self._path)
        return url

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def child(self, subpath: str) -> ArtifactStore:
        """A store confined to ``root/subpath`` (still confined to this store's root, too)."""
        rel = safe_relpath(subpath, allow_root=True)
        store = ArtifactStore.__new__(ArtifactStore)
        store._fs = self._fs
        store._path = _join(self._path, rel)
        store._boundary = self._boundary
        store._local = self._local
        store._bucket_seen = self._bucket_seen
        return store

    def uri(self, path: str = "") -> str:
        """Full URL of ``path`` under the root ('' for the root itself)."""
        url: str = self._fs.unstrip_protocol(_join(self._path, safe_relpath(path, allow_root=True)))
        return url

    # -- writing ---------------------------------------------------------------------------------------------

    def put_file(self, local_path: str | os.PathLike[str], dest: str) -> FileInfo:
        """Copy a local file to ``dest``, streaming in 1 MiB chunks and hashing as it copies.

        Raises:
            NotFound: ``local_path`` does not exist.
            InvalidInput: a bad ``dest``, or ``local_path`` is a directory.
        """
        src = os.fspath(local_path)
        if not os.path.exists(src):
            raise NotFound(f"local file {src!r} does not exist")
        if os.path.isdir(src):
            raise InvalidInput(f"{src!r} is a directory; use put_dir")
        from shipyard.store.server_artifacts import ServerArtifactFileSystem

        if isinstance(self._fs, ServerArtifactFileSystem):
            # Through a platform server: sent from the file itself, not through a spool (see upload_file).
            rel = safe_relpath(dest)
            with self._remote_errors("write", rel):
                self._check_parents(rel)
                size = os.path.getsize(src)
                sha256 = self._fs.upload_file(src, _join(self._path, rel))
            return FileInfo(path=rel, size=size, sha256=sha256)
        with builtins.open(src, "rb") as f:
            return self._write(dest, iter(lambda: f.read(CHUNK_SIZE), b""))

    def put_bytes(self, data: bytes, dest: str) -> FileInfo:
        """Write ``data`` to ``dest``, replacing any file there."""
        return self._write(dest, [data])

    def put_dir(self, local_dir: str | os.PathLike[str], dest_prefix: str = "") -> builtins.list[FileInfo]:
        """Copy every file under ``local_dir`` to ``dest_prefix/<relative path>``; empty dirs are skipped.

        Symlinks are followed when they stay inside ``local_dir``. Everything is checked before the first byte
        is written, so a refused directory uploads nothing.

        Returns:
            The stored files, sorted by path.

        Raises:
            NotFound: ``local_dir`` does not exist.
            InvalidInput: ``local_dir`` is not a directory, a symlink in it resolves outside it (named in the
                message), or a file name is not a valid artifact path.
        """
        prefix = safe_relpath(dest_prefix, allow_root=True)
        src = os.path.abspath(os.fspath(local_dir))
        if not os.path.isdir(src):
            if not os.path.exists(src):
                raise NotFound(f"local directory {src!r} does not exist")
            raise InvalidInput(f"{src!r} is not a directory; use put_file")
        src_real = os.path.realpath(src)
        plan = [
            (real, safe_relpath(_subpath(prefix, rel)))
            for real, rel in _walk_local(src_real, src_real, src, skip_partial=False)
        ]
        return sorted((self.put_file(real, dest) for real, dest in plan), key=lambda info: info.path)

    def _write(self, dest: str, chunks: Iterable[bytes]) -> FileInfo:
        rel = safe_relpath(dest)
        digest = hashlib.sha256()
        size = 0
        with self._remote_errors("write", rel), self._open_binary_writer(rel) as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        return FileInfo(path=rel, size=size, sha256=digest.hexdigest())

    def _open_binary_writer(self, rel: str) -> IO[bytes]:
        if self._local:
            return cast(IO[bytes], self._local_writer(rel))  # a BufferedIOBase, used as IO[bytes]
        return cast(IO[bytes], self._open_remote(rel, "wb"))

    def _local_writer(self, rel: str) -> _AtomicLocalFile:
        real = self._confine(rel)
        if os.path.islink(_join(self._path, rel)):
            raise InvalidInput(f"artifact path {rel!r} is a symlink; refusing to write through it")
        if os.path.isdir(real):
            raise InvalidInput(f"artifact path {rel!r} is a directory under {self.root}")
        try:
            os.makedirs(os.path.dirname(real), exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidInput(f"cannot write {rel!r} under {self.root}: a parent of it is a file") from exc
        return _AtomicLocalFile(real)

    # -- reading ---------------------------------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb") -> IO[Any]:
        """Open a file under the root: 'rb', 'r' (UTF-8), or 'wb', 'w' (UTF-8; atomic on local filesystems).

        Raises:
            InvalidInput: another mode, a bad path, or a directory.
            NotFound: reading a file that does not exist.
        """
        if mode not in _MODES:
            raise InvalidInput(f"mode {mode!r} is not supported; use one of {', '.join(sorted(_MODES))}")
        rel = safe_relpath(path)
        if not self._local:
            with self._remote_errors("open", rel):
                return self._open_remote(rel, mode)
        if mode in ("wb", "w"):
            writer = self._local_writer(rel)
            return cast(IO[bytes], writer) if mode == "wb" else _AtomicLocalText(writer)
        try:
            return builtins.open(self._confine(rel), mode, encoding=None if mode == "rb" else "utf-8")
        except IsADirectoryError as exc:
            raise InvalidInput(f"artifact {rel!r} under {self.root} is a directory, not a file") from exc
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"no artifact {rel!r} under {self.root}") from exc

    def _check_parents(self, rel: str) -> None:
        # An object store would keep both keys 'f' and 'f/g'; refuse it as a filesystem does, so the tree
        # lists the same on every backend.
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self._fs.isfile(_join(self._path, "/".join(parts[:depth]))):
                raise InvalidInput(f"cannot write {rel!r} under {self.root}: a parent of it is a file")

    def _open_remote(self, rel: str, mode: str) -> IO[Any]:
        target = _join(self._path, rel)
        text = {} if "b" in mode else {"encoding": "utf-8"}
        if mode in ("rb", "r") and self._fs.isdir(target):
            # NOTE: object stores open a "directory" (a key prefix) lazily, and read it as empty.
            raise InvalidInput(f"artifact {rel!r} under {self.root} is a directory, not a file")
        if mode in ("wb", "w"):
            self._check_parents(rel)
        try:
            opened: IO[Any] = self._fs.open(target, mode, **text)
        except IsADirectoryError as exc:
            raise InvalidInput(f"artifact {rel!r} under {self.root} is a directory, not a file") from exc
        except (FileNotFoundError, FileExistsError, NotADirectoryError) as exc:
            if mode in ("wb", "w"):
                raise InvalidInput(f"cannot write {rel!r} under {self.root}: {exc!r}") from exc
            if self._fs.isdir(target):  # some backends report a directory as missing
                raise InvalidInput(f"artifact {rel!r} under {self.root} is a directory, not a file") from exc
            self._check_bucket()
            raise NotFound(f"no artifact {rel!r} under {self.root}") from exc
        return opened

    def read_bytes(self, path: str, expected_sha256: str | None = None) -> bytes:
        """The content of a file, verified against ``expected_sha256`` when one is given.

        Raises:
            IntegrityError: the content does not match ``expected_sha256`` (path and both digests named).
        """
        expected = _check_sha256(expected_sha256)
        with self._remote_errors("read", path), self.open(path, "rb") as f:
            data: bytes = f.read()
        if expected is not None:
            self._verify(safe_relpath(path), expected, hashlib.sha256(data).hexdigest())
        return data

    def get(
        self, path: str, local_dest: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> pathlib.Path:
        """Download a file, or every file of a directory, to ``local_dest``.

        A file goes to ``local_dest`` itself, or into it when it is an existing directory. A directory's files
        go under ``local_dest`` at their relative paths. Each file lands atomically, and with
        ``expected_sha256`` (files only) a mismatching download never lands at all.

        Returns:
            The local file or directory written.

        Raises:
            NotFound: nothing at ``path``.
            InvalidInput: a bad path, or ``expected_sha256`` given for a directory.
            IntegrityError: the downloaded content does not match ``expected_sha256``.
        """
        rel = safe_relpath(path, allow_root=True)
        expected = _check_sha256(expected_sha256)
        dest = pathlib.Path(local_dest)
        if self._isdir(rel):
            if expected is not None:
                raise InvalidInput(f"expected_sha256 applies to one file; {rel!r} is a directory")
            # Listed (and so checked for escaping symlinks) before anything is written locally.
            files = [info.path for info in self.list(rel, recursive=True)]
            for file_rel in files:
                # A crafted remote key must not climb out of local_dest.
                sub = safe_relpath(file_rel[len(rel) :].lstrip("/"))
                self._download(file_rel, dest.joinpath(*sub.split("/")), None)
            dest.mkdir(parents=True, exist_ok=True)
            return dest
        if not rel:
            raise NotFound(f"artifact root {self.root} does not exist")
        if dest.is_dir():
            dest = dest / rel.rsplit("/", 1)[-1]
        self._download(rel, dest, expected)
        return dest

    def _download(self, rel: str, dest: pathlib.Path, expected: str | None) -> None:
        digest = hashlib.sha256()
        with self._remote_errors("download", rel), self.open(rel, "rb") as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with _AtomicLocalFile(os.fspath(dest)) as out:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                if expected is not None:  # raising inside the block discards the download
                    self._verify(rel, expected, digest.hexdigest())

    def _verify(self, rel: str, expected: str, actual: str) -> None:
        if actual != expected:
            raise IntegrityError(
                f"artifact {rel!r} under {self.root} is corrupt: expected sha256 {expected}, got {actual}"
            )

    # -- browsing and deleting -------------------------------------------------------------------------------

    def list(self, prefix: str = "", recursive: bool = False) -> builtins.list[FileInfo]:
        """Entries under ``prefix``, sorted by path; hashes are not computed (``sha256`` is None).

        Non-recursive: the immediate children, directories marked ``is_dir``. Recursive: every file, no
        directories. A prefix naming a file lists that file.

        Raises:
            NotFound: ``prefix`` does not exist (a missing root lists as empty).
            InvalidInput: a bad prefix, or (local) a symlink under it that escapes the artifact root.
        """
        rel = safe_relpath(prefix, allow_root=True)
        if self._local:
            entries = self._list_local(rel, recursive)
        else:
            with self._remote_errors("list", rel):
                entries = self._list_remote(rel, recursive)
        return sorted(entries, key=lambda info: info.path)

    def _list_local(self, rel: str, recursive: bool) -> builtins.list[FileInfo]:
        real = self._confine(rel)
        if not os.path.exists(real):
            if not rel:
                return []
            raise NotFound(f"nothing at {rel!r} under {self.root}")
        if not os.path.isdir(real):
            return [FileInfo(path=rel, size=os.path.getsize(real), sha256=None)]
        where = f"the artifact root {self.root}"
        boundary = os.path.realpath(self._path)
        if recursive:
            return [
                FileInfo(path=_subpath(rel, sub), size=os.path.getsize(file_real), sha256=None)
                for file_real, sub in _walk_local(real, boundary, where, skip_partial=True)
            ]
        infos = []
        with os.scandir(real) as it:
            for entry in it:
                if _PARTIAL.fullmatch(entry.name):
                    continue
                if entry.is_symlink() and not _within(os.path.realpath(entry.path), boundary):
                    raise InvalidInput(f"{entry.path!r} is a symlink that escapes {where}")
                child = _subpath(rel, entry.name)
                if entry.is_dir():
                    infos.append(FileInfo(path=child, size=0, sha256=None, is_dir=True))
                else:  # a broken symlink lists with size 0 rather than failing the whole listing
                    size = entry.stat().st_size if entry.is_file() else 0
                    infos.append(FileInfo(path=child, size=size, sha256=None))
        return infos

    def _list_remote(self, rel: str, recursive: bool) -> builtins.list[FileInfo]:
        target = _join(self._path, rel)
        try:
            info = self._fs.info(target)
        except FileNotFoundError as exc:
            self._check_bucket()
            if not rel:
                return []
            raise NotFound(f"nothing at {rel!r} under {self.root}") from exc
        if info["type"] != "directory":
            return [FileInfo(path=rel, size=int(info.get("size") or 0), sha256=None)]
        if recursive:
            listed = builtins.list(self._fs.find(target, detail=True).values())
        else:
            listed = self._fs.ls(target, detail=True)
        base = self._path.rstrip("/") + "/"
        infos = []
        for item in listed:
            name = item["name"].rstrip("/")
            if not name.startswith(base) or name == _join(self._path, rel):
                continue  # the prefix itself, as some object stores list a directory marker
            is_dir = item["type"] == "directory"
            size = 0 if is_dir else int(item.get("size") or 0)
            infos.append(FileInfo(path=name[len(base) :], size=size, sha256=None, is_dir=is_dir))
        return infos

    def exists(self, path: str) -> bool:
        """Whether a file or directory exists at ``path`` ('' for the root)."""
        rel = safe_relpath(path, allow_root=True)
        if self._local:
            return os.path.exists(self._confine(rel))
        with self._remote_errors("look up", rel):
            found = bool(self._fs.exists(_join(self._path, rel)))
            if not found:
                self._check_bucket()
        return found

    def delete(self, path: str = "") -> None:
        """Delete a file or a directory tree; '' deletes the whole root (a missing root is a no-op).

        On local filesystems a symlink is removed itself, never followed.

        Raises:
            NotFound: nothing at a non-empty ``path``.
        """
        rel = safe_relpath(path, allow_root=True)
        if not self._local:
            target = _join(self._path, rel)
            if not self.exists(rel):
                if rel:
                    raise NotFound(f"nothing at {rel!r} under {self.root}")
                return
            try:
                with self._remote_errors("delete", rel):
                    self._fs.rm(target, recursive=True)
            except FileNotFoundError as exc:
                raise NotFound(f"nothing at {rel!r} under {self.root}") from exc
            return
        if not rel:
            real_root = self._confine("")
            if os.path.isdir(real_root):
                shutil.rmtree(real_root)
            elif os.path.lexists(real_root):
                os.remove(real_root)
            return
        parent, name = rel.rpartition("/")[::2]
        target = os.path.join(self._confine(parent), name)
        if os.path.islink(target) or os.path.isfile(target):
            os.remove(target)
        elif os.path.isdir(target):
            shutil.rmtree(target)  # removes symlinks inside the tree without following them
        else:
            raise NotFound(f"nothing at {rel!r} under {self.root}")

    # -- confinement -----------------------------------------------------------------------------------------

    def _confine(self, rel: str) -> str:
        """The real local path of ``rel``, refused if symlinks take it outside this store's root.

        NOTE: this checks the tree as it is now; a symlink swapped in between the check and the I/O by someone
        who can already write inside the root is outside what the store defends against.
        """
        real_root = os.path.realpath(self._path)
        real = os.path.realpath(_join(self._path, rel))
        if not (_within(real, real_root) and _within(real_root, os.path.realpath(self._boundary))):
            raise InvalidInput(
                f"artifact path {rel!r} escapes the artifact root {self.root} (resolves to {real})"
            )
        return real

    def _isdir(self, rel: str) -> bool:
        if self._local:
            return os.path.isdir(self._confine(rel))
        with self._remote_errors("look up", rel):
            return bool(self._fs.isdir(_join(self._path, rel)))

    # -- object-store errors ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _remote_errors(self, doing: str, rel: str) -> Iterator[None]:
        """Translate a remote filesystem's own errors at the edge into one :class:`ArtifactStoreError`.

        NOTE: the message names the root URL and the backend's error, never the storage options: they may
        hold credentials, and botocore's messages carry the endpoint URL, not the keys.
        """
        if self._local:
            yield
            return
        try:
            yield
        except ShipyardError:
            raise
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            raise
        except FileNotFoundError:
            # A write to a missing bucket fails on close with a bare "not found"; a read's is already handled.
            self._check_bucket()
            raise
        except Exception as exc:  # connection refused, timeouts, access denied …: the backend's own types
            what = f"{rel!r} under " if rel else ""
            raise ArtifactStoreError(
                f"cannot {doing} {what}the artifact root {self.root}: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_bucket(self) -> None:
        """On an object store (one with buckets), refuse a missing bucket: it would list as empty and read
        as "no such artifact" rather than point at the configuration."""
        if self._local or self._bucket_seen or not hasattr(self._fs, "split_path"):
            return
        bucket = self._fs.split_path(self._boundary)[0]
        try:
            found = bool(self._fs.exists(bucket))
        except Exception as exc:  # the probe's own connection errors
            raise ArtifactStoreError(
                f"cannot reach the artifact root {self.root}: {type(exc).__name__}: {exc}"
            ) from exc
        if not found:
            raise ArtifactStoreError(
                f"the artifact root {self.root} cannot be used: bucket {bucket!r} does not exist or these "
                "credentials cannot see it (check artifact_root and artifact_storage_options)"
            )
        self._bucket_seen = True


__all__ = ["CHUNK_SIZE", "ArtifactStore", "FileInfo", "safe_relpath"]
