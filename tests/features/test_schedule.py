"""Materialization on a schedule: the pipeline the scheduler runs, and `shipyard features schedule`."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from shipyard.features import FeatureStore
from shipyard.features.pipeline import materialization
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from tests.conftest import console, make_settings

NOW = datetime.now(UTC).replace(microsecond=0)


def make_repo(root: Path) -> Path:
    (root / "data").mkdir(parents=True)
    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [NOW - timedelta(hours=2)] * 2, "spend": [3.0, 4.0]}
    ).to_parquet(root / "data" / "stats.parquet")
    (root / "views.py").write_text(
        textwrap.dedent(
            f"""
            from datetime import timedelta
            from shipyard.features import Entity, FeatureView, Field, FileSource
            customer = Entity("customer", ["customer_id"])
            stats = FeatureView("stats", [customer], [Field("spend", "float64")],
                                FileSource({str(root / "data" / "stats.parquet")!r}), ttl=timedelta(days=1))
            """
        ),
        encoding="utf-8",
    )
    return root


def test_the_materialization_pipeline_loads_the_online_store(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    repo = make_repo(tmp_path / "repo")
    result = LocalExecutor(max_parallel=1, settings=settings).run(
        compile_pipeline(materialization), {"repo": str(repo)}
    )
    assert result.status is StepStatus.SUCCEEDED, [s.error for s in result.steps.values()]
    assert result.steps["materialize-views"].outputs["output"] == 2
    store = FeatureStore.from_repository(repo, settings=settings)
    assert store.get_online_features(["stats:spend"], {"customer_id": [2]}).to_dict()["spend"] == [4.0]


def test_the_cli_schedules_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_CEILING_DIRECTORIES": str(tmp_path),
    }
    made = console("features", "schedule", "--cron", "0 * * * *", "--repo", str(repo), env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "scheduled 'materialize-repo'" in made.stdout
    listed = json.loads(console("schedules", "list", "--json", env=env, cwd=tmp_path).stdout)
    assert [s["name"] for s in listed] == ["materialize-repo"]
    bad = console(
        "features", "schedule", "--cron", "0 * * * *", "--repo", str(repo), "--view", "nope", env=env
    )
    assert bad.returncode != 0 and "--view 'nope'" in bad.stderr
