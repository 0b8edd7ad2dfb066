"""One `Settings` object: where Shipyard keeps its metadata and artifacts, and how it runs.

Values come from, highest priority first: environment variables (``SHIPYARD_<FIELD>``), a ``shipyard.toml``
(``$SHIPYARD_CONFIG``, else the nearest one at or above the working directory; keys at the top level or under
``[shipyard]``), then defaults. Like git, a command run in a sub-folder of a project finds the project's
store: the default home is the nearest ``.shipyard`` folder at or above the working directory (up to the
folder of the ``shipyard.toml`` found, if any), else a ``.shipyard`` beside that file, else ``./.shipyard``.
Relative paths in the TOML file are relative to the file; relative paths elsewhere to the working directory.
``Settings.sources`` says where each value came from (``shipyard config show`` prints it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

_ENV_PREFIX = "SHIPYARD_"
CONFIG_FILE = "shipyard.toml"
HOME_FOLDER = ".shipyard"


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Build with :meth:`Settings.load`; never mutate."""

    home: Path
    db_url: str
    artifact_root: str
    executor: str = "local"
    ray_address: str | None = None
    system_metrics: bool = False
    system_metrics_interval: float = 10.0
    flush_interval: float = 1.0
    # A running run's process beats every heartbeat_interval seconds; a RUNNING run whose last beat is
    # older than heartbeat_timeout shows as LOST (its process died) and `shipyard gc --stale` ends it.
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    # Team mode: the platform server (`shipyard server`) that keeps the records instead of db_url.
    tracking_uri: str | None = None
    # The API token team-mode clients send (SHIPYARD_TRACKING_TOKEN); never shown or logged.
    tracking_token: str | None = field(default=None, repr=False)
    # fsspec options for the artifact root's filesystem (endpoint, credentials …): secrets, so never in a
    # repr, a message or `shipyard config show` (see describe()).
    artifact_storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # The feature store's online store: a SQLite file (default: <home>/features/online.db) or a Redis URL
    # (redis://host:port/db; its password, if any, is masked wherever the setting is shown).
    online_store: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
    ) -> Settings:
        """Read settings from the environment, an optional ``shipyard.toml`` and the defaults."""
        env = os.environ if environ is None else environ
        cwd = Path.cwd() if cwd is None else Path(cwd)
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}

        ceilings = [Path(p) for p in env.get(_ENV_PREFIX + "CEILING_DIRECTORIES", "").split(os.pathsep) if p]
        found_toml, found_home = _discover(cwd, ceilings)
        if env.get(_ENV_PREFIX + "CONFIG"):
            toml_path: Path | None = Path(env[_ENV_PREFIX + "CONFIG"])
            if not toml_path.is_absolute():
                toml_path = cwd / toml_path
        else:
            toml_path = found_toml
        if toml_path is not None and toml_path.is_file():
            for key, value in _read_toml(toml_path).items():
                raw[key] = _relative_to(value, toml_path.parent) if key in _PATH_FIELDS else value
                sources[key] = str(toml_path)
        elif env.get(_ENV_PREFIX + "CONFIG"):
            raise InvalidInput(f"SHIPYARD_CONFIG points at {toml_path}, which is not a file")

        for name in _FIELD_NAMES:
            var = _ENV_PREFIX + name.upper()
            if var in env and env[var] != "":
                value = env[var]
                raw[name] = _relative_to(value, cwd) if name in _PATH_FIELDS else value
                sources[name] = f"env {var}"

        if "home" not in raw and found_home is not None:
            raw["home"] = str(found_home)
            sources["home"] = f"found {found_home} (the nearest {HOME_FOLDER} at or above {cwd})"
        elif "home" not in raw and toml_path is not None and toml_path == found_toml:
            # A project's shipyard.toml found from a sub-folder: the project's store, not the sub-folder's.
            raw["home"] = str(toml_path.parent / HOME_FOLDER)
            sources["home"] = f"default (beside {toml_path})"
        home = Path(raw.get("home") or cwd / HOME_FOLDER).expanduser()
        if not home.is_absolute():
            home = cwd / home
        sources.setdefault("home", "default")
        values: dict[str, Any] = {"home": home}
        values["db_url"] = raw.get("db_url") or f"sqlite:///{home / 'shipyard.db'}"
        # Team mode: artifacts go where the server keeps them (through it), unless configured otherwise.
        team_root = "shipyard-artifacts://artifacts" if raw.get("tracking_uri") else None
        values["artifact_root"] = raw.get("artifact_root") or team_root or str(home / "artifacts")
        if team_root and not raw.get("artifact_root"):
            sources["artifact_root"] = "default in team mode (kept by the server at tracking_uri)"
        for name in ("db_url", "artifact_root"):
            sources.setdefault(name, "default (under home)")
        if "artifact_storage_options" in raw:
            values["artifact_storage_options"] = _storage_options(raw["artifact_storage_options"], sources)
        for f in dataclasses.fields(cls):
            if f.name in values or f.name == "sources":
                continue
            if f.name in raw:
                values[f.name] = _coerce(f.name, raw[f.name], f.default)
            else:
                sources.setdefault(f.name, "default")
        interval = values.get("heartbeat_interval", cls.heartbeat_interval)
        timeout = values.get("heartbeat_timeout", cls.heartbeat_timeout)
        if timeout <= interval:
            raise InvalidInput(
                f"setting 'heartbeat_timeout' ({timeout} s) must be longer than 'heartbeat_interval' "
                f"({interval} s), or live runs would show as LOST"
            )
        return cls(**values, sources=sources)

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, value, source) rows for display."""
        rows = []
        for f in dataclasses.fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "****"
            elif f.name in ("db_url", "online_store") and value:
                value = mask_url(value)
            elif f.name == "artifact_storage_options":
                value = json.dumps(_masked(value)) if value else None
            rows.append((f.name, "" if value is None else str(value), self.sources.get(f.name, "default")))
        return rows

    def storage_options_for(self, uri: str) -> dict[str, Any]:
        """The fsspec options to open ``uri`` with: ``artifact_storage_options`` when ``uri`` is on the
        artifact root's filesystem (same protocol), else none (a local path, another store)."""
        if not self.artifact_storage_options or _protocol(uri) != _protocol(self.artifact_root):
            return {}
        return dict(self.artifact_storage_options)

    @property
    def store_description(self) -> str:
        """Where records live, for messages about what was (not) found: the metadata store and its home."""
        if self.tracking_uri:
            return f"the Shipyard server at {self.tracking_uri}"
        return f"{self.db_url}; home {self.home}: {self.sources.get('home', 'default')}"


_FIELD_NAMES = [f.name for f in dataclasses.fields(Settings) if f.name != "sources"]
SECRET_FIELDS = frozenset({"tracking_token"})


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****`` (for display and logs)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:****@{host}"


_PATH_FIELDS = frozenset({"home", "artifact_root", "online_store"})


def _discover(cwd: Path, ceilings: list[Path]) -> tuple[Path | None, Path | None]:
    """The nearest ``shipyard.toml`` at or above ``cwd``, and the nearest ``.shipyard`` folder at or above
    ``cwd`` but not above that file's folder (the project's boundary). Like ``GIT_CEILING_DIRECTORIES``,
    the search does not enter a ceiling directory (``$SHIPYARD_CEILING_DIRECTORIES``, ``os.pathsep``
    separated)."""
    toml: Path | None = None
    home: Path | None = None
    for directory in (cwd, *cwd.parents):
        if directory in ceilings and directory != cwd:
            break
        if home is None and (directory / HOME_FOLDER).is_dir():
            home = directory / HOME_FOLDER
        if (directory / CONFIG_FILE).is_file():
            toml = directory / CONFIG_FILE
            break
    return toml, home


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from exc
    if isinstance(data.get("shipyard"), dict):
        data = {**{k: v for k, v in data.items() if k != "shipyard"}, **data["shipyard"]}
    unknown = sorted(set(data) - set(_FIELD_NAMES))
    if unknown:
        raise InvalidInput(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_FIELD_NAMES)}"
        )
    return data


def _relative_to(value: Any, base: Path) -> Any:
    # A URL (s3://…, file://…) is left alone; a plain relative path is anchored to its source.
    if not isinstance(value, str) or "://" in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _protocol(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head else "file"


def _storage_options(value: Any, sources: Mapping[str, str]) -> dict[str, Any]:
    """The options as a dict: a TOML table as is, an environment variable's JSON object parsed.

    Errors name where the options came from and never their content: it holds credentials.
    """
    where = sources.get("artifact_storage_options", "setting 'artifact_storage_options'")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            # NOTE: the message gives a position, not the text; `from None`: the error object holds the text.
            raise InvalidInput(f"{where}: artifact_storage_options is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{where}: artifact_storage_options must be a JSON object or a TOML table, "
            f"got {type(value).__name__}"
        )
    return value


def _masked(value: Any) -> Any:
    """``value`` with every leaf replaced by '***', keeping the keys (which say what is set)."""
    if isinstance(value, Mapping):
        return {str(k): _masked(v) for k, v in value.items()}
    return "***"


def _coerce(name: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if isinstance(default, float):
            number = float(value)
            if number <= 0:
                raise ValueError(value)
            return number
    except ValueError as exc:
        kind = "a boolean" if isinstance(default, bool) else "a positive number"
        raise InvalidInput(f"setting {name!r} must be {kind}, got {value!r}") from exc
    return str(value)


_current: ContextVar[Settings | None] = ContextVar("shipyard_settings", default=None)


def get_settings() -> Settings:
    """The settings in force: those of an enclosing :func:`using_settings`, else read now from the
    environment and files."""
    return _current.get() or Settings.load()


@contextmanager
def using_settings(settings: Settings) -> Iterator[Settings]:
    """Make ``settings`` what :func:`get_settings` returns in this context (thread or task), e.g. inside a
    pipeline step, so code that takes no ``settings=`` uses the executor's store, not the environment's."""
    token = _current.set(settings)
    try:
        yield settings
    finally:
        _current.reset(token)
