"""``shipyard export kfp``: a compiled Shipyard pipeline as Kubeflow Pipelines v2 IR (a ``PipelineSpec``).

Each step becomes a container component that runs the step's own function in an image holding the pipeline's
code and Shipyard (``python -m shipyard.export.kfp_runner``): parameters and artifacts are typed as KFP types,
``If/Elif/Else`` become condition sub-DAGs with CEL trigger conditions, ``ParallelFor`` a parameter iterator
with its parallelism limit, the exit handler an ``exit-handler`` sub-DAG with the exit task triggered when
all upstream tasks completed, and retries, caching and resource requests carry over.

What KFP cannot express is refused with the step named (:data:`REFUSED`), never dropped silently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import PipelineDefinitionError
from shipyard.pipelines.spec import ConditionSpec, PipelineSpec, StepSpec, parse_size

PARAMETER_TYPES = {
    "str": "STRING",
    "int": "NUMBER_INTEGER",
    "float": "NUMBER_DOUBLE",
    "bool": "BOOLEAN",
    "list": "LIST",
    "dict": "STRUCT",
}
ARTIFACT_TYPES = {
    "Artifact": "system.Artifact",
    "Dataset": "system.Dataset",
    "Model": "system.Model",
    "Metrics": "system.Metrics",
    "HTML": "system.HTML",
}
_CEL_OPS = {"==": "==", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
# The Shipyard features with no KFP v2 equivalent: an export that would need one is refused, naming the step.
REFUSED = {
    "timeout_s": "a per-step timeout (KFP v2's IR has none)",
    "collected": "fan-in of a ParallelFor's outputs (Collected)",
    "outside": "an output of a step inside an If or ParallelFor used outside it",
}
RUNNER = ["python", "-m", "shipyard.export.kfp_runner"]


@dataclass
class _Group:
    """A DAG: the root, the exit handler's, a loop's or a condition's."""

    name: str
    parent: _Group | None
    kind: str  # root | exit | loop | condition
    members: list[str] = field(default_factory=list)  # task names (steps and groups), in order
    conditions: tuple[ConditionSpec, ...] = ()
    loop_items: dict[str, Any] | None = None
    loop_id: str | None = None
    parallelism: int | None = None
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel -> its definition
    trigger: str | None = None  # a condition's CEL expression
    iterator: dict[str, Any] | None = None  # a loop's parameterIterator

    def path(self) -> list[_Group]:
        chain: list[_Group] = []
        node: _Group | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]


def export_kfp(spec: PipelineSpec, image: str, *, sdk_version: str = "") -> dict[str, Any]:
    """The KFP v2 ``PipelineSpec`` (as a dict in its JSON/YAML form) for ``spec``, each step run in ``image``.

    Raises:
        PipelineDefinitionError: the pipeline uses something KFP cannot express; the step and the feature
            are named.
    """
    return _Exporter(spec, image, sdk_version).build()


class _Exporter:
    def __init__(self, spec: PipelineSpec, image: str, sdk_version: str) -> None:
        self.spec = spec
        self.image = image
        self.sdk_version = sdk_version
        self.root = _Group("root", None, "root")
        self.groups: dict[str, _Group] = {"root": self.root}
        self.group_of: dict[str, _Group] = {}  # step id -> the group it runs in
        self.task_name: dict[str, str] = {}
        self.produced_by: dict[str, tuple[str, str]] = {}  # a step output's channel -> (step id, output)
        self.counter = 0
        self.components: dict[str, Any] = {}
        self.executors: dict[str, Any] = {}

    # ------------------------------------------------------------------ layout
    def build(self) -> dict[str, Any]:
        self._check_steps()
        self._name_tasks()
        self._place_steps()
        tasks: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.groups}
        for step_id, step in self.spec.steps.items():
            tasks[self.group_of[step_id].name][self.task_name[step_id]] = self._step_task(step_id, step)
            self._component(step_id, step)
        # Every channel a condition or a loop needs is known before any group's inputs are written.
        for group in self.groups.values():
            if group.kind == "condition":
                group.trigger = self._condition(group)
            elif group.kind == "loop":
                group.iterator = self._iterator(group)
        for group in self.groups.values():
            if group.parent is not None:
                tasks[group.parent.name][group.name] = self._group_task(group)
        for group in self.groups.values():
            self._add_dependencies(group, tasks[group.name])
        for group in self.groups.values():
            if group.parent is not None:
                self.components[f"comp-{group.name}"] = {
                    "dag": {"tasks": tasks[group.name]},
                    "inputDefinitions": _definitions(group.inputs),
                }
        root_inputs = {
            name: _root_parameter(param.type_name, param.required, param.default, name)
            for name, param in self.spec.parameters.items()
        }
        document: dict[str, Any] = {
            "pipelineInfo": {"name": _kfp_name(self.spec.name)},
            "sdkVersion": self.sdk_version or "shipyard",
            "schemaVersion": "2.1.0",
            "components": dict(sorted(self.components.items())),
            "deploymentSpec": {"executors": dict(sorted(self.executors.items()))},
            "root": {"dag": {"tasks": tasks["root"]}},
        }
        if root_inputs:
            document["root"]["inputDefinitions"] = {"parameters": root_inputs}
        # A plain tree: no object shared between places (YAML would write anchors for them).
        return json.loads(json.dumps(document))

    def _check_steps(self) -> None:
        for step_id, step in self.spec.steps.items():
            if step.timeout_s is not None:
                self._refuse(step_id, "timeout_s", f"timeout_s={step.timeout_s:g}")
            sources = [i.source for i in step.inputs.values()]
            if any("collected" in s for s in sources):
                self._refuse(step_id, "collected", "an input collected from a loop")
            for name, value in step.inputs.items():
                if value.type_name not in PARAMETER_TYPES and value.type_name not in ARTIFACT_TYPES:
                    raise PipelineDefinitionError(
                        f"step {step_id!r} input {name!r} has type {value.type_name}, which has no KFP type"
                    )
            for name, value in step.outputs.items():
                if value.type_name not in PARAMETER_TYPES and value.type_name not in ARTIFACT_TYPES:
                    raise PipelineDefinitionError(
                        f"step {step_id!r} output {name!r} has type {value.type_name}, which has no KFP type"
                    )
            for condition in step.conditions:
                if condition.op not in _CEL_OPS:
                    raise PipelineDefinitionError(
                        f"step {step_id!r}: condition operator {condition.op!r} has no CEL equivalent"
                    )
        exits = [s for s, step in self.spec.steps.items() if step.is_exit_handler]
        if len(exits) > 1:
            raise PipelineDefinitionError(
                f"steps {exits[0]!r} and {exits[1]!r} are both exit handlers; a KFP export takes one"
            )

    def _refuse(self, step_id: str, feature: str, detail: str) -> None:
        raise PipelineDefinitionError(
            f"step {step_id!r} uses {REFUSED[feature]} ({detail}), which a KFP pipeline cannot express; "
            "remove it to export"
        )

    def _name_tasks(self) -> None:
        used: set[str] = set()
        for step_id in self.spec.steps:
            base = _kfp_name(step_id)
            name, n = base, 2
            while name in used or re.fullmatch(r"(exit-handler|for-loop|condition)-\d+", name):
                name, n = f"{base}-{n}", n + 1
            used.add(name)
            self.task_name[step_id] = name

    def _new_group(self, kind: str, parent: _Group, **facts: Any) -> _Group:
        self.counter += 1
        prefix = {"exit": "exit-handler", "loop": "for-loop", "condition": "condition"}[kind]
        group = _Group(f"{prefix}-{self.counter}", parent, kind, **facts)
        self.groups[group.name] = group
        parent.members.append(group.name)
        return group

    def _place_steps(self) -> None:
        exits = [step for step in self.spec.steps.values() if step.is_exit_handler]
        # The steps inside the ExitHandler block (the exit step runs after them); others stay at the root.
        guarded = set(exits[0].after) if exits else set()
        body = self._new_group("exit", self.root) if exits else self.root
        loops: dict[str, _Group] = {}
        conditions: dict[tuple[str, str], _Group] = {}
        for step_id, step in self.spec.steps.items():
            group = body if step_id in guarded else self.root
            if step.loop is not None:
                loop = loops.get(step.loop.loop_id)
                if loop is None:
                    loop = self._new_group(
                        "loop",
                        group,
                        loop_items=step.loop.items,
                        loop_id=step.loop.loop_id,
                        parallelism=step.loop.parallelism,
                    )
                    loops[step.loop.loop_id] = loop
                group = loop
            if step.conditions:
                key = (
                    group.name,
                    json.dumps([vars(c) for c in step.conditions], sort_keys=True, default=str),
                )
                condition = conditions.get(key)
                if condition is None:
                    condition = self._new_group("condition", group, conditions=step.conditions)
                    conditions[key] = condition
                group = condition
            group.members.append(self.task_name[step_id])
            self.group_of[step_id] = group

    # ------------------------------------------------------------------ tasks
    def _step_task(self, step_id: str, step: StepSpec) -> dict[str, Any]:
        group = self.group_of[step_id]
        parameters: dict[str, Any] = {}
        artifacts: dict[str, Any] = {}
        for name, value in step.inputs.items():
            binding = self._bind(value.source, group, step_id, name, value.type_name)
            (artifacts if value.type_name in ARTIFACT_TYPES else parameters)[name] = binding
        name = self.task_name[step_id]
        task: dict[str, Any] = {
            "taskInfo": {"name": name},
            "componentRef": {"name": f"comp-{name}"},
            "cachingOptions": {"enableCache": step.cache},
        }
        inputs = {k: v for k, v in (("parameters", parameters), ("artifacts", artifacts)) if v}
        if inputs:
            task["inputs"] = inputs
        if step.retries:
            backoff = max(1, round(step.retry_backoff_s))
            task["retryPolicy"] = {
                "maxRetryCount": step.retries,
                "backoffDuration": f"{backoff}s",
                "backoffFactor": 2.0,
                "backoffMaxDuration": "3600s",
            }
        if step.is_exit_handler:
            task["triggerPolicy"] = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        return task

    def _group_task(self, group: _Group) -> dict[str, Any]:
        assert group.parent is not None
        task: dict[str, Any] = {
            "taskInfo": {"name": group.name},
            "componentRef": {"name": f"comp-{group.name}"},
        }
        if group.trigger is not None:
            task["triggerPolicy"] = {"condition": group.trigger}
        if group.iterator is not None:
            task["parameterIterator"] = group.iterator
            if group.parallelism:
                task["iteratorPolicy"] = {"parallelismLimit": group.parallelism}
        parameters, artifacts = {}, {}
        for channel, definition in sorted(group.inputs.items()):
            if channel.startswith("pipelinechannel--loop-item-") and group.kind == "loop":
                continue  # the iterator sets it
            source = self._channel_source(channel, group.parent)
            (artifacts if "artifactType" in definition else parameters)[channel] = source
        inputs = {k: v for k, v in (("parameters", parameters), ("artifacts", artifacts)) if v}
        if inputs:
            task["inputs"] = inputs
        return task

    def _iterator(self, group: _Group) -> dict[str, Any]:
        assert group.loop_items is not None and group.loop_id is not None and group.parent is not None
        item = f"pipelinechannel--loop-item-{_kfp_name(group.loop_id)}"
        group.inputs[item] = {"parameterType": "STRING"}
        if "value" in group.loop_items:
            return {"itemInput": item, "items": {"raw": json.dumps(group.loop_items["value"])}}
        channel = self._channel(group.loop_items, group.parent, f"loop {group.loop_id!r}", "list")
        group.inputs.setdefault(channel, {"parameterType": "LIST"})
        return {"itemInput": item, "items": {"inputParameter": channel}}

    def _condition(self, group: _Group) -> str:
        assert group.parent is not None
        clauses = []
        for condition in group.conditions:
            right_source = condition.right_source or {"value": condition.right}
            numeric = any(_is_number(s.get("value")) for s in (condition.left, right_source))
            left = self._operand(condition.left, group, numeric)
            right = self._operand(right_source, group, numeric)
            clause = f"{left} {_CEL_OPS[condition.op]} {right}"
            clauses.append(f"!({clause})" if condition.negated else clause)
        return " && ".join(clauses)

    def _operand(self, source: dict[str, Any], group: _Group, numeric: bool) -> str:
        if "value" in source:
            return json.dumps(source["value"])
        assert group.parent is not None
        channel = self._channel(source, group.parent, f"the condition of {group.name}", None)
        definition = self._definition_of(source)
        group.inputs.setdefault(channel, definition)
        value = f"inputs.parameter_values['{channel}']"
        # A loop item arrives as a string: compared with a number, it is read as one.
        if "loop_item" in source and numeric:
            value = f"double({value})"
        return value

    # -------------------------------------------------------------- channels
    def _bind(
        self, source: dict[str, Any], group: _Group, step_id: str, name: str, type_name: str
    ) -> dict[str, Any]:
        artifact = type_name in ARTIFACT_TYPES
        if "value" in source:
            return {"runtimeValue": {"constant": source["value"]}}
        if "step" in source and self.group_of[source["step"]] is group:
            return self._task_output(source["step"], source["output"])
        if "param" in source and group is self.root:
            return {"componentInputParameter": source["param"]}
        channel = self._channel(source, group, f"step {step_id!r} input {name!r}", type_name)
        return {("componentInputArtifact" if artifact else "componentInputParameter"): channel}

    def _channel(self, source: dict[str, Any], group: _Group, user: str, type_name: str | None) -> str:
        """The channel that brings ``source`` into ``group``'s DAG, declared on every group between the DAG
        that has it and ``group``."""
        if "param" in source:
            channel, home = f"pipelinechannel--{source['param']}", self.root
        elif "loop_item" in source:
            home = next(
                g for g in self.groups.values() if g.kind == "loop" and g.loop_id == source["loop_item"]
            )
            channel = f"pipelinechannel--loop-item-{_kfp_name(source['loop_item'])}"
            return self._carry(channel, home, group, user, {"parameterType": "STRING"})
        else:
            producer = source["step"]
            home = self.group_of[producer]
            channel = f"pipelinechannel--{self.task_name[producer]}-{source['output']}"
            self.produced_by[channel] = (producer, source["output"])
            if home not in group.path():
                raise PipelineDefinitionError(
                    f"{user} uses output {source['output']!r} of step {producer!r}, which runs inside "
                    f"{home.name}; {REFUSED['outside']} is something a KFP pipeline cannot express"
                )
        return self._carry(channel, home, group, user, self._definition_of(source))

    def _carry(
        self, channel: str, home: _Group, group: _Group, user: str, definition: dict[str, Any] | None = None
    ) -> str:
        chain = group.path()
        if home not in chain:
            raise PipelineDefinitionError(f"{user} uses a loop item outside its ParallelFor")
        for node in chain[chain.index(home) + 1 :]:
            if definition is not None:
                node.inputs.setdefault(channel, definition)
        return channel

    def _channel_source(self, channel: str, parent: _Group) -> dict[str, Any]:
        """How a group task in ``parent``'s DAG gets ``channel``."""
        if parent is self.root or channel in parent.inputs:
            if parent is self.root:
                name = channel.removeprefix("pipelinechannel--")
                if name in self.spec.parameters:
                    return {"componentInputParameter": name}
            else:
                artifact = "artifactType" in parent.inputs[channel]
                return {("componentInputArtifact" if artifact else "componentInputParameter"): channel}
        producer = self.produced_by.get(channel)
        if producer is not None and self.group_of[producer[0]] is parent:
            return self._task_output(*producer)
        if channel.startswith("pipelinechannel--loop-item-") and parent.kind == "loop":
            return {"componentInputParameter": channel}
        raise PipelineDefinitionError(f"internal: no source for {channel} in {parent.name}")

    def _task_output(self, step_id: str, output: str) -> dict[str, Any]:
        """A step's output, taken from its task in the same DAG."""
        task = self.task_name[step_id]
        if self.spec.steps[step_id].outputs[output].type_name in ARTIFACT_TYPES:
            return {"taskOutputArtifact": {"producerTask": task, "outputArtifactKey": output}}
        return {"taskOutputParameter": {"producerTask": task, "outputParameterKey": output}}

    def _definition_of(self, source: dict[str, Any]) -> dict[str, Any]:
        if "param" in source:
            return {"parameterType": PARAMETER_TYPES[self.spec.parameters[source["param"]].type_name]}
        if "loop_item" in source:
            return {"parameterType": "STRING"}
        return _io_type(self.spec.steps[source["step"]].outputs[source["output"]].type_name)

    # ------------------------------------------------------------ ordering
    def _add_dependencies(self, group: _Group, tasks: dict[str, dict[str, Any]]) -> None:
        """dependentTasks of each task in ``group``'s DAG: the sibling holding each upstream step."""
        needs: dict[str, set[str]] = {name: set() for name in tasks}
        for step_id, step in self.spec.steps.items():
            for upstream in step.upstream():
                here = self._child_in(group, step_id)
                there = self._child_in(group, upstream)
                if here is not None and there is not None and here != there:
                    needs[here].add(there)
        if group is self.root:
            exit_body = next((g for g in self.groups.values() if g.kind == "exit"), None)
            for step_id, step in self.spec.steps.items():
                if step.is_exit_handler and exit_body is not None:
                    needs[self.task_name[step_id]].add(exit_body.name)
        for name, upstream in needs.items():
            if upstream:
                tasks[name]["dependentTasks"] = sorted(upstream)

    def _child_in(self, group: _Group, step_id: str) -> str | None:
        """The task in ``group``'s DAG that holds ``step_id`` (the step itself, or a sub-DAG around it)."""
        chain = self.group_of[step_id].path()
        if group not in chain:
            return None
        index = chain.index(group)
        return self.task_name[step_id] if index == len(chain) - 1 else chain[index + 1].name

    # ---------------------------------------------------------- components
    def _component(self, step_id: str, step: StepSpec) -> None:
        name = self.task_name[step_id]
        inputs = {input_name: _io_type(value.type_name) for input_name, value in step.inputs.items()}
        outputs = {output_name: _io_type(value.type_name) for output_name, value in step.outputs.items()}
        component: dict[str, Any] = {"executorLabel": f"exec-{name}"}
        if inputs:
            component["inputDefinitions"] = _definitions(inputs)
        if outputs:
            component["outputDefinitions"] = _definitions(outputs)
        self.components[f"comp-{name}"] = component
        args = ["--component", f"{step.component.module}:{step.component.function}"]
        args += ["--pipeline", self.spec.name, "--step", step_id]
        # KFP's placeholders: an artifact's local path, a parameter's value, an output parameter's file.
        ends = {"inputs": ("']}}", "'].path}}"), "outputs": ("'].output_file}}", "'].path}}")}
        for side, items in (("inputs", step.inputs), ("outputs", step.outputs)):
            option = "--input" if side == "inputs" else "--output"
            for item, value in items.items():
                artifact = value.type_name in ARTIFACT_TYPES
                kind = "artifacts" if artifact else "parameters"
                placeholder = "{{$." + f"{side}.{kind}['{item}" + ends[side][artifact]
                args += [
                    f"{option}-artifact" if artifact else option,
                    f"{item}:{value.type_name}={placeholder}",
                ]
        container: dict[str, Any] = {"image": self.image, "command": list(RUNNER), "args": args}
        resources = _resources(step, step_id)
        if resources:
            container["resources"] = resources
        self.executors[f"exec-{name}"] = {"container": container}


def _resources(step: StepSpec, step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    r = step.resources
    if r.cpus is not None:
        found["cpuRequest"] = float(r.cpus)
        found["resourceCpuRequest"] = f"{r.cpus:g}"
    if r.memory is not None:
        try:
            size = parse_size(r.memory)
        except PipelineDefinitionError as exc:
            raise PipelineDefinitionError(f"step {step_id!r}: {exc}") from exc
        found["memoryRequest"] = size / 10**9
        found["resourceMemoryRequest"] = str(r.memory).strip()
    if r.gpus:
        found["accelerator"] = {
            "type": "nvidia.com/gpu",
            "count": str(r.gpus),
            "resourceType": "nvidia.com/gpu",
            "resourceCount": str(r.gpus),
        }
    return found


def _definitions(items: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    parameters = {k: v for k, v in sorted(items.items()) if "parameterType" in v}
    artifacts = {k: v for k, v in sorted(items.items()) if "artifactType" in v}
    if parameters:
        found["parameters"] = parameters
    if artifacts:
        found["artifacts"] = artifacts
    return found


def _io_type(type_name: str) -> dict[str, Any]:
    """An input's or output's KFP type: an artifact type, or a parameter type."""
    if type_name in ARTIFACT_TYPES:
        return {"artifactType": {"schemaTitle": ARTIFACT_TYPES[type_name], "schemaVersion": "0.0.1"}}
    return {"parameterType": PARAMETER_TYPES[type_name]}


def _root_parameter(type_name: str, required: bool, default: Any, name: str) -> dict[str, Any]:
    if type_name not in PARAMETER_TYPES:
        raise PipelineDefinitionError(
            f"pipeline parameter {name!r} has type {type_name}, which has no KFP type"
        )
    found: dict[str, Any] = {"parameterType": PARAMETER_TYPES[type_name]}
    if not required:
        found["isOptional"] = True
        if default is not None:
            found["defaultValue"] = default
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kfp_name(name: str) -> str:
    """KFP's task/component name form: lower case, digits and '-'."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", name.lower())).strip("-") or "step"
