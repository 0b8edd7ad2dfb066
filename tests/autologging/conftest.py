"""Autologging on for one test, into the test's own store, and off (every original restored) after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import shipyard
from shipyard import Settings


@pytest.fixture
def autologged(settings: Settings) -> Iterator[Settings]:
    shipyard.autolog(settings=settings)
    yield settings
    shipyard.autolog(disable=True)
