"""The executor: runs the ancestors of a workflow's output nodes in topological order, with caching.

Each node runs at most once per run. A node whose key (see cache.py) is in the cache is not
run; its stored outputs are reused. Events go to the run's sink in ComfyUI's shapes. A failing
node ends the run with `execution_error`; everything cached before it stays valid.
"""

from __future__ import annotations

import inspect
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .cache import OutputCache, node_key
from .config import Config
from .context import InterruptFlag, Interrupted, RunContext
from .events import (EXECUTED, EXECUTING, EXECUTION_CACHED, EXECUTION_ERROR, EXECUTION_INTERRUPTED,
                     EXECUTION_START, EXECUTION_SUCCESS, NODE_FINISHED, EventSink, discard, timestamp)
from .node import normalize_result
from .registry import Registry
from .spec import ALWAYS_RUN, Hidden
from .validation import InvalidWorkflow, NodeInstance, ValidatedWorkflow, validate


@dataclass
class RunResult:
    prompt_id: str
    status: str  # "success", "error" or "interrupted"
    ui_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    keys: dict[str, str] = field(default_factory=dict)  # cache key of every node of the plan

    @property
    def ok(self) -> bool:
        return self.status == "success"


def execution_order(workflow: ValidatedWorkflow) -> list[str]:
    """The outputs' ancestors and the outputs themselves, topologically sorted (ties by node id)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(workflow.nodes)
    graph.add_edges_from((src, nid) for nid, inst in workflow.nodes.items() for src, _ in inst.links.values())
    needed = set(workflow.outputs)
    for out in workflow.outputs:
        needed |= nx.ancestors(graph, out)
    natural = lambda n: (0, int(n), "") if n.isdigit() else (1, 0, n)  # noqa: E731
    return list(nx.lexicographical_topological_sort(graph.subgraph(needed), key=natural))


def _call_lists(inputs: dict[str, list]) -> int:
    """How many calls ComfyUI's list semantics make: the longest input list (1 without lists)."""
    return max((len(v) for v in inputs.values()), default=1)


class Executor:
    """Runs validated workflows against one registry, config and cache; reusable across runs."""

    def __init__(self, registry: Registry, config: Config, cache: OutputCache | None = None,
                 interrupt: InterruptFlag | None = None):
        self.registry = registry
        self.config = config
        self.cache = cache if cache is not None else OutputCache(config.cache_bytes, config.cache_enabled)
        self.interrupt = interrupt or InterruptFlag()

    def run(self, document: dict[str, Any] | ValidatedWorkflow, prompt_id: str | None = None,
            extra_data: dict[str, Any] | None = None, on_event: EventSink = discard,
            targets: list[str] | None = None) -> RunResult:
        """Validates (unless already validated) and runs a workflow; raises InvalidWorkflow if invalid."""
        if isinstance(document, ValidatedWorkflow):
            workflow = document
        else:
            workflow, report = validate(document, self.registry, self.config, targets)
            if workflow is None:
                raise InvalidWorkflow(report)
        prompt_id = prompt_id or str(uuid.uuid4())
        return _Run(self, workflow, prompt_id, extra_data or {}, on_event).execute()


class _Run:
    """The state of one run: keys, live outputs and bookkeeping for events."""

    def __init__(self, executor: Executor, workflow: ValidatedWorkflow, prompt_id: str,
                 extra_data: dict[str, Any], emit: EventSink):
        self.executor, self.workflow, self.prompt_id = executor, workflow, prompt_id
        self.extra_data, self.emit = extra_data, emit
        self.order = execution_order(workflow)
        self.keys: dict[str, str] = {}
        self.outputs: dict[str, tuple[list, ...]] = {}
        self.result = RunResult(prompt_id, "success")
        self.consumers: dict[str, int] = {}

    def _fingerprint(self, inst: NodeInstance) -> Any:
        fingerprint = inst.spec.fingerprint
        if fingerprint is None:
            return None
        # A fingerprint that names a `config` parameter gets the run's Config (to find its files).
        extra = {"config": self.executor.config} if "config" in inspect.signature(fingerprint).parameters else {}
        try:
            return fingerprint(**inst.literals, **extra)
        except Exception:  # noqa: BLE001 - an unreadable external state is re-checked by running the node
            return ALWAYS_RUN

    def execute(self) -> RunResult:
        cache, nodes = self.executor.cache, self.workflow.nodes
        self.emit(EXECUTION_START, {"prompt_id": self.prompt_id, "timestamp": timestamp()})
        for nid in self.order:
            inst = nodes[nid]
            self.keys[nid] = node_key(nid, inst.spec, inst.literals, inst.links, self.keys, self._fingerprint(inst))
        self.result.keys = dict(self.keys)
        self.order = self._required(self.order)
        for nid in self.order:
            for src, _ in nodes[nid].links.values():
                self.consumers[src] = self.consumers.get(src, 0) + 1
        cached = [nid for nid in self.order if self.keys[nid] in cache]
        self.result.cached = cached
        self.emit(EXECUTION_CACHED, {"nodes": cached, "prompt_id": self.prompt_id, "timestamp": timestamp()})
        current = None
        try:
            for nid in self.order:
                current = nid
                self._check_interrupt(nid)
                entry = cache.get(self.keys[nid])
                if entry is not None:
                    self._finish(nid, entry.outputs, entry.ui, cached=True, elapsed_ms=0.0)
                else:
                    self._run_node(nodes[nid])
        except Interrupted:
            self._end(EXECUTION_INTERRUPTED, "interrupted", current, {})
        except Exception as error:  # noqa: BLE001 - any node failure ends this run, never the process
            inst = nodes[current]
            self._end(EXECUTION_ERROR, "error", current, {
                "exception_message": f"{type(error).__name__}: {error}" if not str(error) else str(error),
                "exception_type": f"{type(error).__module__}.{type(error).__name__}",
                "traceback": traceback.format_exception(error),
                "current_inputs": {k: repr(v)[:200] for k, v in inst.literals.items()},
                "current_outputs": [],
            })
        else:
            self.emit(EXECUTION_SUCCESS, {"prompt_id": self.prompt_id, "timestamp": timestamp()})
        self.emit(EXECUTING, {"node": None, "display_node": None, "prompt_id": self.prompt_id})
        return self.result

    def _required(self, order: list[str]) -> list[str]:
        """The nodes that must be visited: walking up from the outputs, a cached node ends the walk."""
        required: set[str] = set()
        stack = list(self.workflow.outputs)
        while stack:
            nid = stack.pop()
            if nid not in required:
                required.add(nid)
                if self.keys[nid] not in self.executor.cache:
                    stack.extend(src for src, _ in self.workflow.nodes[nid].links.values())
        return [nid for nid in order if nid in required]

    def _check_interrupt(self, node_id: str) -> None:
        if self.executor.interrupt.is_set_for(self.prompt_id):
            raise Interrupted(f"run {self.prompt_id} interrupted before node {node_id}")

    def _end(self, event: str, status: str, node_id: str | None, data: dict[str, Any]) -> None:
        inst = self.workflow.nodes.get(node_id) if node_id else None
        payload = {"prompt_id": self.prompt_id, "node_id": node_id, "node_type": inst.spec.name if inst else None,
                   "executed": self.result.ran + self.result.cached, "timestamp": timestamp(), **data}
        self.result.status = status
        self.result.error = payload
        self.emit(event, payload)

    def _inputs(self, inst: NodeInstance) -> dict[str, list]:
        values = {name: [v] for name, v in inst.literals.items()}
        for name, (src, slot) in inst.links.items():
            values[name] = self.outputs[src][slot]
        return values

    def _hidden(self, inst: NodeInstance) -> dict[str, Any]:
        supply = {
            Hidden.PROMPT: lambda: self.workflow.prompt,
            Hidden.UNIQUE_ID: lambda: inst.id,
            Hidden.EXTRA_PNGINFO: lambda: self.extra_data.get("extra_pnginfo"),
            Hidden.CONTEXT: lambda: RunContext(self.executor.config, self.prompt_id, inst.id, self.emit,
                                               self.executor.interrupt),
        }
        return {name: supply[kind]() for name, kind in inst.spec.hidden.items()}

    def _run_node(self, inst: NodeInstance) -> None:
        spec = inst.spec
        self.emit(EXECUTING, {"node": inst.id, "display_node": inst.id, "prompt_id": self.prompt_id})
        started = time.perf_counter()
        inputs, hidden = self._inputs(inst), self._hidden(inst)
        if spec.input_is_list:
            results = [normalize_result(spec, spec.function(**inputs, **hidden))]
        else:
            results = [normalize_result(spec, spec.function(**{k: v[min(i, len(v) - 1)] for k, v in inputs.items()},
                                                            **hidden))
                       for i in range(_call_lists(inputs))]
        outputs: tuple[list, ...] = tuple([] for _ in spec.outputs)
        ui: dict[str, list] | None = None
        for res in results:
            for slot, value in enumerate(res.result):
                (outputs[slot].extend if spec.outputs[slot].is_list else outputs[slot].append)(value)
            if res.ui:
                ui = ui or {}
                for k, v in res.ui.items():
                    ui.setdefault(k, []).extend(v if isinstance(v, list) else [v])
        self.executor.cache.put(self.keys[inst.id], outputs, ui, pinned=self.keys.values())
        self.result.ran.append(inst.id)
        self._finish(inst.id, outputs, ui, cached=False, elapsed_ms=(time.perf_counter() - started) * 1000)

    def _finish(self, node_id: str, outputs: tuple[list, ...], ui: dict | None, cached: bool,
                elapsed_ms: float) -> None:
        self.outputs[node_id] = outputs
        self._release_inputs(node_id)
        if ui is not None:
            self.result.ui_outputs[node_id] = ui
            self.emit(EXECUTED, {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": self.prompt_id})
        self.emit(NODE_FINISHED, {"node": node_id, "cached": cached, "elapsed_ms": round(elapsed_ms, 3),
                                  "prompt_id": self.prompt_id})

    def _release_inputs(self, node_id: str) -> None:
        """Drops this run's reference to outputs no later node needs (what --cache-none relies on)."""
        for src, _ in self.workflow.nodes[node_id].links.values():
            self.consumers[src] -= 1
            if self.consumers[src] == 0 and src not in self.workflow.outputs:
                self.outputs.pop(src, None)
