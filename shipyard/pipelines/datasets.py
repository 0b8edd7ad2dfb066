"""Dataset versions as step inputs: ``train(data="data:customers@3")`` for an ``Input[Dataset]``.

A ``data:`` reference may be given to a ``Dataset`` (or plain ``Artifact``) input as a literal, through a
``str`` pipeline parameter (``--param data=data:customers@4``) or as a ``ParallelFor`` item. The engine
resolves each reference once per pipeline run — ``data:customers`` (the newest version) is pinned to the
number it had when first read, and a resumed run reads the same numbers — and hands the step a read-only
local copy, built by the worker that runs it (see :func:`shipyard.pipelines.staging.staged`), so a Ray
node far from the engine gets one too. The cache key uses the version's snapshot hash, and lineage records
the input under its ``data:name@version`` URI, the same node ``log_input("data:customers@3")`` makes, so
lineage runs from the dataset version through the step to whatever it produced.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipyard.datasets.refs import is_dataset_uri, parse_ref
from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines.spec import PipelineSpec

if TYPE_CHECKING:
    from shipyard.datasets.records import DatasetVersion
    from shipyard.tracking import TrackingClient

# The input types a dataset version may feed: it is a Dataset, and any artifact fits an Artifact input.
DATASET_INPUT_TYPES = frozenset({"Dataset", "Artifact"})
# On the pipeline run: each reference to a newest version (data:customers) → the version it read, as JSON.
PINNED_TAG = "shipyard.dataset_versions"


def check_reference(where: str, type_name: str, value: Any) -> None:
    """Refuse a ``data:`` reference that cannot feed an input of ``type_name`` or does not parse.

    Raises:
        InvalidInput: naming ``where`` (the step and argument) and what is wrong.
    """
    if type_name not in DATASET_INPUT_TYPES:
        raise InvalidInput(f"{where} is a {type_name} artifact; a dataset version {value!r} feeds a Dataset")
    try:
        parse_ref(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from exc


def static_references(spec: PipelineSpec, params: dict[str, Any]) -> list[tuple[str, str]]:
    """Every dataset reference known before any step runs (literals and parameters), as (where, ref).

    Raises:
        InvalidInput: a parameter feeding an artifact input whose value is not a ``data:`` reference, or a
            reference that cannot feed its input, naming the step, the input and the parameter.
    """
    from shipyard.pipelines.types import ARTIFACT_TYPES

    found = []
    for sid, step in spec.steps.items():
        for name, inp in step.inputs.items():
            if inp.type_name not in ARTIFACT_TYPES:
                continue
            where = f"step {sid!r} input {name!r}"
            if "param" in inp.source:
                value = params.get(inp.source["param"])
                if not is_dataset_uri(value):
                    raise InvalidInput(
                        f"{where} is a {inp.type_name} artifact, so pipeline parameter "
                        f"{inp.source['param']!r} must be a dataset version such as data:customers@3, "
                        f"got {value!r}"
                    )
            elif "value" in inp.source and is_dataset_uri(inp.source["value"]):
                value = inp.source["value"]
            else:
                continue
            check_reference(where, inp.type_name, value)
            found.append((where, value))
    return found


class DatasetPins:
    """The dataset versions one pipeline run reads: each reference resolved once, then kept."""

    def __init__(self, client: TrackingClient, pinned: dict[str, str] | None = None) -> None:
        from shipyard.datasets import DatasetClient

        self.datasets = DatasetClient(client)
        self.pinned: dict[str, str] = dict(pinned or {})
        self.versions: dict[str, DatasetVersion] = {}

    def resolve(self, ref: str, where: str) -> DatasetVersion:
        """The version ``ref`` names in this run (the pinned number for ``data:customers``).

        Raises:
            NotFound: no such dataset or version. InvalidInput: a malformed reference. Both name ``where``.
        """
        if ref not in self.versions:
            try:
                version = self.datasets.version(self.pinned.get(ref, ref))
            except NotFound as exc:
                raise NotFound(f"{where} reads {ref!r}: {exc}") from exc
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: {exc}") from exc
            self.versions[ref] = version
            if parse_ref(ref).version is None:  # data:customers: the number it had now, kept for resumptions
                self.pinned[ref] = version.uri
        return self.versions[ref]

    def pin(self, spec: PipelineSpec, params: dict[str, Any]) -> None:
        """Resolve every reference known before the run starts, so a missing version stops it there.

        Raises:
            InvalidInput, NotFound: as :func:`static_references` and :meth:`resolve`.
        """
        for where, ref in static_references(spec, params):
            self.resolve(ref, where)

    def tag(self) -> dict[str, str]:
        """The pipeline run tag recording the pins, so a resumed run reads the same versions."""
        return {PINNED_TAG: json.dumps(self.pinned, sort_keys=True)}


def pinned_from(tags: dict[str, str]) -> dict[str, str]:
    """The pins a pipeline run recorded (none when it read no dataset version)."""
    try:
        pins = json.loads(tags.get(PINNED_TAG, "{}"))
    except ValueError:
        return {}
    if not isinstance(pins, dict):
        return {}
    return {k: v for k, v in pins.items() if is_dataset_uri(k) and is_dataset_uri(v)}
