"""Deployment records: names and URLs are checked once (an allow-list of schemes), kept in the SQL store."""

from __future__ import annotations

import pytest

from shipyard.config import Settings
from shipyard.deployments import Deployments, check_deployment_name, check_deployment_url
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store import open_server_stores


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://host/x",
        "http://",
        "http://user:secret@host:8080",
        "http://host:8080/?next=evil",
        "http://host:99999",
        "",
        "http://host\n:80",
    ],
)
def test_only_plain_http_and_https_urls_are_deployment_urls(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_deployment_url(url)


def test_a_deployment_url_keeps_its_path_without_the_trailing_slash() -> None:
    assert check_deployment_url(" https://serve.example.com/churn/ ") == "https://serve.example.com/churn"
    assert check_deployment_url("http://[::1]:8080") == "http://[::1]:8080"


@pytest.mark.parametrize("name", ["", " churn", "a/b", "..", "x" * 257, "tab\there"])
def test_deployment_names_are_served_model_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_deployment_name(name)


def test_records_are_registered_updated_listed_and_deleted(settings: Settings) -> None:
    deployments = Deployments(open_server_stores(settings).deployments)
    first = deployments.register("churn", "http://10.0.0.5:8080", by="alice")
    assert (first.created_by, first.created_at) == ("alice", first.updated_at)
    with pytest.raises(AlreadyExists, match="'churn' already exists"):
        deployments.register("churn", "http://10.0.0.6:8080", by="bob")
    moved = deployments.update("churn", "http://10.0.0.6:8080")
    assert (moved.url, moved.created_by, moved.created_at) == (
        "http://10.0.0.6:8080",
        "alice",
        first.created_at,
    )
    deployments.register("fraud", "https://fraud.example.com", by="bob")
    assert [d.name for d in deployments.list()] == ["churn", "fraud"]
    deployments.delete("churn")
    with pytest.raises(NotFound, match="no deployment named 'churn'"):
        deployments.get("churn")
    with pytest.raises(NotFound):
        deployments.delete("churn")
    with pytest.raises(NotFound):
        deployments.update("churn", "http://x:1")
