"""The vendored front-end files are the ones the vendor README records, each with its licence beside it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

import shipyard.ui

VENDOR = Path(shipyard.ui.__file__).parent / "static" / "vendor"
# A table row: | `file` | package | version | licence | source | `sha256` |
ROW = re.compile(r"^\|\s*`(?P<file>[^`]+)`\s*\|.*\|\s*`(?P<sha256>[0-9a-f]{64})`\s*\|\s*$")


def _recorded() -> dict[str, str]:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    return {m["file"]: m["sha256"] for m in map(ROW.match, readme.splitlines()) if m}


def test_every_vendored_file_is_recorded_in_the_readme() -> None:
    on_disk = {p.name for p in VENDOR.iterdir() if p.name != "README.md"}
    assert on_disk == set(_recorded()), "each vendored file has one row (file, sha256) in vendor/README.md"


@pytest.mark.parametrize("name", sorted(_recorded()))
def test_vendored_file_matches_its_recorded_sha256(name: str) -> None:
    digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
    assert digest == _recorded()[name], f"{name} differs from the copy vendor/README.md records"


@pytest.mark.parametrize(
    ("library", "files"),
    [("htmx", ["htmx.min.js"]), ("uPlot", ["uPlot.iife.min.js", "uPlot.min.css"])],
)
def test_each_library_ships_with_its_licence(library: str, files: list[str]) -> None:
    for name in files:
        assert (VENDOR / name).is_file()
    licence = VENDOR / f"{library}.LICENSE"
    assert licence.is_file() and licence.stat().st_size > 0, f"{library} needs its licence next to it"
