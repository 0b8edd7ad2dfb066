"""Which registered model versions a run's artifacts back.

A version registered from a run references the package where the run logged it (``package_uri`` inside the
run's artifact folder) instead of copying it. Deleting such a run is refused unless forced, and garbage
collection never removes a folder that holds a registered version's package, so ``models:/…`` keeps loading.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.store.schema import model_aliases, model_versions, registered_models


@dataclass(frozen=True)
class BackedVersion:
    """A registered version whose package lives under some run's artifacts."""

    model: str
    version: int
    stage: str
    aliases: tuple[str, ...]
    package_uri: str

    def describe(self) -> str:
        """``churn/3 (Production, @champion)``."""
        marks = ([self.stage] if self.stage not in ("", "None") else []) + [f"@{a}" for a in self.aliases]
        return f"{self.model}/{self.version}" + (f" ({', '.join(marks)})" if marks else "")


def versions_under(conn: Connection, roots: Iterable[str]) -> dict[str, list[BackedVersion]]:
    """The versions whose package lies in (or is) one of ``roots`` (artifact folder URIs or local paths), by
    root as given (without a trailing slash)."""
    wanted = {_canonical(root): root.rstrip("/") for root in roots}
    if not wanted:
        return {}
    aliases: dict[int, list[str]] = defaultdict(list)
    for pk, alias in conn.execute(sa.select(model_aliases.c.version_pk, model_aliases.c.alias)):
        aliases[pk].append(alias)
    query = sa.select(
        model_versions.c.id,
        registered_models.c.name,
        model_versions.c.version,
        model_versions.c.stage,
        model_versions.c.package_uri,
    ).join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
    found: dict[str, list[BackedVersion]] = defaultdict(list)
    # NOTE: a registry holds thousands of versions at most; matching prefixes here keeps the SQL portable.
    for pk, name, version, stage, package_uri in conn.execute(query):
        for root in _containing_roots(_canonical(package_uri), wanted):
            found[wanted[root]].append(
                BackedVersion(name, version, stage, tuple(sorted(aliases[pk])), package_uri)
            )
    return dict(found)


def describe_all(versions: Sequence[BackedVersion]) -> str:
    return ", ".join(v.describe() for v in sorted(versions, key=lambda v: (v.model, v.version)))


def _containing_roots(path: str, roots: Iterable[str]) -> list[str]:
    return [root for root in roots if path == root or path.startswith(root + "/")]


def _canonical(uri: str) -> str:
    # Runs record plain local paths, the registry file:// URLs (as ArtifactStore spells them): compare alike.
    uri = uri.rstrip("/")
    if "://" in uri:
        return uri
    return "file://" + str(Path(uri).absolute())
