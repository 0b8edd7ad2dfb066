"""``shipyard-artifacts://…``: artifacts a platform server keeps, as an fsspec filesystem.

In team mode the server records logical locations (``shipyard-artifacts://artifacts/<experiment>/…``) and
keeps the files in its own destination (a folder or an object store). A client resolves such a URI against
its tracking URI and streams files through the server's ``/api/v1/artifacts`` routes: downloads spool to a
temporary file on disk and uploads stream from one, in 1 MiB chunks, so a large artifact never sits in
memory; each upload carries its sha256, which the server checks. Everything else in Shipyard reads and writes
through :class:`~shipyard.store.artifacts.ArtifactStore`, unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

import fsspec
import httpx
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from shipyard.errors import InvalidInput, NotFound, ShipyardError

PROTOCOL = "shipyard-artifacts"
# The destination (and, as JSON, its options) for processes a server starts: see `served_environment`.
SERVED_ENV = "SHIPYARD_SERVED_ARTIFACTS"
_CHUNK = 1 << 20


class ServerArtifactFileSystem(AbstractFileSystem):
    """The artifacts of the server at ``server_url`` (default: the current settings' tracking URI)."""

    protocol = PROTOCOL
    root_marker = ""
    cachable = False  # the server comes from the settings in force when a store is opened

    def __init__(self, server_url: str | None = None, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if server_url is None:
            from shipyard.config import get_settings

            settings = get_settings()
            server_url, token = settings.tracking_uri, token or settings.tracking_token
        if not server_url:
            raise InvalidInput(
                f"{PROTOCOL}:/ artifacts live on a Shipyard server: set SHIPYARD_TRACKING_URI to reach them"
            )
        self.server_url = server_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=f"{self.server_url}/api/v1", headers=headers, timeout=300.0)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return path.removeprefix(f"{PROTOCOL}:").strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{name.strip('/')}"

    # -- listing -----------------------------------------------------------------------------------------
    def _entries(self, path: str, recursive: bool) -> list[dict[str, Any]]:
        response = self._http.get("/artifact-entries", params={"prefix": path, "recursive": recursive})
        if response.status_code == 404:
            raise FileNotFoundError(path)
        _raise_for(response, self.server_url)
        return [
            {"name": e["path"], "size": e["size"], "type": "directory" if e["is_dir"] else "file"}
            for e in response.json()
        ]

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        found = self._entries(self._strip_protocol(path), recursive=False)
        return found if detail else [e["name"] for e in found]

    def find(self, path: str, maxdepth: int | None = None, withdirs: bool = False, **kwargs: Any) -> Any:
        found = {e["name"]: e for e in self._entries(self._strip_protocol(path), recursive=True)}
        return found if kwargs.get("detail") else sorted(found)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        rel = self._strip_protocol(path)
        found = self._entries(rel, recursive=False)
        if len(found) == 1 and found[0]["name"] == rel and found[0]["type"] == "file":
            return found[0]
        return {"name": rel, "size": 0, "type": "directory"}

    # -- files -------------------------------------------------------------------------------------------
    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[bytes]:
        rel = self._strip_protocol(path)
        if mode == "rb":
            return self._download(rel)
        if mode == "wb":
            return _Upload(self, rel)
        raise InvalidInput(f"mode {mode!r} is not supported for {PROTOCOL}:/ artifacts")

    def _download(self, rel: str) -> IO[bytes]:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
        with self._http.stream("GET", f"/artifacts/{rel}") as response:
            if response.status_code == 404:
                spool.close()
                raise FileNotFoundError(rel)
            if response.status_code >= 400:
                response.read()
                spool.close()
                _raise_for(response, self.server_url)
            for chunk in response.iter_bytes(_CHUNK):
                spool.write(chunk)
        spool.seek(0)
        return spool

    def upload(self, rel: str, source: IO[bytes], sha256: str) -> None:
        def chunks() -> Iterator[bytes]:
            source.seek(0)
            while chunk := source.read(_CHUNK):
                yield chunk

        response = self._http.put(
            f"/artifacts/{rel}", content=chunks(), headers={"X-Shipyard-SHA256": sha256}
        )
        _raise_for(response, self.server_url)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, **kwargs: Any) -> None:
        self.upload_file(lpath, rpath)

    def upload_file(self, lpath: str, rpath: str) -> str:
        """Upload the local file ``lpath`` to ``rpath`` from the file itself: hashed in one read, sent in
        a second (the page cache serves it), never copied into a spool as a written stream must be (a file
        changed in between fails the server's sha256 check). Returns its sha256."""
        digest = hashlib.sha256()
        with open(lpath, "rb") as source:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
            sha256 = digest.hexdigest()
            self.upload(self._strip_protocol(rpath), source, sha256)
        return sha256

    def _rm(self, path: str) -> None:
        response = self._http.delete(f"/artifacts/{self._strip_protocol(path)}")
        if response.status_code == 404:
            raise FileNotFoundError(path)
        _raise_for(response, self.server_url)

    def rm(self, path: str, recursive: bool = False, maxdepth: int | None = None) -> None:
        self._rm(path)


class _Upload(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """Buffers a write (in memory up to 1 MiB, then on disk) and uploads it, streamed, on close."""

    def __init__(self, fs: ServerArtifactFileSystem, rel: str) -> None:
        super().__init__(max_size=_CHUNK, mode="w+b")
        self._fs, self._rel = fs, rel
        self._digest = hashlib.sha256()
        self._sent = False

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return super().write(data)

    def close(self) -> None:
        if not self._sent and not self.closed:
            self._sent = True
            self._fs.upload(self._rel, self, self._digest.hexdigest())
        super().close()

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is not None:  # a write that failed half-way is not uploaded
            self._sent = True
        self.close()  # (SpooledTemporaryFile's own __exit__ closes the buffer without calling close())


def _raise_for(response: httpx.Response, url: str) -> None:
    if response.status_code < 400:
        return
    from shipyard.store.http import _answer

    try:
        _answer(response, url)
    except NotFound as exc:
        raise FileNotFoundError(str(exc)) from None
    except ShipyardError:
        raise


class ServedArtifactFileSystem(DirFileSystem):
    """In the server itself: ``shipyard-artifacts:/x`` is ``x`` under the server's destination."""

    protocol = PROTOCOL
    cachable = False
    destination: str | None = None  # set by :func:`serve_from`
    destination_options: dict[str, Any] = {}  # its fsspec options (endpoint, credentials): serve_from

    def __init__(self, **kwargs: Any) -> None:
        destination, options = self.destination, self.destination_options
        if destination is None and os.environ.get(SERVED_ENV):
            # A pipeline driver the server started, or one of its step workers: told by the environment.
            destination = os.environ[SERVED_ENV]
            options = json.loads(os.environ.get(f"{SERVED_ENV}_OPTIONS") or "{}")
        if destination is None:
            raise InvalidInput(f"this process serves no {PROTOCOL}:/ destination")
        fs, path = fsspec.core.url_to_fs(destination, **options)
        if isinstance(fs, LocalFileSystem):
            # Writers through this filesystem (a pipeline driver's runs) expect folders to appear as needed,
            # as on an object store.
            fs = LocalFileSystem(auto_mkdir=True)
        super().__init__(path=path, fs=fs, **kwargs)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return path.removeprefix(f"{PROTOCOL}:").strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{name.strip('/')}"


def serve_from(destination: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Make this process (a platform server) resolve ``shipyard-artifacts:/`` URIs to ``destination``,
    opened with ``storage_options`` (an object store's endpoint and credentials)."""
    ServedArtifactFileSystem.destination = destination
    ServedArtifactFileSystem.destination_options = dict(storage_options or {})
    fsspec.register_implementation(PROTOCOL, ServedArtifactFileSystem, clobber=True)


def served_environment(destination: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Environment variables that make a child process (and the processes it starts with that environment)
    resolve ``shipyard-artifacts:/`` URIs to ``destination`` as the server does: for pipeline drivers,
    whose step workers read and write the server's files directly."""
    return {SERVED_ENV: destination, f"{SERVED_ENV}_OPTIONS": json.dumps(dict(storage_options or {}))}


def stop_serving() -> None:
    """Undo :func:`serve_from`: ``shipyard-artifacts:/`` URIs go through a server again (for a process that
    built a server app without being the server, e.g. to read its OpenAPI document)."""
    ServedArtifactFileSystem.destination = None
    ServedArtifactFileSystem.destination_options = {}
    fsspec.register_implementation(PROTOCOL, ServerArtifactFileSystem, clobber=True)
