"""The main job, ``shipyard demo``: the whole lifecycle on a dataset bundled with scikit-learn.

1. A pipeline (:mod:`shipyard.demo.steps`): ingest → validate → split → tune (TPE, 2 trials at once, early
   stopping over CV folds) → train the best configuration → evaluate → register as ``challenger``, promoted
   to ``champion`` when at least as accurate as the current one.
2. The champion is served (Open Inference Protocol server on 127.0.0.1, every request logged with its
   payload), and a few hundred requests go to it, the last ones with shifted inputs.
3. Ground truth for the unshifted requests arrives (joined by request id), and the monitoring job compares
   what was served with the model's training baseline: drift report, skew, accuracy, Prometheus gauges.
4. Its drift rule fires, and its action retrains (:func:`shipyard.demo.steps.retraining`): the new version
   becomes the challenger. A second demo within the hour's cool-down fires the rule but does not retrain.

Every part is tracked; running it again adds new versions and runs next to the old ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.config import Settings, get_settings
from shipyard.demo.steps import EXPERIMENT, MODEL_NAME, TARGET, lifecycle
from shipyard.errors import NotFound, PipelineError
from shipyard.monitoring.retraining import Retraining
from shipyard.registry.records import ModelVersion

REQUESTS = 300
SHIFTED = 100  # the last SHIFTED requests scale these features: what monitoring should find
SHIFTED_COLUMNS = ["mean radius", "mean texture", "mean perimeter", "mean area", "worst radius"]
# The monitoring rule: five of thirty features drifting is enough to retrain, at most once an hour.
RULES = {
    "rules": [
        {
            "name": "served-inputs-drifted",
            "metric": "drift_share",
            "op": ">=",
            "threshold": 0.1,
            "action": {
                "pipeline": "shipyard.demo.steps:retraining",
                "parameters": {"model_name": MODEL_NAME},
                "cooldown": "1h",
                "max_per_day": 4,
            },
        }
    ]
}


@dataclass(frozen=True)
class DemoResult:
    settings: Settings
    pipeline_run_id: str
    tuning_run_id: str
    trials: int
    cv_accuracy: float
    test_metrics: dict[str, float]
    model_version: ModelVersion
    promoted: bool
    server_url: str
    requests: int
    drifted_columns: list[str]
    drift_share: float
    served_accuracy: float | None
    report_uri: str
    monitor_run_id: str | None
    seconds: float
    retraining: Retraining | None = None


def run_demo(settings: Settings | None = None, report: Callable[[str], None] = print) -> DemoResult:
    """Run the whole lifecycle; ``report`` gets a line at each stage."""
    from shipyard import models
    from shipyard.pipelines import compile_pipeline
    from shipyard.pipelines.executors import LocalExecutor, StepResult
    from shipyard.tracking import get_client

    started = time.monotonic()
    settings = settings or get_settings()
    since = datetime.now(UTC)

    spec = compile_pipeline(lifecycle)

    def on_step(key: str, result: StepResult | None) -> None:
        if result is None:
            report(f"  {key}: running…")
            return
        took = f" in {result.duration_s:.1f}s" if result.duration_s else ""
        values = {  # parameters only: artifact outputs are long paths
            name: value
            for name, value in (result.outputs or {}).items()
            if spec.steps[key].outputs[name].kind == "parameter"
        }
        report(f"  {key}: {result.status.value}{took}{f' → {_brief(values)}' if values else ''}")

    report(f"pipeline {spec.name}: {' → '.join(spec.steps)}")
    run = LocalExecutor(max_parallel=2, settings=settings).run(
        spec, {"model_name": MODEL_NAME}, experiment=EXPERIMENT, on_step=on_step
    )
    failed = {k: s.error for k, s in run.steps.items() if s.error and s.status.value == "failed"}
    if failed:
        raise PipelineError(f"the demo pipeline failed at {', '.join(failed)}: {next(iter(failed.values()))}")
    steps = run.steps
    client = get_client(settings)
    search_run = client.get_run(steps["search"].run_id)  # type: ignore[arg-type]
    tuning = client.get_run(search_run.tags["tuning_run"])
    registered = steps["register"].outputs
    version = models.get(f"models:/{MODEL_NAME}/{registered['version']}", settings=settings)
    logged = client.get_run(steps["evaluate"].run_id).metrics  # type: ignore[arg-type]
    test_metrics = {k: logged[k] for k in ("accuracy", "f1", "roc_auc") if k in logged}
    state = "promoted to champion" if registered["promoted"] else "champion kept (it is at least as good)"
    report(f"registered {MODEL_NAME} version {version.version} as challenger; {state}")

    with _serving(settings) as url:
        report(f"serving models:/{MODEL_NAME}@champion at {url}")
        ids, truth = _send_traffic(url, settings, report)
    monitored = _monitor(settings, since, ids, truth, report)
    return DemoResult(
        settings=settings,
        pipeline_run_id=run.run_id,
        tuning_run_id=tuning.run_id,
        trials=int(sum(tuning.metrics.get(f"trials_{s}", 0) for s in ("complete", "pruned", "fail"))),
        cv_accuracy=float(steps["search"].outputs["output"]),  # type: ignore[index]
        test_metrics=test_metrics,
        model_version=version,
        promoted=bool(registered["promoted"]),
        server_url=url,
        requests=len(ids),
        drifted_columns=[c.column for c in monitored.drift.columns if c.drift_detected],
        drift_share=monitored.drift.drift_share,
        served_accuracy=None
        if monitored.performance is None
        else monitored.performance.metrics.get("accuracy"),
        report_uri=f"{settings.artifact_root}/{monitored.report_path}",
        monitor_run_id=monitored.run_id,
        seconds=time.monotonic() - started,
        retraining=monitored.retrainings[0] if monitored.retrainings else None,
    )


def _brief(outputs: dict[str, Any]) -> str:
    parts = []
    for name, value in outputs.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        parts.append(str(value) if name == "output" else f"{name}={value}")
    return ", ".join(parts)


@contextmanager
def _serving(settings: Settings) -> Iterator[str]:
    """The champion behind a real HTTP server on a free loopback port, every request logged."""
    import socket

    import uvicorn

    from shipyard import models
    from shipyard.payloads import PayloadLogConfig, PayloadLogger
    from shipyard.serving.app import InferenceServer
    from shipyard.serving.heartbeat import Heartbeat, publisher
    from shipyard.serving.repository import ModelConfig, ModelRepository
    from shipyard.serving.server import uvicorn_config
    from shipyard.store.artifacts import ArtifactStore

    repository = ModelRepository(
        [ModelConfig(MODEL_NAME, f"models:/{MODEL_NAME}@champion")],
        lambda uri, **options: models.load(uri, settings=settings, **options),
    )
    store = ArtifactStore.configured(settings)
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    server = InferenceServer(repository, payloads=payloads, monitoring=store)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The production configuration (header deadline, no proxy headers, connection limit), quieter.
    uv = uvicorn.Server(uvicorn_config(server, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise PipelineError("the demo's inference server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    # Its heartbeat: the UI's deployments page shows what it served (a report at start and one at the end).
    beats = Heartbeat(server.metrics, lambda: repository.deployments.values(), publisher(settings, None, url))
    try:
        repository.wait_loaded(60)
        beats.start()
        yield url
    finally:
        beats.stop()
        beats.beat()
        uv.should_exit = True
        thread.join(60)  # the server's shutdown writes the payload log


def _send_traffic(url: str, settings: Settings, report: Callable[[str], None]) -> tuple[list[str], list[int]]:
    """REQUESTS one-row requests; the last SHIFTED with scaled measurements. Returns the request ids and the
    true labels of the unshifted ones."""
    import httpx
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(REQUESTS, replace=True, random_state=11)
    frame = frame.reset_index(drop=True)
    shifted = frame.index >= REQUESTS - SHIFTED
    frame.loc[shifted, SHIFTED_COLUMNS] = frame.loc[shifted, SHIFTED_COLUMNS] * 1.6
    ids: list[str] = []
    records = frame.drop(columns=[TARGET]).to_dict(orient="records")
    with httpx.Client(base_url=url, timeout=30) as client:
        for record in records:  # one row a request
            answer = client.post(f"/models/{MODEL_NAME}/predict", json=[record])
            answer.raise_for_status()
            ids.append(answer.headers["x-request-id"])
    report(f"sent {REQUESTS} requests ({SHIFTED} with {len(SHIFTED_COLUMNS)} features scaled by 1.6)")
    return ids, frame[TARGET].astype(int).tolist()


def _monitor(
    settings: Settings, since: datetime, ids: list[str], truth: list[int], report: Callable[[str], None]
) -> Any:
    import pandas as pd

    from shipyard.monitoring import run_monitor, save_labels
    from shipyard.monitoring.alerts import parse_rules
    from shipyard.store.artifacts import ArtifactStore

    store = ArtifactStore.configured(settings)
    known = REQUESTS - SHIFTED  # ground truth arrives for the ordinary requests
    save_labels(store, MODEL_NAME, pd.DataFrame({"request_id": ids[:known], "label": truth[:known]}))
    report(f"ground truth arrived for {known} requests")
    rules = parse_rules(RULES)
    try:
        result = run_monitor(store, MODEL_NAME, since=since, settings=settings, min_rows=50, rules=rules)
    except NotFound:  # the champion is from an older demo, logged without a baseline: set one
        from sklearn.datasets import load_breast_cancer

        from shipyard.monitoring import save_baseline

        save_baseline(store, MODEL_NAME, load_breast_cancer(as_frame=True).data)
        report(
            "the champion has no packaged baseline (an older demo's); set the bundled data as its baseline"
        )
        result = run_monitor(store, MODEL_NAME, since=since, settings=settings, min_rows=50, rules=rules)
    drifted = [c.column for c in result.drift.columns if c.drift_detected]
    report(
        f"monitoring: drift share {result.drift.drift_share:.2f} "
        f"({len(drifted)} of {len(result.drift.columns)} features: {', '.join(drifted) or 'none'})"
    )
    for retraining in result.retrainings:
        report(f"retraining: {retraining.status}: {retraining.reason}")
    return result


__all__ = ["EXPERIMENT", "MODEL_NAME", "DemoResult", "run_demo"]
