"""``shipyard deployments`` on the server's own database (its machine, no SHIPYARD_TRACKING_URI)."""

from __future__ import annotations

import json

import pytest

from shipyard.cli import main
from shipyard.config import get_settings
from shipyard.deployments import Deployments
from shipyard.store import open_server_stores


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out, err


def test_list_and_delete_deployments_on_the_servers_database(capsys: pytest.CaptureFixture[str]) -> None:
    Deployments(open_server_stores(get_settings()).deployments).register(
        "churn", "http://10.0.0.5:8080", by="ops"
    )
    code, out, err = _cli(capsys, "deployments", "list", "--json")
    assert code == 0, err
    assert [(d["name"], d["url"], d["created_by"]) for d in json.loads(out)] == [
        ("churn", "http://10.0.0.5:8080", "ops")
    ]
    code, out, _ = _cli(capsys, "deployments", "list")
    assert code == 0 and "churn" in out and "http://10.0.0.5:8080" in out
    code, out, err = _cli(capsys, "deployments", "delete", "churn")
    assert code == 0 and "deployment churn deleted" in out
    code, _, err = _cli(capsys, "deployments", "delete", "churn")
    assert code == 3 and err.startswith("error: no deployment named 'churn'") and err.count("\n") == 1
    code, _, err = _cli(capsys, "deployments", "delete", "a/b")
    assert code == 2 and err.count("\n") == 1
