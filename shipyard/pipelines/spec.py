"""The compiled pipeline: a versioned, portable spec that executors run, with YAML and dict forms.

The spec names each step's code (module, function, source hash), its typed inputs with where each comes
from, its outputs, dependencies, conditions, loop and run options. Loading checks it against the JSON schema
shipped in the package and checks every reference; a problem in a YAML file names its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shipyard.errors import PipelineDefinitionError
from shipyard.pipelines.schema import Path, pipeline_spec_schema, schema_problems

SPEC_VERSION = "shipyard.pipeline/v1"


@dataclass(frozen=True)
class ParameterSpec:
    """A pipeline parameter: its type and, unless required, its default."""

    type_name: str
    required: bool
    default: Any = None


@dataclass(frozen=True)
class ComponentRef:
    """Which code a step runs; ``source_sha256`` is the hash of the function's dedented source."""

    module: str
    function: str
    source_sha256: str
    version: str


@dataclass(frozen=True)
class InputSpec:
    """A step input: its type and source (``{"param": p}``, ``{"step": s, "output": o}``, ``{"value": v}``,
    ``{"loop_item": loop_id}`` or ``{"collected": {"step": s, "output": o}}``)."""

    type_name: str
    source: dict[str, Any]


@dataclass(frozen=True)
class OutputSpec:
    """A step output: its type and whether it is a parameter or an artifact."""

    type_name: str
    kind: str


@dataclass(frozen=True)
class ConditionSpec:
    """``left op right`` (``left`` a source as in :class:`InputSpec`), negated for Elif/Else branches.

    ``right`` is a literal, unless ``right_source`` names where it comes from (a pipeline parameter, another
    step's output) as ``left`` does.
    """

    left: dict[str, Any]
    op: str
    right: Any
    negated: bool = False
    right_source: dict[str, Any] | None = None


@dataclass(frozen=True)
class LoopSpec:
    """The ``ParallelFor`` a step runs in: one run per item of ``items`` (a source)."""

    loop_id: str
    items: dict[str, Any]
    parallelism: int | None = None


@dataclass(frozen=True)
class Resources:
    """Resource hints for the executor."""

    cpus: float | None = None
    gpus: int | None = None
    memory: str | None = None

    @property
    def memory_bytes(self) -> int | None:
        """``memory`` in bytes: a number with an optional unit (Ki/Mi/Gi/Ti or k/M/G/T), like ``"2Gi"``.

        Raises:
            PipelineDefinitionError: not a size.
        """
        return None if self.memory is None else parse_size(self.memory)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?|k)?\s*(?:[bB])?\s*")
_UNITS = {None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
# libyaml's parser when present: the pure-Python one took ~5 s for a 2,000-step spec (877 KiB).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_size(text: str) -> int:
    """Bytes in a size like ``"512Mi"``, ``"2Gi"``, ``"1.5G"`` or ``"1048576"``."""
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise PipelineDefinitionError(f"memory {text!r} is not a size; use bytes or a unit: 512Mi, 2Gi, 1G")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class StepSpec:
    """One step. ``after`` lists explicit ordering; data dependencies follow from inputs and conditions."""

    component: ComponentRef
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    conditions: tuple[ConditionSpec, ...] = ()
    loop: LoopSpec | None = None
    retries: int = 0
    retry_backoff_s: float = 1.0
    timeout_s: float | None = None
    cache: bool = True
    resources: Resources = field(default_factory=Resources)
    is_exit_handler: bool = False
    workers: int = 1  # above 1: the step runs as a training job of that many processes

    def upstream(self) -> set[str]:
        """Every step that must finish before this one starts."""
        sources = [i.source for i in self.inputs.values()] + [c.left for c in self.conditions]
        sources += [c.right_source for c in self.conditions if c.right_source is not None]
        if self.loop is not None:
            sources.append(self.loop.items)
        steps = {s.get("step") or s.get("collected", {}).get("step") for s in sources}
        return (steps - {None}) | set(self.after)  # type: ignore[operator]


@dataclass(frozen=True)
class PipelineSpec:
    """A compiled pipeline, in step order (a step comes after everything it depends on)."""

    name: str
    parameters: dict[str, ParameterSpec]
    steps: dict[str, StepSpec]
    spec_version: str = SPEC_VERSION
    # Where the components' modules were importable from at compile time (not part of any cache key): a
    # run or scheduler started in another folder imports them from here.
    project_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict in the schema's layout."""
        params = {
            n: {"type": p.type_name, "required": True}
            if p.required
            else {"type": p.type_name, "default": p.default}
            for n, p in self.parameters.items()
        }
        data: dict[str, Any] = {
            "spec_version": self.spec_version,
            "name": self.name,
            "parameters": params,
            "steps": {sid: _step_to_dict(s) for sid, s in self.steps.items()},
        }
        if self.project_dir is not None:
            data["project_dir"] = self.project_dir
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineSpec:
        """Build a spec from its dict form, checking the schema and every reference.

        Raises:
            PipelineDefinitionError: naming the field path of the first problem.
        """
        spec, problem = _load(data)
        if problem is not None:
            path, message = problem
            raise PipelineDefinitionError(
                f"invalid pipeline spec at {'.'.join(map(str, path)) or '<root>'}: {message}"
            )
        assert spec is not None
        return spec

    def to_yaml(self) -> str:
        """The spec as YAML, keys in the documented order."""
        # libyaml's emitter when present: the pure-Python one spent ~4 ms a step on big specs.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        return yaml.dump(self.to_dict(), Dumper=dumper, sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<string>") -> PipelineSpec:
        """Parse a YAML spec; errors name ``source``, the line, and the step and field at fault."""
        try:
            data = yaml.load(text, Loader=_LOADER)
        except yaml.YAMLError as exc:
            raise PipelineDefinitionError(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise PipelineDefinitionError(f"{source}: a pipeline spec must be a mapping")
        spec, problem = _load(data)
        if problem is not None:
            path, message = problem
            # The node tree (for the line number) only when there is an error to place: composing costs
            # as much as loading.
            node = yaml.compose(text, Loader=_LOADER)
            raise PipelineDefinitionError(
                f"{source}, line {_line_of(node, path)}: {'.'.join(map(str, path))}: {message}"
            )
        assert spec is not None
        return spec


def _step_to_dict(step: StepSpec) -> dict[str, Any]:
    c, r = step.component, step.resources
    loop = step.loop
    return {
        "component": {
            "module": c.module,
            "function": c.function,
            "source_sha256": c.source_sha256,
            "version": c.version,
        },
        "inputs": {n: {"type": i.type_name, "from": i.source} for n, i in step.inputs.items()},
        "outputs": {n: {"type": o.type_name, "kind": o.kind} for n, o in step.outputs.items()},
        "after": list(step.after),
        "conditions": [
            {"left": x.left, "op": x.op, "right": x.right, "negated": x.negated}
            | ({} if x.right_source is None else {"right_source": x.right_source})
            for x in step.conditions
        ],
        "loop": None
        if loop is None
        else {"loop_id": loop.loop_id, "items": loop.items, "parallelism": loop.parallelism},
        "retries": step.retries,
        "retry_backoff_s": step.retry_backoff_s,
        "timeout_s": step.timeout_s,
        "cache": step.cache,
        "resources": {"cpus": r.cpus, "gpus": r.gpus, "memory": r.memory},
        "is_exit_handler": step.is_exit_handler,
    } | ({"workers": step.workers} if step.workers != 1 else {})


def _step_from_dict(d: dict[str, Any]) -> StepSpec:
    loop = d["loop"]
    return StepSpec(
        component=ComponentRef(**d["component"]),
        inputs={n: InputSpec(i["type"], i["from"]) for n, i in d["inputs"].items()},
        outputs={n: OutputSpec(o["type"], o["kind"]) for n, o in d["outputs"].items()},
        after=tuple(d["after"]),
        conditions=tuple(
            ConditionSpec(x["left"], x["op"], x["right"], x["negated"], x.get("right_source"))
            for x in d["conditions"]
        ),
        loop=None if loop is None else LoopSpec(loop["loop_id"], loop["items"], loop["parallelism"]),
        retries=d["retries"],
        retry_backoff_s=d["retry_backoff_s"],
        timeout_s=d["timeout_s"],
        cache=d["cache"],
        resources=Resources(**d["resources"]),
        is_exit_handler=d["is_exit_handler"],
        workers=d.get("workers", 1),
    )


def _load(data: dict[str, Any]) -> tuple[PipelineSpec | None, tuple[Path, str] | None]:
    schema = pipeline_spec_schema()
    problems = schema_problems(data, schema, schema)
    if problems:
        return None, problems[0]
    params = {
        n: ParameterSpec(p["type"], bool(p.get("required", "default" not in p)), p.get("default"))
        for n, p in data["parameters"].items()
    }
    steps = {s: _step_from_dict(d) for s, d in data["steps"].items()}
    spec = PipelineSpec(data["name"], params, steps, project_dir=data.get("project_dir"))
    problem = reference_problem(spec)
    return (None, problem) if problem else (spec, None)


def reference_problem(spec: PipelineSpec) -> tuple[Path, str] | None:
    """The first reference to a missing parameter, step, output or loop, as (path, message), or None."""
    for sid, step in spec.steps.items():
        refs: list[tuple[Path, dict[str, Any]]] = [
            (("steps", sid, "inputs", n, "from"), i.source) for n, i in step.inputs.items()
        ]
        refs += [(("steps", sid, "conditions", k, "left"), c.left) for k, c in enumerate(step.conditions)]
        refs += [
            (("steps", sid, "conditions", k, "right_source"), c.right_source)
            for k, c in enumerate(step.conditions)
            if c.right_source is not None
        ]
        if step.loop is not None:
            refs.append((("steps", sid, "loop", "items"), step.loop.items))
        for path, ref in refs:
            what = f"step {sid!r} {path[2]} {path[3]!r}"
            message = _bad_reference(spec, step, ref)
            if message:
                return path, f"{what}: {message}"
        for k, other in enumerate(step.after):
            if other not in spec.steps:
                return ("steps", sid, "after", k), f"step {sid!r} runs after unknown step {other!r}"
    return None


def _bad_reference(spec: PipelineSpec, step: StepSpec, ref: dict[str, Any]) -> str | None:
    if "param" in ref and ref["param"] not in spec.parameters:
        return (
            f"refers to unknown pipeline parameter {ref['param']!r}; parameters: {', '.join(spec.parameters)}"
        )
    if "loop_item" in ref and (step.loop is None or step.loop.loop_id != ref["loop_item"]):
        return f"refers to loop {ref['loop_item']!r} but the step is not inside it"
    target = ref.get("collected", ref)
    if "step" in target:
        producer = spec.steps.get(target["step"])
        if producer is None:
            return f"refers to unknown step {target['step']!r}"
        if target["output"] not in producer.outputs:
            return f"refers to unknown output {target['output']!r} of step {target['step']!r}"
    return None


def _line_of(node: yaml.Node | None, path: Path) -> int:
    """1-based line of the deepest node along ``path`` that exists in the composed YAML."""
    line = 1 if node is None else node.start_mark.line + 1
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == key]
            if not match:
                break
            line, node = match[0][0].start_mark.line + 1, match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
