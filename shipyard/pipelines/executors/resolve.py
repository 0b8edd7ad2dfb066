"""Turn a step's input sources and conditions into values, given what earlier steps produced."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from shipyard.errors import PipelineError
from shipyard.pipelines.spec import ConditionSpec

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

# (step_id, output) -> the output's value for the current iteration, or a list over all iterations.
OutputLookup = Callable[[str, str], Any]


def resolve(
    source: dict[str, Any],
    params: dict[str, Any],
    output: OutputLookup,
    collected: OutputLookup,
    item: Any = None,
) -> Any:
    """The value of one input source (``param``, ``value``, ``step``, ``loop_item`` or ``collected``)."""
    if "value" in source:
        return source["value"]
    if "param" in source:
        return params[source["param"]]
    if "loop_item" in source:
        return item
    if "step" in source:
        return output(source["step"], source["output"])
    if "collected" in source:
        return collected(source["collected"]["step"], source["collected"]["output"])
    raise PipelineError(f"unknown input source {source!r}")


def holds(condition: ConditionSpec, left: Any, right: Any) -> bool:
    """Whether ``left op right`` holds (inverted when the condition is negated)."""
    try:
        result = bool(_OPS[condition.op](left, right))
    except TypeError as exc:
        raise PipelineError(f"cannot compare {left!r} {condition.op} {right!r}: {exc}") from exc
    return result != condition.negated
