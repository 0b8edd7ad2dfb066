"""Components that count their executions in a file, for the step caching and resume tests."""

from __future__ import annotations

from pathlib import Path

from shipyard.pipelines import Dataset, Input, Output, component, pipeline


def _count(counter: str, name: str) -> None:
    with open(counter, "a", encoding="utf-8") as f:
        f.write(name + "\n")


def executions(counter: str) -> list[str]:
    """The names of the steps that ran, one per execution, in no particular order."""
    path = Path(counter)
    return sorted(path.read_text().split()) if path.exists() else []


@component
def produce(counter: str, n: int, data: Output[Dataset]) -> int:
    _count(counter, "produce")
    Path(data.path).write_text("\n".join(str(i) for i in range(n)))
    return n


@component
def consume(counter: str, data: Input[Dataset]) -> str:
    _count(counter, "consume")
    return Path(data.path).read_text().replace("\n", ",")


@component
def bump(counter: str, x: int) -> int:
    _count(counter, "bump")
    return x + 1


@component(cache=False)
def load(counter: str, source: str, data: Output[Dataset]) -> None:
    _count(counter, "load")
    Path(data.path).write_text(Path(source).read_text())


@component
def gate(counter: str, marker: str, data: Input[Dataset]) -> int:
    _count(counter, "gate")
    if not Path(marker).exists():
        raise RuntimeError(f"no marker at {marker}")
    return len(Path(data.path).read_text().splitlines())


@pipeline
def chain(counter: str, n: int = 3, m: int = 1) -> None:
    made = produce(counter=counter, n=n)
    consume(counter=counter, data=made.outputs["data"])
    bump(counter=counter, x=m)


@pipeline
def loaded(counter: str, source: str) -> None:
    data = load(counter=counter, source=source)
    consume(counter=counter, data=data.outputs["data"])


@pipeline
def resumable(counter: str, marker: str) -> None:
    made = produce(counter=counter, n=2)
    passed = gate(counter=counter, marker=marker, data=made.outputs["data"])
    consume(counter=counter, data=made.outputs["data"]).after(passed)
    bump(counter=counter, x=1)


@pipeline(cache=False)
def uncached_chain(counter: str, n: int = 3) -> None:
    produced = produce(counter=counter, n=n)
    consume(counter=counter, data=produced.outputs["data"])
