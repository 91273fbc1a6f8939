"""Validation before anything runs: every problem of a workflow, reported at once.

The report has ComfyUI's shape, `{error, node_errors: {id: {errors: [{type, message, details,
extra_info}], dependent_outputs, class_type}}}`, so the server returns it as JSON unchanged and
the CLI prints it line by line. Each message names the node, the input and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import ValidationError

from .config import Config
from .registry import Registry, types_compatible
from .spec import BooleanInput, ComboInput, FloatInput, IntInput, NodeSpec, SocketInput, StringInput
from .workflow import ApiWorkflow, api_workflow, is_link, literal_value


@dataclass
class NodeInstance:
    """A validated node: its spec, coerced literal values and links as (source id, output index)."""

    id: str
    spec: NodeSpec
    literals: dict[str, Any]
    links: dict[str, tuple[str, int]]
    title: str | None = None


@dataclass
class ValidatedWorkflow:
    nodes: dict[str, NodeInstance]
    outputs: list[str]
    prompt: dict[str, Any]  # the API-format document, handed to nodes with a PROMPT hidden input


@dataclass
class ValidationReport:
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
        for node_id, entry in sorted(self.node_errors.items(), key=lambda kv: _natural(kv[0])):
            out += [f"node {node_id} ({entry['class_type']}): {e['message']}" for e in entry["errors"]]
        return out

    def summary(self) -> str:
        return "; ".join(self.lines())


class InvalidWorkflow(Exception):
    """Raised with the report when a workflow fails validation; nothing has run."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.summary())
        self.report = report


def _natural(node_id: str) -> tuple:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _check_widget(spec: Any, value: Any, config: Config) -> tuple[Any, str | None, str | None]:
    """Coerces a literal widget value: returns (value, error type, message) — ComfyUI's coercions."""
    if isinstance(spec, ComboInput):
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


def _check_node(report: ValidationReport, workflow: ApiWorkflow, node_id: str, registry: Registry,
                config: Config) -> NodeInstance | None:
    node = workflow.root[node_id]
    spec = registry.nodes.get(node.class_type)
    if spec is None:
        report.add(node_id, node.class_type, "missing_node_type",
                   f"unknown node type {node.class_type!r}: no installed node pack defines it")
        return None
    literals: dict[str, Any] = {}
    links: dict[str, tuple[str, int]] = {}
    for inp in spec.inputs:
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
            source_id, index = str(value[0]), value[1]
            source = workflow.root.get(source_id)
            source_spec = registry.nodes.get(source.class_type) if source else None
            if source is None:
                report.add(node_id, spec.name, "missing_source_node",
                           f"input {inp.name!r} is linked to node {source_id}, which is not in the workflow",
                           inp.name, received_value=value)
            elif source_spec is None:
                continue  # the source's own unknown type is reported on the source node
            elif not 0 <= index < len(source_spec.outputs):
                report.add(node_id, spec.name, "bad_output_index",
                           f"input {inp.name!r} is linked to output {index} of node {source_id} "
                           f"({source.class_type}), which has {len(source_spec.outputs)} output(s)",
                           inp.name, received_value=value)
            elif not _link_type_ok(source_spec.outputs[index].type, inp):
                expected = inp.type if isinstance(inp, SocketInput) else inp.kind
                report.add(node_id, spec.name, "return_type_mismatch",
                           f"input {inp.name!r}: expected {expected}, got {source_spec.outputs[index].type} "
                           f"from node {source_id} output {index}", inp.name,
                           received_type=source_spec.outputs[index].type, linked_node=[source_id, index])
            else:
                links[inp.name] = (source_id, index)
            continue
        if isinstance(inp, SocketInput):
            if inp.type == "*" or inp.type in ("INT", "FLOAT", "STRING", "BOOLEAN"):
                literals[inp.name] = literal_value(value)
                continue
            report.add(node_id, spec.name, "invalid_input_type",
                       f"input {inp.name!r} must be linked to a {inp.type} output, got the literal {value!r}",
                       inp.name, received_value=value)
            continue
        coerced, error_type, message = _check_widget(inp, literal_value(value), config)
        if error_type:
            report.add(node_id, spec.name, error_type, f"input {inp.name!r}: {message}", inp.name,
                       received_value=value, input_config=inp.options())
        else:
            literals[inp.name] = coerced
    return NodeInstance(node_id, spec, literals, links, node.meta.get("title"))


def _shape_report(error: ValidationError) -> ValidationReport:
    report = ValidationReport()
    for e in error.errors():
        loc = [str(p) for p in e["loc"]]
        if loc:
            report.add(loc[0], "?", "invalid_prompt", f"{'.'.join(loc[1:]) or 'node'}: {e['msg']}")
        else:
            report.error = {"type": "invalid_prompt", "message": e["msg"], "details": "", "extra_info": {}}
    return report


def validate(document: Any, registry: Registry, config: Config, targets: list[str] | None = None
             ) -> tuple[ValidatedWorkflow | None, ValidationReport]:
    """Checks an API-format document against the registry; returns the validated workflow or None."""
    try:
        workflow = api_workflow(document)
    except ValidationError as e:
        return None, _shape_report(e)
    except ValueError as e:
        return None, ValidationReport(error={"type": "invalid_prompt", "message": str(e), "details": "",
                                             "extra_info": {}})
    report = ValidationReport()
    nodes = {nid: inst for nid in workflow.root if (inst := _check_node(report, workflow, nid, registry, config))}
    _check_cycles(report, nodes)
    outputs = [nid for nid, inst in nodes.items() if inst.spec.output_node]
    if targets is not None:
        missing = [t for t in targets if t not in nodes]
        if missing:
            report.error = {"type": "invalid_prompt", "message": f"requested output node(s) {missing} are not "
                            "valid nodes of the workflow", "details": "", "extra_info": {}}
        outputs = [t for t in targets if t in nodes]
    if not outputs and not report.node_errors and report.error is None:
        report.error = {"type": "prompt_no_outputs", "details": "", "extra_info": {},
                        "message": "the workflow has no output node (e.g. SaveImage or PreviewImage): "
                                   "nothing would be produced"}
    if not report.ok:
        return None, report
    return ValidatedWorkflow(nodes, sorted(outputs, key=_natural), workflow.to_json()), report


def _check_cycles(report: ValidationReport, nodes: dict[str, NodeInstance]) -> None:
    graph = nx.DiGraph()
    graph.add_edges_from((src, nid) for nid, inst in nodes.items() for src, _ in inst.links.values())
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1 or any(graph.has_edge(n, n) for n in component):
            cycle = sorted(component, key=_natural)
            for nid in cycle:
                report.add(nid, nodes[nid].spec.name, "dependency_cycle",
                           f"part of a dependency cycle through nodes {' -> '.join(cycle)}")
