"""The models pages: versions, the audit timeline, a version's card, signature, files and lineage, and
promotion through forms (editors only, CSRF checked, recorded as the signed-in user)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pandas as pd
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import Settings, models
from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from tests.conftest import make_settings, platform_server, sign_up

PASSWORD = "a long enough password"


def _register(settings: Settings) -> str:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 1, 0, 1])
    with shipyard.start_run("models", settings=settings) as run:
        run.log_metric("acc", 0.5)
        run.log_input(frame, name="train<x>")
        info = models.log(model, input_example=frame.head(2))
    models.register(info.uri, "churn", settings=settings)
    return run.run_id


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]


def test_a_version_page_shows_signature_files_card_and_lineage(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    run_id = _register(settings)
    with platform_server(settings) as url, httpx.Client(base_url=url) as web:
        listing = web.get("/ui/models")
        assert 'href="/ui/models/churn"' in listing.text
        page = web.get("/ui/models/churn/versions/1")
        assert page.status_code == 200
        assert "MODEL_CARD.md" in page.text and re.search(r'class="mono">[0-9a-f]{64}<', page.text)
        assert "# Model card: " in page.text and f'href="/ui/runs/{run_id}"' in page.text
        assert "train&lt;x&gt;" in page.text  # the dataset, escaped
        assert ">a<" in page.text and "float64" in page.text  # the signature's inputs
        assert web.get("/ui/models/churn/versions/9").status_code == 404


def test_promotion_through_the_forms_is_for_editors_and_audited(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    _register(settings)
    accounts = Accounts(open_server_stores(settings).auth)
    sign_up(accounts, [("alice", "editor", PASSWORD), ("bob", "viewer", PASSWORD)])
    accounts.grant("alice", "model:churn", "EDIT", by="admin")
    with platform_server(settings, require_auth=True) as url:
        for user in ("alice", "bob"):
            with httpx.Client(base_url=url) as web:
                login = web.get("/ui/login")
                web.post("/ui/login", data={"csrf": _csrf(login), "user": user, "password": PASSWORD})
                page = web.get("/ui/models/churn/versions/1")
                token = _csrf(page)
                form = {"csrf": token, "stage": "Production", "reason": f"{user} says so"}
                answer = web.post("/ui/models/churn/versions/1/stage", data=form)
                if user == "bob":
                    assert 'id="stage-form"' not in page.text  # a viewer sees no write controls
                    assert answer.status_code == 403  # and the server refuses the write anyway
                    continue
                assert 'id="stage-form"' in page.text
                assert answer.status_code == 303
                shown = web.get(answer.headers["location"])
                assert 'id="stage">Production<' in shown.text
                alias = web.post(
                    "/ui/models/churn/versions/1/alias", data={"csrf": token, "alias": "champion"}
                )
                assert alias.status_code == 303
                timeline = web.get("/ui/models/churn").text
                assert "<strong>alice</strong>" in timeline and "alice says so" in timeline
    assert models.get("models:/churn@champion", settings=settings).stage.value == "Production"


def test_a_version_page_shows_its_checks_importance_and_tags(tmp_path: Path) -> None:
    from shipyard.explain import IMPORTANCE_TAG, RecordedImportance
    from shipyard.registry.fluent import registry_client

    settings = make_settings(tmp_path / "home")
    _register(settings)
    registry = registry_client(settings)
    with platform_server(settings) as url, httpx.Client(base_url=url) as web:
        empty = web.get("/ui/models/churn/versions/1").text
        assert "No gate or audit has run on this version" in empty
        assert "shipyard models explain churn/1 --record" in empty

        registry.record_gate(
            "churn",
            1,
            passed=False,
            summary="1 of 2 rules failed",
            facts={
                "at": "2026-12-07T10:00:00Z",
                "against": "models:/churn@champion",
                "failed": "metric accuracy",
            },
        )
        ranked = {"b<script>": 0.3, "a": 0.1}  # a feature name is data: escaped like any other
        recorded = RecordedImportance(
            "shap", "LinearExplainer", "raw", 200, 2, ranked, "2026-12-07T09:00:00Z"
        )
        audit = {"shipyard.audit.status": "passed", "shipyard.audit.run": "0123abcd", "owner": "team <ml>"}
        registry.set_version_tags("churn", 1, {IMPORTANCE_TAG: recorded.to_json(), **audit})
        page = web.get("/ui/models/churn/versions/1").text
        checks = page[page.index('id="checks"') : page.index('id="importance"')]
        assert '<span class="check-failed">failed</span>' in checks and "failed: metric accuracy" in checks
        assert "against models:/churn@champion" in checks
        assert '<span class="check-passed">passed</span>' in checks and 'href="/ui/runs/0123abcd"' in checks
        bars = page[page.index('id="importance"') : page.index('id="tags"')]
        assert "Mean |SHAP| (raw) over 200 rows, LinearExplainer" in bars
        assert bars.index("b&lt;script&gt;") < bars.index('data-param="a"') and "<script>" not in bars
        assert 'aria-label="Feature importance"' in bars and ">0.3</text>" in bars
        tags = page[page.index('id="tags"') :]
        assert "team &lt;ml&gt;" in tags and "shipyard.audit" not in tags and IMPORTANCE_TAG not in tags

        registry.set_version_tags("churn", 1, {IMPORTANCE_TAG: "not json"})
        broken = web.get("/ui/models/churn/versions/1")
        assert broken.status_code == 200 and "does not hold recorded importance" in broken.text
