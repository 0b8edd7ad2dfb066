"""What flows between steps: parameters (plain values) and artifacts (files passed by reference).

A component declares its interface with ordinary annotations::

    def train(data: Input[Dataset], model: Output[Model], lr: float = 0.1) -> float: ...

``Input[T]`` artifacts are read from ``data.path``; ``Output[T]`` artifacts are written to ``model.path`` and
are outputs of the step, not arguments. The return annotation gives the parameter outputs: one value is the
output ``"output"``, a ``NamedTuple`` gives one output per field.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from shipyard.errors import PipelineDefinitionError


class Artifact:
    """A file or folder handed between steps through the artifact store.

    Attributes:
        path: local path the step reads from (inputs) or writes to (outputs).
        uri: where the artifact store keeps it.
        metadata: free-form JSON-able facts about the artifact.
    """

    type_name: ClassVar[str] = "Artifact"

    def __init__(self, path: str = "", uri: str = "", metadata: dict[str, Any] | None = None) -> None:
        self.path = path
        self.uri = uri
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, uri={self.uri!r})"


class Dataset(Artifact):
    """Tabular or other training data."""

    type_name = "Dataset"


class Model(Artifact):
    """A trained model."""

    type_name = "Model"


class Metrics(Artifact):
    """Evaluation metrics."""

    type_name = "Metrics"


class HTML(Artifact):
    """A report to show in the UI."""

    type_name = "HTML"


T = TypeVar("T", bound=Artifact)


class Input(Generic[T]):
    """Annotation for an artifact a step reads: ``data: Input[Dataset]``."""


class Output(Generic[T]):
    """Annotation for an artifact a step writes: ``model: Output[Model]``."""


ARTIFACT_TYPES: dict[str, type[Artifact]] = {
    c.type_name: c for c in (Artifact, Dataset, Model, Metrics, HTML)
}
PARAMETER_TYPES: dict[type, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    list: "list",
    dict: "dict",
}


class IOKind(StrEnum):
    """Whether a value travels inline (parameter) or by reference (artifact)."""

    PARAMETER = "parameter"
    ARTIFACT = "artifact"


@dataclass(frozen=True)
class IOSpec:
    """One declared input or output of a component.

    Attributes:
        type_name: ``"int"``, ``"list"``, … for parameters; ``"Dataset"``, … for artifacts.
        kind: parameter or artifact.
        has_default: whether the caller may leave the input out.
        default: the default value when ``has_default``.
    """

    type_name: str
    kind: IOKind
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True)
class Interface:
    """A component's inputs and outputs, read from its function's signature."""

    inputs: dict[str, IOSpec] = field(default_factory=dict)
    outputs: dict[str, IOSpec] = field(default_factory=dict)


def parameter_type_name(annotation: Any, where: str) -> str:
    """Map a parameter annotation (``int``, ``list[str]``…) to its spec type name; errors name ``where``."""
    origin = typing.get_origin(annotation) or annotation
    if origin in PARAMETER_TYPES:
        return PARAMETER_TYPES[origin]
    raise PipelineDefinitionError(
        f"{where}: unsupported type {annotation!r}; use str, int, float, bool, list, dict, "
        "Input[Artifact] or Output[Artifact]"
    )


def read_interface(func: Callable[..., Any]) -> Interface:
    """Read a component's inputs and outputs from its annotations.

    Raises:
        PipelineDefinitionError: an argument without a supported annotation, naming the function and argument.
    """
    name = func.__name__
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # NameError etc. from unresolved string annotations
        raise PipelineDefinitionError(f"component {name!r}: cannot resolve annotations: {exc}") from exc
    inputs: dict[str, IOSpec] = {}
    outputs: dict[str, IOSpec] = {}
    for arg, param in inspect.signature(func).parameters.items():
        if arg not in hints:
            raise PipelineDefinitionError(f"component {name!r}: argument {arg!r} needs a type annotation")
        hint = hints[arg]
        origin = typing.get_origin(hint)
        if origin in (Input, Output):
            (art,) = typing.get_args(hint)
            spec = IOSpec(art.type_name, IOKind.ARTIFACT)
            (inputs if origin is Input else outputs)[arg] = spec
            continue
        has_default = param.default is not inspect.Parameter.empty
        type_name = parameter_type_name(hint, f"component {name!r} argument {arg!r}")
        inputs[arg] = IOSpec(type_name, IOKind.PARAMETER, has_default, param.default if has_default else None)
    returned = hints.get("return", type(None))
    if returned is not type(None):
        fields = typing.get_type_hints(returned) if hasattr(returned, "_fields") else None
        if fields:
            for out, hint in fields.items():
                type_name = parameter_type_name(hint, f"component {name!r} output {out!r}")
                outputs[out] = IOSpec(type_name, IOKind.PARAMETER)
        else:
            outputs["output"] = IOSpec(
                parameter_type_name(returned, f"component {name!r} return"), IOKind.PARAMETER
            )
    return Interface(inputs, outputs)


def is_assignable(source: str, target: str) -> bool:
    """Whether a value of spec type ``source`` may feed an input of spec type ``target``.

    ``int`` widens to ``float``; any artifact fits an ``Artifact`` input; otherwise types must match.
    """
    if source == target:
        return True
    if source == "int" and target == "float":
        return True
    return target == "Artifact" and source in ARTIFACT_TYPES
