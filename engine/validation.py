"""Validation before anything runs: every problem of a workflow, reported at once.

The report has ComfyUI's shape, `{error, node_errors: {id: {errors: [{type, message, details,
extra_info}], dependent_outputs, class_type}}}`, so the server returns it as JSON unchanged and
the CLI prints it line by line. Each message names the node, the input and what to do.

As in ComfyUI, only the output nodes and their ancestors are checked (a node no output needs is
never validated), and the outputs whose branch is valid form the run while the others are
reported, each problem naming the outputs it costs (`dependent_outputs`). An unknown node type
anywhere fails the whole workflow: nothing tells whether it was an output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from .awaitables import settle
from .config import Config
from .plan import dependency_cycles, execution_order, link_graph, natural_key
from .registry import Registry, types_compatible
from .expansion import ExecutionBlocker
from .spec import BooleanInput, ComboInput, Hidden, IntInput, NodeSpec, SocketInput, StringInput
from .workflow import ApiWorkflow, api_workflow, is_link, literal_value


_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NodeInstance:
    """A validated node: its spec, coerced literal values and links as (source id, output index)."""

    id: str
    spec: NodeSpec
    literals: dict[str, Any]
    links: dict[str, tuple[str, int]]
    title: str | None = None
    lazy: frozenset[str] = field(init=False)  # linked inputs evaluated only when its lazy_status asks for them
    raw_links: frozenset[str] = field(init=False)  # linked inputs given the link itself rather than the value

    def __post_init__(self) -> None:
        flagged = [inp for inp in self.spec.inputs if (inp.lazy or inp.raw_link) and inp.name in self.links]
        for flag, attribute in (("lazy", "lazy"), ("raw_link", "raw_links")):
            names = frozenset(inp.name for inp in flagged if getattr(inp, flag)) if flagged else _NONE
            object.__setattr__(self, attribute, names)


@dataclass
class ValidationReport:
    """Every problem of a workflow in ComfyUI's shape: a prompt-level `error` and `node_errors` by node id."""

    error: dict[str, Any] | None = None
    node_errors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.node_errors

    def add(self, node_id: str, class_type: str, type: str, message: str, input_name: str | None = None,
            **extra: Any) -> None:
        """Records one problem of one node."""
        entry = self.node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": [], "class_type": class_type})
        extra_info = {"input_name": input_name, **extra} if input_name else extra
        entry["errors"].append({"type": type, "message": message, "details": message, "extra_info": extra_info})

    def to_json(self) -> dict[str, Any]:
        """ComfyUI's `{error, node_errors}` document (the server's 400 body)."""
        error = self.error or {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                               "details": self.summary(), "extra_info": {}}
        return {"error": error, "node_errors": self.node_errors}

    def lines(self) -> list[str]:
        """One readable line per problem, for the terminal."""
        out = [self.error["message"]] if self.error else []
        for node_id, entry in sorted(self.node_errors.items(), key=lambda kv: natural_key(kv[0])):
            out += [f"node {node_id} ({entry['class_type']}): {e['message']}" for e in entry["errors"]]
        return out

    def summary(self) -> str:
        return "; ".join(self.lines())


@dataclass(frozen=True)
class ValidatedWorkflow:
    """What validation makes of a document: its report and, when that is ok, the checked nodes and their plan.

    `Session.run` and `Executor.run` run it as it is, so a workflow is validated and planned once.
    """

    report: ValidationReport
    nodes: Mapping[str, NodeInstance] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # the output nodes to produce, in natural order
    order: tuple[str, ...] = ()  # the outputs and their ancestors, in the order they run
    prompt: dict[str, Any] = field(default_factory=dict)  # the API-format document, for PROMPT hidden inputs

    @property
    def ok(self) -> bool:
        """Whether the workflow is runnable: some outputs are valid (`report` lists the invalid others)."""
        return self.report.error is None and bool(self.outputs)


class InvalidWorkflow(Exception):
    """Raised with the report when a workflow fails validation; nothing has run."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


def _check_widget(spec: Any, value: Any, config: Config, trusted: bool = False
                  ) -> tuple[Any, str | None, str | None]:
    """Coerces a literal widget value: returns (value, error type, message) — ComfyUI's coercions.

    A `trusted` value (one the node's validate_inputs takes) is converted but not range- or choice-checked.
    """
    if isinstance(spec, ComboInput):
        if trusted:
            return value, None, None
        choices = spec.resolve(config)
        if not isinstance(value, str) or value not in choices:
            return value, "value_not_in_list", _combo_message(spec, value, choices)
        return value, None, None
    if isinstance(spec, BooleanInput):
        if isinstance(value, bool):
            return value, None, None
        return value, "invalid_input_type", f"expected a boolean (true/false), got {value!r}"
    if isinstance(spec, StringInput):
        if isinstance(value, (list, dict)):
            return value, "invalid_input_type", f"expected a string, got {type(value).__name__}"
        return str(value), None, None
    kind, caster = ("an integer", int) if isinstance(spec, IntInput) else ("a number", float)
    try:
        if isinstance(value, bool) or isinstance(value, (list, dict)) or value is None:
            raise ValueError
        coerced = caster(float(value)) if isinstance(spec, IntInput) and not isinstance(value, int) else caster(value)
        if isinstance(spec, IntInput) and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if isinstance(coerced, float) and math.isnan(coerced):
            raise ValueError
    except (ValueError, TypeError, OverflowError):
        return value, "invalid_input_type", f"expected {kind}, got {value!r}"
    if trusted:
        return coerced, None, None
    if coerced < spec.min:
        return coerced, "value_smaller_than_min", f"value {_num(coerced)} is smaller than the minimum {_num(spec.min)}"
    if coerced > spec.max:
        return coerced, "value_bigger_than_max", f"value {_num(coerced)} is bigger than the maximum {_num(spec.max)}"
    return coerced, None, None


def _num(x: float) -> int | float:
    """A number as a person writes it: 5000 rather than 5000.0."""
    return int(x) if float(x).is_integer() and abs(x) < 1e15 else x


def _combo_message(spec: ComboInput, value: Any, choices: list[str]) -> str:
    if spec.files_in:
        shown = ", ".join(choices[:10]) + (", ..." if len(choices) > 10 else "")
        there = f"{len(choices)} file{'s' if len(choices) != 1 else ''} there" + (f": {shown}" if choices else "")
        return f"file {value!r} not found in {spec.files_in} ({there})"
    shown = ", ".join(choices[:20]) + (f", ... ({len(choices)} in all)" if len(choices) > 20 else "")
    return f"{value!r} is not one of the choices: {shown}"


def _link_type_ok(out_type: str, inp: Any) -> bool:
    if isinstance(inp, SocketInput):
        return types_compatible(out_type, inp.type)
    widget_type = inp.kind
    return types_compatible(out_type, widget_type) or (widget_type == "COMBO" and out_type.startswith("COMBO"))


def _check_link(report: ValidationReport, workflow: ApiWorkflow, registry: Registry, node_id: str,
                spec: NodeSpec, name: str, value: list) -> tuple[str, int, str] | None:
    """A link's (source id, output index, output type), or None once what is wrong with it is reported."""
    source_id, index = str(value[0]), value[1]
    source = workflow.root.get(source_id)
    source_spec = registry.nodes.get(source.class_type) if source else None
    if source is None:
        report.add(node_id, spec.name, "missing_source_node",
                   f"input {name!r} is linked to node {source_id}, which is not in the workflow",
                   name, received_value=value)
    elif source_spec is None:
        return None  # the source's own unknown type is reported on the source node
    elif not 0 <= index < len(source_spec.outputs):
        report.add(node_id, spec.name, "bad_output_index",
                   f"input {name!r} is linked to output {index} of node {source_id} "
                   f"({source.class_type}), which has {len(source_spec.outputs)} output(s)",
                   name, received_value=value)
    else:
        return source_id, index, source_spec.outputs[index].type
    return None


def _trusted_inputs(spec: NodeSpec) -> frozenset[str] | None:
    """The inputs the node's own validate_inputs takes, which are trusted to it (None: every input)."""
    if spec.validate_inputs is None:
        return _NONE
    return None if spec.validate_inputs_takes_all else spec.validate_inputs_takes


def _check_node(report: ValidationReport, workflow: ApiWorkflow, node_id: str, spec: NodeSpec, registry: Registry,
                config: Config) -> NodeInstance:
    node = workflow.root[node_id]
    literals: dict[str, Any] = {}
    links: dict[str, tuple[str, int]] = {}
    received: dict[str, str] = {}  # the output type of each linked input, for validate_inputs' input_types
    trusted_inputs = _trusted_inputs(spec)
    checks_link_types = not (spec.validate_inputs is not None and "input_types" in spec.validate_inputs_takes)
    inactive = spec.inactive_inputs(node.inputs)  # a dynamic combo's inputs for the choices not taken
    for inp in spec.inputs:
        if inp.name in inactive:
            continue
        if inp.name not in node.inputs:
            if not inp.optional:
                report.add(node_id, spec.name, "required_input_missing",
                           f"required input {inp.name!r} is missing", inp.name)
            continue
        value = node.inputs[inp.name]
        if isinstance(value, list) and not is_link(value):
            report.add(node_id, spec.name, "bad_linked_input",
                       f"input {inp.name!r}: a link must be [source node id, output index], got {value!r} "
                       f"(wrap a literal list as {{\"__value__\": [...]}})", inp.name, received_value=value)
            continue
        if is_link(value):
            checked = _check_link(report, workflow, registry, node_id, spec, inp.name, value)
            if checked is None:
                continue
            source_id, index, out_type = checked
            if checks_link_types and not _link_type_ok(out_type, inp):
                expected = inp.type if isinstance(inp, SocketInput) else inp.kind
                report.add(node_id, spec.name, "return_type_mismatch",
                           f"input {inp.name!r}: expected {expected}, got {out_type} from node {source_id} "
                           f"output {index}", inp.name, received_type=out_type, linked_node=[source_id, index])
            else:
                links[inp.name], received[inp.name] = (source_id, index), out_type
            continue
        trusted = trusted_inputs is None or inp.name in trusted_inputs
        if isinstance(inp, SocketInput):
            if trusted or inp.type == "*" or set(inp.type.split(",")) <= {"INT", "FLOAT", "STRING", "BOOLEAN"}:
                literals[inp.name] = literal_value(value)
                continue
            report.add(node_id, spec.name, "invalid_input_type",
                       f"input {inp.name!r} must be linked to a {inp.type} output, got the literal {value!r}",
                       inp.name, received_value=value)
            continue
        coerced, error_type, message = _check_widget(inp, literal_value(value), config, trusted)
        if error_type:
            report.add(node_id, spec.name, error_type, f"input {inp.name!r}: {message}", inp.name,
                       received_value=value, input_config=inp.options())
        else:
            literals[inp.name] = coerced
    if spec.accepts_extra_inputs:
        declared = {inp.name for inp in spec.inputs}
        for name, value in node.inputs.items():
            if name in declared:
                continue
            if not is_link(value):
                literals[name] = literal_value(value)
            elif checked := _check_link(report, workflow, registry, node_id, spec, name, value):
                links[name], received[name] = checked[:2], checked[2]
    instance = NodeInstance(node_id, spec, literals, links, node.meta.get("title"))
    if spec.validate_inputs is not None and node_id not in report.node_errors:
        _validate_inputs(report, instance, received, workflow)
    return instance


def _validate_inputs(report: ValidationReport, instance: NodeInstance, received: dict[str, str],
                     workflow: ApiWorkflow) -> None:
    """Runs the node's own validate_inputs (ComfyUI's VALIDATE_INPUTS) and reports what it returns."""
    spec = instance.spec
    hidden = {Hidden.PROMPT: workflow.to_json, Hidden.UNIQUE_ID: lambda: instance.id}
    offered = {**instance.literals, **dict.fromkeys(instance.links),  # links have no value before the run
               **{name: hidden[kind]() if kind in hidden else None for name, kind in spec.hidden.items()}}
    trusted = _trusted_inputs(spec)
    values = {k: v for k, v in offered.items() if trusted is None or k in trusted}
    if "input_types" in spec.validate_inputs_takes:
        values["input_types"] = received
    try:
        verdict = settle(spec.validate_inputs(**values))
    except Exception as error:  # noqa: BLE001 - a pack's validation bug is this node's problem, not the server's
        report.add(instance.id, spec.name, "exception_during_validation",
                   f"its input validation raised {type(error).__name__}: {error}")
        return
    if verdict is not True and not isinstance(verdict, ExecutionBlocker):
        report.add(instance.id, spec.name, "custom_validation_failed",
                   verdict if isinstance(verdict, str) and verdict else "its own input validation failed")


def expanded_instance(node_id: str, node: Mapping[str, Any], registry: Registry) -> NodeInstance:
    """A node an expansion adds to a run, taken as ComfyUI takes it: unchecked, literals passed as they are.

    Expansions pass values (a model, a tensor) where workflows pass links, so nothing is coerced;
    a missing input fails when the node runs. Raises ValueError for an unknown node type.
    """
    class_type = node.get("class_type")
    spec = registry.nodes.get(class_type)
    if spec is None:
        raise ValueError(f"the expansion adds node {node_id} of unknown type {class_type!r}")
    declared = {inp.name for inp in spec.inputs}
    literals: dict[str, Any] = {}
    links: dict[str, tuple[str, int]] = {}
    for name, value in (node.get("inputs") or {}).items():
        if name not in declared and not spec.accepts_extra_inputs:
            continue
        if is_link(value):
            links[name] = (str(value[0]), int(value[1]))
        else:
            literals[name] = literal_value(value)
    return NodeInstance(node_id, spec, literals, links)


def _shape_report(error: ValidationError) -> ValidationReport:
    report = ValidationReport()
    for e in error.errors():
        loc = [str(p) for p in e["loc"]]
        if loc:
            report.add(loc[0], "?", "invalid_prompt", f"{'.'.join(loc[1:]) or 'node'}: {e['msg']}")
        else:
            report.error = {"type": "invalid_prompt", "message": e["msg"], "details": "", "extra_info": {}}
    return report


def _ancestry(workflow: ApiWorkflow, specs: Mapping[str, NodeSpec | None], outputs: Iterable[str]
              ) -> dict[str, list[str]]:
    """The outputs and every node they need, each with the ids of the nodes it takes inputs from:
    through the inputs its type takes (every link of a node of unknown type)."""
    taken: dict[str, frozenset[str] | None] = {}  # by node type: its inputs (None: any, as **kwargs)
    sources: dict[str, list[str]] = {}
    stack = list(outputs)
    while stack:
        nid = stack.pop()
        if nid in sources:
            continue
        node, spec = workflow.root[nid], specs[nid]
        if node.class_type not in taken:
            taken[node.class_type] = (None if spec is None or spec.accepts_extra_inputs
                                      else frozenset(inp.name for inp in spec.inputs))
        names = taken[node.class_type]
        links = [(name, value) for name, value in node.inputs.items()
                 if (names is None or name in names) and is_link(value) and str(value[0]) in workflow.root]
        if links and spec is not None and names is not None:
            inactive = spec.inactive_inputs(node.inputs)  # a dynamic combo's inputs for the choices not taken
            links = [(name, value) for name, value in links if name not in inactive]
        sources[nid] = [str(value[0]) for _, value in links]
        stack.extend(sources[nid])
    return sources


def _invalid_outputs(report: ValidationReport, sources: Mapping[str, list[str]], outputs: list[str]) -> set[str]:
    """The outputs that need a node with errors; each such node's entry lists them as `dependent_outputs`."""
    bad = [nid for nid in report.node_errors if nid in sources]
    if not bad:
        return set()
    consumers: dict[str, list[str]] = {}
    for nid, srcs in sources.items():
        for src in srcs:
            consumers.setdefault(src, []).append(nid)
    invalid: set[str] = set()
    for nid in bad:
        reached, stack = set(), [nid]
        while stack:
            current = stack.pop()
            if current not in reached:
                reached.add(current)
                stack.extend(consumers.get(current, ()))
        dependent = reached.intersection(outputs)
        report.node_errors[nid]["dependent_outputs"] = sorted(dependent, key=natural_key)
        invalid |= dependent
    return invalid


def validate(document: Any, registry: Registry, config: Config, targets: list[str] | None = None
             ) -> ValidatedWorkflow:
    """Checks an API-format document against the registry and plans the run of its valid outputs.

    `targets` (node ids) replace the output nodes as what the run must produce (ComfyUI's
    `partial_execution_targets`). The result is runnable (`.ok`) when some outputs are valid;
    `.report` lists every problem of the others.
    """
    try:
        workflow = api_workflow(document)
    except ValidationError as e:
        return ValidatedWorkflow(_shape_report(e))
    except ValueError as e:
        return ValidatedWorkflow(ValidationReport(error={"type": "invalid_prompt", "message": str(e), "details": "",
                                                         "extra_info": {}}))
    report = ValidationReport()
    specs = {nid: registry.nodes.get(node.class_type) for nid, node in workflow.root.items()}
    for nid, spec in specs.items():
        if spec is None:
            report.add(nid, workflow.root[nid].class_type, "missing_node_type",
                       f"unknown node type {workflow.root[nid].class_type!r}: no installed node pack defines it")
    outputs = [nid for nid, spec in specs.items() if spec is not None and spec.output_node]
    if targets is not None:
        missing = [t for t in targets if t not in workflow.root]
        if missing:
            report.error = {"type": "invalid_prompt", "message": f"requested output node(s) {missing} are not "
                            "valid nodes of the workflow", "details": "", "extra_info": {}}
        outputs = [t for t in targets if t in workflow.root]
    sources = _ancestry(workflow, specs, outputs)
    nodes = {nid: _check_node(report, workflow, nid, spec, registry, config)
             for nid, spec in specs.items() if nid in sources and spec is not None}
    graph = link_graph({nid: [src for src, _ in inst.links.values()] for nid, inst in nodes.items()})
    for cycle in dependency_cycles(graph):
        for nid in cycle:
            report.add(nid, nodes[nid].spec.name, "dependency_cycle",
                       f"part of a dependency cycle through nodes {' -> '.join(cycle)}")
    invalid = _invalid_outputs(report, sources, outputs)
    if not outputs and report.ok:
        report.error = {"type": "prompt_no_outputs", "details": "", "extra_info": {},
                        "message": "the workflow has no output node (e.g. SaveImage or PreviewImage): "
                                   "nothing would be produced"}
    valid = sorted((nid for nid in outputs if nid not in invalid), key=natural_key)
    if report.error is not None or not valid or None in specs.values():
        return ValidatedWorkflow(report)
    return ValidatedWorkflow(report, nodes, tuple(valid), execution_order(graph, valid), workflow.to_json())
