"""Search cursors as strings: they round-trip, stay URL-safe, and anything else — a tampered string, a value
that cannot be its key's, a cursor of another search — is InvalidInput naming the problem."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.errors import InvalidInput
from shipyard.tracking.cursors import SearchCursor, decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by

ORDER = ["metrics.acc desc", "params.model", "attributes.end_time", "tags.team desc", "attributes.name"]
KEYS = parse_order_by(ORDER)
FINGERPRINT = search_fingerprint(["1", "2"], "metrics.acc > 0.5", ORDER, False)
CURSOR = SearchCursor((0.5, "resnet", 1_700_000_000_123, None, "run-7"), 1_700_000_000_000, "ab" * 16)


def forged(**changes: Any) -> str:
    """A well-formed cursor string of this search with some payload fields changed."""
    payload = json.loads(base64.urlsafe_b64decode(encode_cursor(CURSOR, FINGERPRINT) + "=="))
    return base64.urlsafe_b64encode(json.dumps({**payload, **changes}).encode()).decode().rstrip("=")


def decoded(text: str) -> SearchCursor:
    return decode_cursor(text, FINGERPRINT, KEYS, name="after")


texts = st.text(st.characters(blacklist_characters="\0"), max_size=20)


@given(
    acc=st.none() | st.floats(allow_nan=False),
    model=st.none() | texts,
    end=st.none() | st.integers(-(2**63), 2**63 - 1),
    team=st.none() | texts,
    name=texts,
    start=st.integers(0, 2**62),
)
def test_cursors_round_trip_as_url_safe_strings(
    acc: float | None, model: str | None, end: int | None, team: str | None, name: str, start: int
) -> None:
    cursor = SearchCursor((acc, model, end, team, name), start, "f" * 32)
    text = encode_cursor(cursor, FINGERPRINT)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text)
    assert decoded(text) == cursor


def test_infinities_survive_and_a_whole_metric_value_is_a_float() -> None:
    for value in (math.inf, -math.inf, -0.0, 5e-324):
        cursor = SearchCursor((value, None, None, None, "n"), 1, "r")
        assert decoded(encode_cursor(cursor, FINGERPRINT)).values[0] == value
    assert decoded(forged(k=[1, None, None, None, "n"])).values[0] == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage!",
        "éé",
        encode_cursor(CURSOR, FINGERPRINT)[:-7],  # truncated
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        forged(v=2),  # a version this code does not read
        forged(k=[0.5, "resnet"]),  # values for two keys of five
        forged(k=["0.5", "resnet", None, None, "n"]),  # a metric as a string
        forged(k=[True, "resnet", None, None, "n"]),
        forged(k=[0.5, 3, None, None, "n"]),  # a param as a number
        forged(k=[0.5, "resnet", 1.5, None, "n"]),  # a time as a float
        forged(k=[0.5, "res\u0000net", None, None, "n"]),
        forged(k=[0.5, "resnet", 2**63, None, "n"]),  # past BIGINT
        forged(s="yesterday"),
        forged(r="x" * 33),
        forged(r=None),
    ],
)
def test_a_string_that_is_not_a_cursor_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^after .* is not a cursor returned by a run search"):
        decoded(text)


def test_a_nan_metric_in_a_cursor_is_refused() -> None:
    # NaN sorts with the missing values, so a cursor says None for it; a NaN can only be hand-made.
    text = base64.urlsafe_b64encode(
        json.dumps(
            {"v": 1, "q": FINGERPRINT, "k": [math.nan, None, None, None, "n"], "s": 1, "r": "r"}
        ).encode()
    ).decode()
    with pytest.raises(InvalidInput, match="not a cursor"):
        decoded(text)


@pytest.mark.parametrize(
    "other",
    [
        (["1"], "metrics.acc > 0.5", ORDER, False),
        (["1", "2"], "metrics.acc > 0.6", ORDER, False),
        (["1", "2"], "metrics.acc > 0.5", ORDER[::-1], False),
        (["1", "2"], "metrics.acc > 0.5", ORDER, True),
    ],
    ids=["experiments", "filter", "order", "include_deleted"],
)
def test_a_cursor_of_another_search_is_invalid_input(other: tuple[Any, ...]) -> None:
    text = encode_cursor(CURSOR, search_fingerprint(*other))
    with pytest.raises(
        InvalidInput, match=r"^page_token belongs to a different search \(experiments, filter"
    ):
        decode_cursor(text, FINGERPRINT, KEYS, name="page_token")


def test_the_same_experiments_in_another_order_are_the_same_search() -> None:
    text = encode_cursor(CURSOR, search_fingerprint(["2", "1"], "metrics.acc > 0.5", ORDER, False))
    assert decoded(text) == CURSOR


def test_a_long_string_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidInput) as info:
        decoded("A" * 5000)
    assert len(str(info.value)) < 120
