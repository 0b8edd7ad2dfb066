"""Which registered model versions a run's artifacts back.

A version registered from a run references the package where the run logged it (``package_uri`` inside the
run's artifact folder) instead of copying it. Deleting such a run is refused unless forced, and garbage
collection never removes a folder that holds a registered version's package, so ``models:/…`` keeps loading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


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


def describe_all(versions: Sequence[BackedVersion]) -> str:
    return ", ".join(v.describe() for v in sorted(versions, key=lambda v: (v.model, v.version)))


def containing_roots(path: str, roots: Iterable[str]) -> list[str]:
    return [root for root in roots if path == root or path.startswith(root + "/")]


def canonical(uri: str) -> str:
    # Runs record plain local paths, the registry file:// URLs (as ArtifactStore spells them): compare alike.
    uri = uri.rstrip("/")
    if "://" in uri:
        return uri
    return "file://" + str(Path(uri).absolute())
