"""Search spaces: typed parameters (float, int, categorical), maybe conditional, suggested through Optuna.

A parameter with a ``condition`` (``{parent: [values…]}``) exists in a trial only when its parent took one of
those values (a dropout rate only for the ``dart`` booster); a parent must come earlier in the list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shipyard.errors import InvalidInput

Choice = str | int | float | bool


class Parameter(BaseModel):
    """One hyperparameter. ``float``/``int`` take ``low``/``high`` (inclusive), ``step`` or ``log``;
    ``categorical`` takes ``choices``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Choice] | None = None
    condition: dict[str, list[Choice]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        where = f"parameter {self.name!r}"
        if self.type == "categorical":
            if not self.choices:
                raise ValueError(f"{where}: categorical needs a non-empty `choices` list")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"{where}: `choices` repeat a value")
            extra = [k for k in ("low", "high", "step") if getattr(self, k) is not None] + (
                ["log"] if self.log else []
            )
            if extra:
                raise ValueError(f"{where}: categorical takes `choices`, not {', '.join(extra)}")
            return self
        if self.choices is not None:
            raise ValueError(f"{where}: {self.type} takes low/high, not `choices`")
        if self.low is None or self.high is None:
            raise ValueError(f"{where}: {self.type} needs both `low` and `high`")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"{where}: low and high must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"{where}: low {self.low:g} is greater than high {self.high:g}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"{where}: step must be > 0, got {self.step:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"{where}: a log scale needs low > 0, got {self.low:g}")
        if self.type == "float" and self.log and self.step is not None:
            raise ValueError(f"{where}: use either `log` or `step`, not both")
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if value is not None and value != int(value):
                    raise ValueError(f"{where}: int {key} must be a whole number, got {value:g}")
            if self.log and self.step not in (None, 1):
                raise ValueError(f"{where}: an int log scale needs step 1")
        return self

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution this parameter is sampled from."""
        if self.type == "categorical":
            assert self.choices is not None
            return optuna.distributions.CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial) -> Choice:
        """This parameter's value in ``trial``, from the study's sampler."""
        if self.type == "categorical":
            assert self.choices is not None
            return trial.suggest_categorical(self.name, self.choices)  # type: ignore[arg-type]
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step or 1)
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=step, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Choice]:
        """Every value a grid search tries.

        Raises:
            InvalidInput: a float without ``step`` (a grid needs a finite set of values).
        """
        if self.type == "categorical":
            assert self.choices is not None
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise InvalidInput(f"parameter {self.name!r}: grid search needs a `step` for a float parameter")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


class SearchSpace:
    """An ordered list of parameters, checked as a whole (unique names, conditions on earlier parents)."""

    def __init__(self, parameters: Sequence[Parameter]) -> None:
        if not parameters:
            raise InvalidInput("the search space is empty: give at least one parameter")
        seen: dict[str, Parameter] = {}
        for parameter in parameters:
            if parameter.name in seen:
                raise InvalidInput(f"parameter {parameter.name!r} is defined twice")
            for parent, values in (parameter.condition or {}).items():
                if parent not in seen:
                    raise InvalidInput(
                        f"parameter {parameter.name!r}: its condition names {parent!r}, which is not a "
                        "parameter defined before it"
                    )
                if not values:
                    raise InvalidInput(
                        f"parameter {parameter.name!r}: the condition on {parent!r} lists no values"
                    )
                choices = seen[parent].choices
                unknown = [v for v in values if choices is not None and v not in choices]
                if unknown:
                    raise InvalidInput(
                        f"parameter {parameter.name!r}: its condition on {parent!r} names {unknown!r}, "
                        f"which are not among {parent!r}'s choices {choices!r}"
                    )
            seen[parameter.name] = parameter
        self.parameters = list(parameters)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def conditional(self) -> bool:
        return any(p.condition for p in self.parameters)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The parameters of ``trial``: each one whose condition holds, suggested by the study's sampler."""
        values: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter.condition and not all(
                parent in values and values[parent] in allowed
                for parent, allowed in parameter.condition.items()
            ):
                continue
            values[parameter.name] = parameter.suggest(trial)
        return values

    def grid(self) -> dict[str, list[Choice]]:
        """The grid for Optuna's GridSampler.

        Raises:
            InvalidInput: a conditional parameter (a grid is a full product) or a float without a step.
        """
        for parameter in self.parameters:
            if parameter.condition:
                raise InvalidInput(
                    f"parameter {parameter.name!r}: grid search cannot take conditional parameters"
                )
        return {p.name: p.grid_values() for p in self.parameters}

    def size(self) -> int | None:
        """How many points a grid has (None when some parameter is continuous)."""
        total = 1
        for parameter in self.parameters:
            if parameter.type == "float" and parameter.step is None:
                return None
            total *= len(parameter.grid_values())
        return total


__all__ = ["Choice", "Parameter", "SearchSpace"]
