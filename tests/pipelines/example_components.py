"""Components and pipelines the pipeline tests compile."""

from __future__ import annotations

from typing import NamedTuple

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


class Split(NamedTuple):
    n_train: int
    n_test: int


@component(cache=False)
def ingest(source: str, data: Output[Dataset]) -> None:
    data.metadata["source"] = source
    with open(data.path, "w") as fh:
        fh.write(f"rows from {source}\n")


@component
def validate(data: Input[Dataset]) -> bool:
    return bool(data.path)


@component
def split(data: Input[Dataset], train: Output[Dataset], test: Output[Dataset], ratio: float = 0.8) -> Split:
    with open(data.path) as source:
        rows = source.read()
    for part in (train, test):
        with open(part.path, "w") as fh:
            fh.write(rows)
    return Split(8, 2)


@component(retries=3, retry_backoff_s=2.0, timeout_s=600, cpus=2, gpus=1, memory="4Gi")
def train(data: Input[Dataset], model: Output[Model], lr: float = 0.1) -> float:
    with open(model.path, "w") as fh:
        fh.write(f"lr={lr}\n")
    return lr


@component
def evaluate(model: Input[Model], data: Input[Dataset], metrics: Output[Metrics]) -> float:
    with open(metrics.path, "w") as fh:
        fh.write('{"accuracy": 0.9}')
    return 0.9


@component
def register(model: Input[Model], name: str) -> str:
    return name


@component
def notify(message: str) -> None:
    pass


@component
def score(n: int) -> float:
    return n / 10


@component
def summarize(scores: list) -> float:
    return max(scores)


@component
def make_list() -> list:
    return [1, 2]


@pipeline(name="train-and-register")
def training_pipeline(source: str = "s3://bucket/iris.csv", threshold: float = 0.8, lr: float = 0.1) -> None:
    raw = ingest(source=source)
    validate(data=raw.outputs["data"])
    parts = split(data=raw.outputs["data"])
    trained = train(data=parts.outputs["train"], lr=lr)
    scored = evaluate(model=trained.outputs["model"], data=parts.outputs["test"])
    with If(scored.output > 0.8):
        register(model=trained.outputs["model"], name="iris")
    with Elif(scored.output > 0.5):
        notify(message="close")
    with Else():
        notify(message="too weak")


@pipeline
def fan_out(ns: list = [1, 2, 3]) -> None:  # noqa: B006
    with ParallelFor(ns, parallelism=2) as n:
        s = score(n=n)
    summarize(scores=Collected(s.output))
    with ParallelFor([4, 5]) as m:
        score(n=m)


@pipeline
def guarded() -> None:
    done = notify(message="finished")
    with ExitHandler(done):
        raw = ingest(source="x")
        validate(data=raw.outputs["data"])
