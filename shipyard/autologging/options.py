"""What autologging logs: the options one ``autolog()`` call sets for one library."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.config import Settings
from shipyard.errors import InvalidInput

INPUT_EXAMPLE_ROWS = 5
"""How many training rows a logged model keeps as its input example (MLflow keeps as many)."""


@dataclass(frozen=True)
class AutologOptions:
    """The options of ``shipyard.autolog`` (see its docstring), frozen for one library."""

    log_models: bool = True
    log_input_examples: bool = True
    log_model_signatures: bool = True
    log_datasets: bool = True
    exclusive: bool = False
    silent: bool = False
    max_tuning_runs: int | None = 5
    registered_model_name: str | None = None
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    settings: Settings | None = None

    def __post_init__(self) -> None:
        if self.max_tuning_runs is not None and (
            not isinstance(self.max_tuning_runs, int) or self.max_tuning_runs < 0
        ):
            raise InvalidInput(f"max_tuning_runs must be None or an int >= 0, got {self.max_tuning_runs!r}")

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> AutologOptions:
        """Options from keyword arguments; an unknown name is an error that lists the known ones."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(
                f"autolog got unknown option(s) {', '.join(unknown)}; it takes: {', '.join(sorted(known))}"
            )
        options = dict(values)
        options["extra_tags"] = dict(options.get("extra_tags") or {})
        return cls(**options)
