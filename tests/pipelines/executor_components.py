"""Components and pipelines the local executor tests run in real worker processes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import shipyard
from shipyard.config import get_settings
from shipyard.pipelines import Dataset, ExitHandler, If, Input, Metrics, Model, Output, component, pipeline


@component
def make_data(n: int, data: Output[Dataset]) -> int:
    Path(data.path).write_text("\n".join(str(i) for i in range(n)))
    print(f"wrote {n} rows")
    print("made data", file=sys.stderr)
    return n


@component
def fit(data: Input[Dataset], model: Output[Model], metrics: Output[Metrics]) -> float:
    rows = Path(data.path).read_text().splitlines()
    Path(model.path).write_text(f"mean={sum(map(int, rows)) / len(rows)}")
    acc = len(rows) / 10
    Path(metrics.path).write_text(json.dumps({"acc": acc, "note": "text is ignored"}))
    return acc


@component
def publish(model: Input[Model]) -> str:
    return Path(model.path).read_text()


@component
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@component
def echo(x: int) -> int:
    return x


@component
def hard_exit(code: int, use_sys: bool) -> int:
    if use_sys:
        sys.exit(code)
    os._exit(code)


@component(timeout_s=1)
def sleepy() -> int:
    time.sleep(60)
    return 0


@component(retries=2, retry_backoff_s=0.05)
def flaky(marker: str, fail_times: int) -> int:
    path = Path(marker)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen < fail_times:
        raise RuntimeError(f"attempt {seen + 1} fails")
    return seen + 1


@component
def wrong_type() -> int:
    return "seven"  # type: ignore[return-value]


@component
def forgets(model: Output[Model]) -> None:
    pass


@component
def logs_into_its_run(epochs: int) -> str:
    run = shipyard.active_run()
    assert run is not None
    for epoch in range(epochs):
        shipyard.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
    shipyard.set_tag("logged.by", "component")
    return run.run_id


@component
def reads_env(name: str) -> str:
    return os.environ.get(name, "")


@component
def reports_store() -> str:
    return get_settings().db_url


@pipeline(name="realistic")
def realistic(n: int = 10) -> None:
    made = make_data(n=n)
    trained = fit(data=made.outputs["data"])
    with If(trained.outputs["output"] > 0.5):
        publish(model=trained.outputs["model"])


@pipeline
def failing() -> None:
    bad = boom(x=1)
    echo(x=bad.output)
    echo(x=2)


@pipeline
def crashing(use_sys: bool = False) -> None:
    dead = hard_exit(code=3, use_sys=use_sys)
    echo(x=1).after(dead)
    echo(x=5)
    echo(x=6)


@pipeline
def timing_out() -> None:
    sleepy()
    echo(x=1)


@pipeline
def retrying(marker: str, fail_times: int = 2) -> None:
    flaky(marker=marker, fail_times=fail_times)


@pipeline
def mistyped() -> None:
    wrong_type()
    forgets()


@pipeline
def guarded_failure() -> None:
    done = echo(x=7)
    with ExitHandler(done):
        broken = boom(x=1)
        echo(x=broken.output)


@pipeline
def self_logging(epochs: int = 3) -> None:
    logs_into_its_run(epochs=epochs)


@pipeline
def store_report() -> None:
    reports_store()


@pipeline
def thresholded(n: int = 10, threshold: float = 0.5) -> None:
    made = make_data(n=n)
    trained = fit(data=made.outputs["data"])
    with If(trained.outputs["output"] > threshold):
        publish(model=trained.outputs["model"])


@pipeline
def env_report(name: str) -> None:
    reads_env(name=name)
