"""Pipelines for the KFP export tests: one with every feature that maps, ones with a feature that does not."""

from __future__ import annotations

from shipyard.pipelines import (
    Collected,
    Dataset,
    Elif,
    Else,
    ExitHandler,
    If,
    Input,
    Metrics,
    Model,
    Output,
    ParallelFor,
    component,
    pipeline,
)


@component
def make_data(rows: int, data: Output[Dataset]) -> float:
    """Write ``rows`` numbers, one a line; returns their mean."""
    with open(data.path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(str(i) for i in range(rows)))
    return (rows - 1) / 2


@component
def fit(data: Input[Dataset], model: Output[Model], metrics: Output[Metrics], scale: float = 1.0) -> float:
    with open(data.path, encoding="utf-8") as fh:
        total = sum(float(line) for line in fh)
    with open(model.path, "w", encoding="utf-8") as fh:
        fh.write(str(total * scale))
    with open(metrics.path, "w", encoding="utf-8") as fh:
        fh.write(f'{{"total": {total}}}')
    return total * scale


@component
def publish(model: Input[Model], name: str) -> str:
    return f"{name}:{open(model.path, encoding='utf-8').read()}"


@component
def note(message: str) -> None:
    print(message)


@component
def summarize(scores: list) -> int:
    return sum(scores)


@component
def score(n: int, tags: dict) -> int:
    return n * 2 + len(tags)


@pipeline(name="kfp-features")
def features(rows: int = 10, threshold: float = 30.0, ns: list = [1, 2, 3], name: str = "m") -> None:  # noqa: B006
    done = note(message="finished")
    with ExitHandler(done):
        data = make_data(rows=rows).set_retries(3, backoff_s=5).set_resources(cpus=2, memory="2Gi", gpus=1)
        fitted = fit(data=data.outputs["data"], scale=2.0).set_caching(False)
        with If(fitted.output > threshold):
            publish(model=fitted.outputs["model"], name=name)
        with Elif(fitted.output > 10):
            note(message="close")
        with Else():
            note(message="too small")
        with ParallelFor(ns, parallelism=2) as n, If(n >= 2):
            score(n=n, tags={"a": 1})
        with ParallelFor([4, 5]) as m:
            score(n=m, tags={})


@pipeline(name="with-timeout")
def with_timeout() -> None:
    make_data(rows=3).set_timeout(30)


@pipeline(name="with-collected")
def with_collected(ns: list = [1, 2]) -> None:  # noqa: B006
    with ParallelFor(ns) as n:
        s = score(n=n, tags={})
    summarize(scores=Collected(s.output))


@pipeline(name="conditional-output")
def conditional_output(threshold: float = 1.0) -> None:
    data = make_data(rows=3)
    with If(data.output > threshold):
        fitted = fit(data=data.outputs["data"])
    publish(model=fitted.outputs["model"], name="x")
