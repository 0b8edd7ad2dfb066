"""Each package's __all__ is complete and sorted, and `import shipyard` stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "shipyard",
    "shipyard.data",
    "shipyard.audit",
    "shipyard.autologging",
    "shipyard.batch",
    "shipyard.datasets",
    "shipyard.errors",
    "shipyard.evaluation",
    "shipyard.explain",
    "shipyard.features",
    "shipyard.importers.mlflow",
    "shipyard.lineage",
    "shipyard.models",
    "shipyard.monitoring",
    "shipyard.notebooks",
    "shipyard.pipelines",
    "shipyard.pipelines.executors",
    "shipyard.registry",
    "shipyard.registry.flavors",
    "shipyard.releases",
    "shipyard.serving",
    "shipyard.store",
    "shipyard.tracking",
    "shipyard.training",
    "shipyard.tuning",
    "shipyard.ui",
    "shipyard.workers",
]


def _isort_style(name: str) -> tuple[int, str]:
    # CONSTANTS, then Classes, then functions — each alphabetical (ruff's RUF022 order).
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_style), "sort __all__ (ruff RUF022 order)"
    public = {n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, type(sys))}
    public -= {"annotations"}
    if not hasattr(module, "__path__"):  # a plain module: its own definitions are its surface
        public = {n for n in public if getattr(vars(module)[n], "__module__", None) == name}
    assert public <= set(exported) | {"__version__"}, sorted(public - set(exported))
    for item in exported:
        assert hasattr(module, item)


def test_import_does_not_pull_heavy_dependencies() -> None:
    heavy = ("pandas", "sklearn", "alembic", "pyarrow", "typer", "optuna")
    code = f"import sys, shipyard; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
