"""The project's own documents: links that resolve in a clone, packaging metadata that installs cleanly."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "examples" / "README.md", ROOT / "docs" / "architecture.md"]
# Markdown links and bare back-quoted paths that point at files, e.g. [text](docs/x.md) or `../shared/X.md`.
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
_RELATIVE_PATH = re.compile(r"`(\.\./[^`\s]+)`")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_clone(document: Path) -> None:
    text = document.read_text()
    targets = [t for t in _LINK.findall(text) if "://" not in t and not t.startswith("mailto:")]
    targets += _RELATIVE_PATH.findall(text)
    broken = []
    for target in targets:
        resolved = (document.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert not broken, f"{document.name} links to files a clone does not have: {broken}"


def test_license_is_an_spdx_expression() -> None:
    # The table form ({text = ...}) is deprecated: setuptools prints a warning box on every install.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
