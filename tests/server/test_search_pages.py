"""``POST /api/v1/runs/search`` pages by cursor: each answer's ``X-Shipyard-Next-Cursor`` header is the next
request's ``after``, and a bad ``after`` is a 400 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import shipyard
from shipyard import Settings
from tests.conftest import platform_server

HEADER = "X-Shipyard-Next-Cursor"


@pytest.fixture
def url(settings: Settings) -> Iterator[str]:
    for i in range(9):
        with shipyard.start_run("pages", name=f"r{i}", settings=settings) as run:
            run.log_metric("acc", [0.3, float("nan"), 0.7][i % 3])
            if i % 2:
                run.log_param("model", f"m{i % 4}")
    with platform_server(settings) as found:
        yield found


def search(url: str, **body: Any) -> httpx.Response:
    experiment = httpx.get(f"{url}/api/v1/experiments/pages").json()["experiment_id"]
    return httpx.post(f"{url}/api/v1/runs/search", json={"experiment_ids": [experiment], **body})


@pytest.mark.parametrize("order", [["metrics.acc desc"], ["params.model", "metrics.acc"], []])
def test_following_the_header_walks_every_run_once(url: str, order: list[str]) -> None:
    everything = search(url, order_by=order, limit=100)
    assert HEADER.lower() not in everything.headers
    names: list[str] = []
    after = None
    while True:
        answer = search(url, order_by=order, limit=2, **({"after": after} if after else {}))
        assert answer.status_code == 200, answer.text
        names += [r["name"] for r in answer.json()]
        after = answer.headers.get(HEADER)
        if after is None:
            break
    assert names == [r["name"] for r in everything.json()] and len(names) == 9


def test_a_bad_after_is_a_400_naming_it(url: str) -> None:
    after = search(url, order_by=["metrics.acc"], limit=2).headers[HEADER]
    for body, message in [
        ({"order_by": ["metrics.acc"], "after": after, "offset": 2}, "not both"),
        ({"order_by": ["metrics.acc"], "after": after[:-3]}, "after '"),
        ({"order_by": ["metrics.acc desc"], "after": after}, "different search"),
        ({"order_by": ["metrics.acc"], "filter": "metrics.acc > 0", "after": after}, "different search"),
    ]:
        answer = search(url, limit=2, **body)
        assert answer.status_code == 400, answer.text
        assert (
            answer.json()["error"]["code"] == "INVALID_INPUT" and message in answer.json()["error"]["message"]
        )
