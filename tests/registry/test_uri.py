from __future__ import annotations

import pytest

from shipyard import InvalidInput
from shipyard.registry.records import Stage
from shipyard.registry.uri import MAX_VERSION, PathUri, RegistryUri, RunModelUri, parse_model_uri

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"runs:/{RUN}/model", RunModelUri(RUN, "model")),
        (f"runs:/{RUN.upper()}/sub/model/", RunModelUri(RUN, "sub/model")),
        ("models:/churn/3", RegistryUri("churn", version=3)),
        ("models:/churn@champion", RegistryUri("churn", alias="champion")),
        ("models:/churn/latest", RegistryUri("churn", latest=True)),
        ("models:/churn/Production", RegistryUri("churn", stage=Stage.PRODUCTION)),
        ("models:/my model/staging", RegistryUri("my model", stage=Stage.STAGING)),
        ("./pkg", PathUri("./pkg")),
    ],
)
def test_parses(uri: str, expected: object) -> None:
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "runs:/short/model",
        f"runs:/{RUN}",
        "models:/churn",
        "models:/churn/0",
        "models:/churn/3/x",
        "models:/churn@",
        "models:/churn/nonsense-ref",
        "s3://bucket/model",
        "models:/@x",
        "models:/churn/²",  # a digit to str.isdigit, not to int()
        "models:/churn/-1",
    ],
)
def test_bad_uris_name_the_uri(uri: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_model_uri(uri)
    if uri:
        assert repr(uri) in str(info.value)


def test_the_largest_version_parses() -> None:
    assert parse_model_uri(f"models:/churn/{MAX_VERSION}") == RegistryUri("churn", version=MAX_VERSION)
    assert MAX_VERSION == 2**31 - 1  # model_versions.version is a 32-bit INTEGER on PostgreSQL


@pytest.mark.parametrize("digits", [str(MAX_VERSION + 1), "9" * 19, "9" * 30, "9" * 5000])
def test_a_version_past_the_column_is_invalid_input_not_overflow(digits: str) -> None:
    with pytest.raises(
        InvalidInput, match=rf"version .* is out of range: versions are 1 to {MAX_VERSION}"
    ) as info:
        parse_model_uri(f"models:/churn/{digits}")
    assert len(str(info.value)) < 300  # a 5,000-digit version is not echoed in full
