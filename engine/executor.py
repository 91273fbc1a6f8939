"""The executor: runs a validated workflow's outputs with caching, each node once its inputs are there.

A run is a loop over a ready list (ready.py, ComfyUI's ExecutionList): the outputs are required,
a required node requires the nodes it takes inputs from, and a node runs once those are done.
A node whose key (see cache.py) is in the cache is not run; its stored outputs are reused, and
nothing above it is needed. On top of that order, a run follows ComfyUI's semantics:

- a lazy input is evaluated only when the node's `lazy_status` asks for it;
- a node may expand into more nodes (expansion.py), which join the run and are cached like any;
- an `ExecutionBlocker` output value skips the nodes that receive it;
- async node functions are started before other ready nodes and awaited together, so
  independent ones overlap; synchronous ones are called directly, on the run's thread.

Events go to the run's sink in ComfyUI's shapes. A failing node ends the run with
`execution_error`; everything cached before it stays valid.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Iterable

from .awaitables import resolved, run_sync
from .cache import OutputCache, is_json, node_key
from .config import Config
from .context import InterruptFlag, Interrupted, RunContext
from .events import (EXECUTED, EXECUTING, EXECUTION_CACHED, EXECUTION_ERROR, EXECUTION_INTERRUPTED,
                     EXECUTION_START, EXECUTION_SUCCESS, NODE_FINISHED, EventSink, discard, timestamp)
from .expansion import DependencyCycleError, DynamicPrompt, ExecutionBlocker, NodeNotFoundError, is_link
from .node import NodeOutput, keyword_parameters, normalize_result
from .ready import ReadyList
from .registry import Registry
from .spec import ALWAYS_RUN, Hidden, NodeSpec
from .validation import InvalidWorkflow, NodeInstance, ValidatedWorkflow, expanded_instance, validate

POLL_SECONDS = 0.05  # how often a run waiting for async nodes checks its interrupt flag


@dataclass
class RunResult:
    prompt_id: str
    status: str  # "success", "error" or "interrupted"
    ui_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    keys: dict[str, str] = field(default_factory=dict)  # cache key of every node of the plan (and expansions)

    @property
    def ok(self) -> bool:
        return self.status == "success"


class _Linked(list):
    """The values of an output an expansion's result links to: they become the expanding node's values."""


@dataclass(frozen=True)
class _Blocked:
    """A call not made because an input value was this ExecutionBlocker."""

    blocker: ExecutionBlocker


def _calls(spec: NodeSpec, values: dict[str, list]) -> list[dict[str, Any] | ExecutionBlocker]:
    """The keyword arguments of each call of a node, or the ExecutionBlocker that stops that call.

    ComfyUI's list semantics: one call per element of the longest input list (shorter lists repeat
    their last value), or a single call with the whole lists for a node that takes lists.
    """
    if spec.input_is_list:
        return [_blocker_in(v for vs in values.values() for v in vs) or values]
    count = max(map(len, values.values()), default=1)
    if count == 1:
        kwargs = {k: v[0] for k, v in values.items()}
        return [_blocker_in(kwargs.values()) or kwargs]
    calls: list[dict[str, Any] | ExecutionBlocker] = []
    for i in range(count):
        kwargs = {k: v[min(i, len(v) - 1)] for k, v in values.items()}
        calls.append(_blocker_in(kwargs.values()) or kwargs)
    return calls


def _merge(spec: NodeSpec, results: list[NodeOutput]) -> tuple[tuple[list, ...], dict[str, list] | None]:
    """One list of values per output slot and the merged UI payload, from the results of every call."""
    outputs: tuple[list, ...] = tuple([] for _ in spec.outputs)
    ui: dict[str, list] | None = None
    for res in results:
        for slot, value in enumerate(res.result):
            spread = isinstance(value, _Linked) or (spec.outputs[slot].is_list
                                                    and not isinstance(value, ExecutionBlocker))
            (outputs[slot].extend if spread else outputs[slot].append)(value)
        if res.ui:
            ui = ui or {}
            for k, v in res.ui.items():
                ui.setdefault(k, []).extend(v if isinstance(v, list) else [v])
    return outputs, ui


async def _gathered(results: list[Any]) -> list[Any]:
    return [await r if isinstance(r, asyncio.Future) else r for r in results]


def _blocker_in(values: Iterable[Any]) -> ExecutionBlocker | None:
    for value in values:
        if isinstance(value, ExecutionBlocker):
            return value
    return None


class Executor:
    """Runs validated workflows against one registry, config and cache; reusable across runs."""

    def __init__(self, registry: Registry, config: Config, cache: OutputCache | None = None,
                 interrupt: InterruptFlag | None = None):
        self.registry = registry
        self.config = config
        self.cache = cache if cache is not None else OutputCache(config.cache_bytes, config.cache_enabled)
        self.interrupt = interrupt or InterruptFlag()

    def run(self, workflow: dict[str, Any] | ValidatedWorkflow, prompt_id: str | None = None,
            extra_data: dict[str, Any] | None = None, on_event: EventSink = discard) -> RunResult:
        """Runs the valid outputs of a workflow (a document is validated first); raises InvalidWorkflow
        if none is valid. The run's event loop lives on this thread for the run's duration."""
        if not isinstance(workflow, ValidatedWorkflow):
            workflow = validate(workflow, self.registry, self.config)
        if not workflow.ok:
            raise InvalidWorkflow(workflow.report)
        prompt_id = prompt_id or str(uuid.uuid4())
        return run_sync(_Run(self, workflow, prompt_id, extra_data or {}, on_event).execute())


class _Run:
    """The state of one run: the nodes (expansions included), keys, live outputs, what waits for what."""

    def __init__(self, executor: Executor, workflow: ValidatedWorkflow, prompt_id: str,
                 extra_data: dict[str, Any], emit: EventSink):
        self.executor, self.workflow, self.prompt_id = executor, workflow, prompt_id
        self.extra_data, self.emit = extra_data, emit
        self.cache = executor.cache
        self.nodes: dict[str, NodeInstance] = dict(workflow.nodes)
        self.dynprompt = DynamicPrompt(workflow.prompt)
        self.rank = {nid: i for i, nid in enumerate(workflow.order)}  # ties among ready nodes: plan order
        self.ready = ReadyList(self._priority)
        self.keys: dict[str, str] = {}
        self.outputs: dict[str, tuple[list, ...]] = {}
        # Without a cache, this run's references alone keep outputs alive: each is dropped once no
        # unfinished node reads it. With one, the cache holds them all through the run (pinned) anyway.
        self.releases = not self.cache.enabled
        self.reads: dict[str, set[str]] = {}  # node -> the nodes whose outputs it reads
        self.readers: dict[str, set[str]] = {}  # node -> the unfinished nodes that read its outputs
        self.linked: set[str] = set()  # pending nodes whose inputs were required
        self.requested: dict[str, set[str]] = {}  # node -> the lazy inputs it asked for
        self.expansions: dict[str, tuple[list[NodeOutput], bool]] = {}  # results waiting for their links
        self.tasks: dict[asyncio.Future, str] = {}  # async calls in flight, by node
        self.started: dict[str, float] = {}  # node -> when it was first called
        self.blocked: tuple[str, str] | None = None  # the first node an ExecutionBlocker with a message stopped
        self.runs_async: dict[str, bool] = {}  # node type -> whether its calls are awaited
        self.current: str | None = None
        self.result = RunResult(prompt_id, "success", keys=self.keys)

    def _priority(self, node_id: str) -> tuple[bool, int]:
        # Async nodes first, as ComfyUI: started early, they overlap with whatever runs next.
        spec = self.nodes[node_id].spec
        runs_async = self.runs_async.get(spec.name)
        if runs_async is None:
            runs_async = self.runs_async[spec.name] = spec.runs_async
        return not runs_async, self.rank[node_id]

    async def execute(self) -> RunResult:
        self.emit(EXECUTION_START, {"prompt_id": self.prompt_id, "timestamp": timestamp()})
        await self._assign_keys(self.workflow.order)
        for nid in self.workflow.outputs:
            self._require(nid)
        cached = [nid for nid in self.workflow.order if nid in self.ready and self.keys[nid] in self.cache]
        self.emit(EXECUTION_CACHED, {"nodes": cached, "prompt_id": self.prompt_id, "timestamp": timestamp()})
        try:
            await self._loop()
        except Interrupted:
            self._end(EXECUTION_INTERRUPTED, "interrupted", self.current, {})
        except Exception as error:  # noqa: BLE001 - any node failure ends this run, never the process
            inst = self.nodes.get(self.current or "")
            self._end(EXECUTION_ERROR, "error", self.current, {
                "exception_message": f"{type(error).__name__}: {error}" if not str(error) else str(error),
                "exception_type": f"{type(error).__module__}.{type(error).__name__}",
                "traceback": traceback.format_exception(error),
                "current_inputs": {k: repr(v)[:200] for k, v in inst.literals.items()} if inst else {},
                "current_outputs": [],
            })
        else:
            if self.blocked is not None:
                self._end(EXECUTION_ERROR, "error", self.blocked[0], {
                    "exception_message": f"Execution Blocked: {self.blocked[1]}", "exception_type": "ExecutionBlocked",
                    "traceback": [], "current_inputs": {}, "current_outputs": []})
            else:
                self.emit(EXECUTION_SUCCESS, {"prompt_id": self.prompt_id, "timestamp": timestamp()})
        finally:
            await self._cancel_tasks()
        self.emit(EXECUTING, {"node": None, "display_node": None, "prompt_id": self.prompt_id})
        return self.result

    # ------------------------------------------------------------------------------------------
    # Scheduling

    async def _loop(self) -> None:
        while True:
            nid = self.ready.take()
            if nid is not None:
                self.current = nid
                self._check_interrupt(nid)
                if pending := self._stage(nid):  # the await of what is async, only when there is some
                    await pending
            elif self.tasks:
                await self._await_tasks()
            elif self.ready.waiting:
                stuck = self.ready.stuck()
                self.current = next((n for n in stuck if n not in self.workflow.nodes), stuck[0])
                raise DependencyCycleError(f"nodes {', '.join(stuck)} wait for each other (a dependency cycle "
                                           f"built by an expansion)")
            else:
                return

    async def _await_tasks(self) -> None:
        done, _ = await asyncio.wait(self.tasks, timeout=POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            self.current = self.tasks.pop(task)
            if expansion := self._complete(self.current, task.result()):
                await expansion
        if not done:
            self._check_interrupt(next(iter(self.tasks.values())))

    async def _cancel_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    def _require(self, node_id: str) -> None:
        """Makes a node pending and, transitively, the nodes it needs that are neither done nor cached."""
        stack = [node_id]
        while stack:
            nid = stack.pop()
            if nid not in self.ready:
                self.ready.add(nid)
                if self.keys[nid] not in self.cache:  # a cached node needs none of its inputs
                    stack.extend(self._link(nid, self._strong_inputs(nid)))
                self.ready.release(nid)

    def _strong_inputs(self, node_id: str) -> list[str]:
        """The inputs a node cannot run without: its links, but lazy ones only once it asked for them."""
        inst = self.nodes[node_id]
        if not inst.lazy:
            return list(inst.links)
        asked = self.requested.get(node_id, ())
        return [name for name in inst.links if name not in inst.lazy or name in asked]

    def _link(self, node_id: str, inputs: Iterable[str]) -> list[str]:
        """Makes a node read the sources of these inputs; returns the sources it waits for that are not pending."""
        self.linked.add(node_id)
        return self._read(node_id, [self.nodes[node_id].links[name][0] for name in inputs])

    def _read(self, node_id: str, sources: Iterable[str]) -> list[str]:
        """Makes a node wait for these nodes' outputs; returns the sources not done nor pending."""
        missing = []
        for src in sources:
            if self.releases:
                self.reads.setdefault(node_id, set()).add(src)
                self.readers.setdefault(src, set()).add(node_id)
            if src not in self.outputs:
                self.ready.wait_for(node_id, src)
                if src not in self.ready:
                    missing.append(src)
        return missing

    def _need(self, node_id: str, missing: list[str]) -> bool:
        """Requires the sources a staged node now waits for; False when it can go on at once."""
        for src in missing:
            self._require(src)
        return bool(self.ready.waiting[node_id])

    def _check_interrupt(self, node_id: str) -> None:
        if self.executor.interrupt.is_set_for(self.prompt_id):
            raise Interrupted(f"run {self.prompt_id} interrupted at node {node_id}")

    # ------------------------------------------------------------------------------------------
    # One node

    def _stage(self, nid: str) -> Awaitable[None] | None:
        """Advances a ready node: resolves its expansion, reuses its cache entry, asks for lazy inputs, or
        runs it; returns what remains to await when that involves async calls."""
        if nid in self.expansions:
            outs, cacheable = self.expansions.pop(nid)
            self._store(nid, [self._resolve_links(out) for out in outs], cacheable)
            return None
        entry = self.cache.get(self.keys[nid])
        if entry is not None:
            self._finish(nid, entry.outputs, entry.ui, cached=True)
            return None
        if nid not in self.linked and self._need(nid, self._link(nid, self._strong_inputs(nid))):
            return None  # a cached node whose entry went: it needs its inputs after all
        inst = self.nodes[nid]
        if nid not in self.started:
            self.started[nid] = time.perf_counter()
            self.emit(EXECUTING, {"node": nid, "display_node": self.dynprompt.get_display_node_id(nid),
                                  "prompt_id": self.prompt_id})
        if inst.spec.lazy_status is not None:
            return self._run_lazy(inst)
        return self._run(inst)

    async def _run_lazy(self, inst: NodeInstance) -> None:
        if not await self._waits_for_lazy_inputs(inst) and (pending := self._run(inst)):
            await pending

    def _run(self, inst: NodeInstance) -> Awaitable[None] | None:
        """Calls the node; completes it at once unless some calls are async (or it expands)."""
        results = self._call(inst)
        if any(map(inspect.isawaitable, results)):
            return self._start_async(inst.id, results)
        return self._complete(inst.id, results)

    async def _waits_for_lazy_inputs(self, inst: NodeInstance) -> bool:
        """Asks the node which lazy inputs it needs until it asks for nothing new; True if it must wait."""
        asked_before = self.requested.setdefault(inst.id, set())
        while True:
            asked: set[str] = set()
            for call, kwargs in enumerate(_calls(inst.spec, self._values(inst))):
                if not isinstance(kwargs, ExecutionBlocker):
                    names = await resolved(inst.spec.lazy_status(**kwargs, **self._hidden(inst, call)))
                    asked.update(name for name in names or () if isinstance(name, str))
            new = (asked & inst.lazy) - asked_before
            if not new:
                return False
            asked_before |= new
            if self._need(inst.id, self._link(inst.id, new)):
                return True

    def _values(self, inst: NodeInstance) -> dict[str, list]:
        """Each input's list of values (ComfyUI's list semantics); lazy inputs not asked for are [None]."""
        values = {name: [value] for name, value in inst.literals.items()}
        if not (inst.lazy or inst.raw_links):
            values.update((name, self.outputs[src][slot]) for name, (src, slot) in inst.links.items())
            return values
        asked = self.requested.get(inst.id, ())
        for name, (src, slot) in inst.links.items():
            if name in inst.raw_links:
                values[name] = [[src, slot]]
            elif name in inst.lazy and name not in asked:
                values[name] = [None]
            else:
                values[name] = self.outputs[src][slot]
        return values

    def _call(self, inst: NodeInstance) -> list[Any]:
        """Calls the node once per list element: the results, awaitable for async calls."""
        function = inst.spec.function_async or inst.spec.function
        return [_Blocked(kwargs) if isinstance(kwargs, ExecutionBlocker)
                else function(**kwargs, **self._hidden(inst, call)) if inst.spec.hidden else function(**kwargs)
                for call, kwargs in enumerate(_calls(inst.spec, self._values(inst)))]

    async def _start_async(self, nid: str, results: list[Any]) -> None:
        """Starts a node's async calls; the run's loop completes the node when they are done."""
        results = [asyncio.ensure_future(r) if inspect.isawaitable(r) else r for r in results]
        await asyncio.sleep(0)  # lets them start (ComfyUI does the same); one that never waits is done here
        if not all(r.done() for r in results if isinstance(r, asyncio.Future)):
            self.tasks[asyncio.ensure_future(_gathered(results))] = nid
        elif expansion := self._complete(nid, [r.result() if isinstance(r, asyncio.Future) else r for r in results]):
            await expansion

    def _complete(self, nid: str, results: list[Any]) -> Awaitable[None] | None:
        """Takes a node's call results: stores its outputs, or returns the adding of its expansion to the run."""
        spec = self.nodes[nid].spec
        outs: list[NodeOutput] = []
        cacheable, expands = True, False
        for res in results:
            if isinstance(res, _Blocked):
                if res.blocker.message is not None and self.blocked is None:
                    self.blocked = (nid, res.blocker.message)
                # A node that received a blocker did not really run: it runs again next time, not from the cache.
                cacheable = False
                outs.append(NodeOutput((ExecutionBlocker(None),) * len(spec.outputs)))
            else:
                outs.append(out := normalize_result(spec, res))
                expands = expands or out.expand is not None
        if expands:
            return self._expand(nid, outs, cacheable)
        self._store(nid, outs, cacheable)
        return None

    async def _expand(self, nid: str, outs: list[NodeOutput], cacheable: bool) -> None:
        """Adds an expansion's nodes to the run; the node waits for the outputs its result links to."""
        added = []
        for out in outs:
            for new_id, info in (out.expand or {}).items():
                if self.dynprompt.has_node(new_id):
                    raise ValueError(f"the expansion adds node {new_id!r}, which already exists: expansions need "
                                     f"ids unique in the run (ComfyUI's GraphBuilder makes them)")
                self.nodes[new_id] = expanded_instance(new_id, info, self.executor.registry)
                self.dynprompt.add_ephemeral_node(new_id, info, nid, info.get("override_display_id", nid))
                self.rank[new_id] = len(self.rank)
                added.append(new_id)
        links = [str(v[0]) for out in outs if out.expand is not None for v in out.result if is_link(v)]
        await self._assign_keys(self._unkeyed(added + links))
        self.expansions[nid] = (outs, cacheable)
        for new_id in added:
            if self.nodes[new_id].spec.output_node:  # output nodes of an expansion run too, as in ComfyUI
                self._require(new_id)
        if not self._need(nid, self._read(nid, links)):
            self.ready.release(nid)

    def _resolve_links(self, out: NodeOutput) -> NodeOutput:
        if out.expand is None:
            return out
        return NodeOutput(tuple(_Linked(self.outputs[str(v[0])][int(v[1])]) if is_link(v) else v
                                for v in out.result), out.ui)

    def _store(self, nid: str, outs: list[NodeOutput], cacheable: bool) -> None:
        outputs, ui = _merge(self.nodes[nid].spec, outs)
        if cacheable:
            self.cache.put(self.keys[nid], outputs, ui, pinned=self.keys.values())
        self.result.ran.append(nid)
        self._finish(nid, outputs, ui, cached=False)

    def _finish(self, nid: str, outputs: tuple[list, ...], ui: dict | None, cached: bool) -> None:
        started = self.started.pop(nid, None)
        self.outputs[nid] = outputs
        self.ready.done(nid)
        self.linked.discard(nid)
        self.requested.pop(nid, None)
        if self.releases:
            self._release_inputs(nid)
        if cached:
            self.result.cached.append(nid)
        if ui is not None:
            self.result.ui_outputs[nid] = ui
            self.emit(EXECUTED, {"node": nid, "display_node": self.dynprompt.get_display_node_id(nid), "output": ui,
                                 "prompt_id": self.prompt_id})
        elapsed_ms = 0.0 if started is None else (time.perf_counter() - started) * 1000
        self.emit(NODE_FINISHED, {"node": nid, "cached": cached, "elapsed_ms": round(elapsed_ms, 3),
                                  "prompt_id": self.prompt_id})

    def _release_inputs(self, node_id: str) -> None:
        """Drops this run's reference to outputs no unfinished node reads (what --cache-none relies on);
        a node that needs them later requires them again (by running)."""
        for src in self.reads.pop(node_id, ()):
            readers = self.readers[src]
            readers.discard(node_id)
            if not readers and src not in self.workflow.outputs:
                self.outputs.pop(src, None)

    # ------------------------------------------------------------------------------------------
    # Keys and hidden values

    async def _assign_keys(self, order: Iterable[str]) -> None:
        """Keys the nodes, each after the nodes it links from."""
        for nid in order:
            inst = self.nodes[nid]
            fingerprint = None if inst.spec.fingerprint is None else await self._fingerprint(inst)
            if nid not in self.workflow.nodes and not is_json(inst.literals):
                fingerprint = ALWAYS_RUN  # a value an expansion passes (a model, a tensor) has no stable key
            self.keys[nid] = node_key(nid, inst.spec, inst.literals, inst.links, self.keys, fingerprint)

    def _unkeyed(self, node_ids: Iterable[str]) -> list[str]:
        """These nodes and the nodes they link from that have no key yet, sources first."""
        order: list[str] = []
        entered: set[str] = set()
        done: set[str] = set()
        for root in node_ids:
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                nid, finished = stack.pop()
                if finished:
                    order.append(nid)
                    done.add(nid)
                elif nid in self.keys or nid in done:
                    continue
                elif nid in entered:  # entered and not finished: it is its own ancestor
                    raise DependencyCycleError(f"the expansion links node {nid} to itself through other nodes")
                elif nid not in self.nodes:
                    raise NodeNotFoundError(f"the expansion links to node {nid}, which is not in the run")
                else:
                    entered.add(nid)
                    stack.append((nid, True))
                    stack.extend((src, False) for src, _ in self.nodes[nid].links.values())
        return order

    async def _fingerprint(self, inst: NodeInstance) -> Any:
        fingerprint = inst.spec.fingerprint
        names, takes_all = keyword_parameters(fingerprint)
        # ComfyUI's IS_CHANGED: literal inputs, linked ones as None (no values yet), hidden ones it names.
        offered = {**dict.fromkeys(inst.links), **inst.literals}
        values = offered if takes_all else {k: v for k, v in offered.items() if k in names}
        values |= {name: self._hidden_value(inst, kind, 0) for name, kind in inst.spec.hidden.items() if name in names}
        if "config" in names:  # it finds its files through the run's Config
            values["config"] = self.executor.config
        try:
            return await resolved(fingerprint(**values))
        except Exception:  # noqa: BLE001 - an unreadable external state is re-checked by running the node
            return ALWAYS_RUN

    def _hidden(self, inst: NodeInstance, call: int) -> dict[str, Any]:
        return {name: self._hidden_value(inst, kind, call) for name, kind in inst.spec.hidden.items()}

    def _hidden_value(self, inst: NodeInstance, kind: Hidden | str, call: int) -> Any:
        """The value of a hidden input for one call of a node; None for a kind this engine does not know."""
        if kind == Hidden.CONTEXT:
            return RunContext(self.executor.config, self.prompt_id, inst.id, self.emit, self.executor.interrupt, call)
        return {Hidden.PROMPT: self.workflow.prompt, Hidden.UNIQUE_ID: inst.id, Hidden.DYNPROMPT: self.dynprompt,
                Hidden.PROMPT_ID: self.prompt_id, Hidden.EXTRA_PNGINFO: self.extra_data.get("extra_pnginfo")}.get(kind)

    # ------------------------------------------------------------------------------------------
    # The end

    def _end(self, event: str, status: str, node_id: str | None, data: dict[str, Any]) -> None:
        # Errors name the node of the prompt (an expansion's node is reported as the node that expanded).
        real_id = self.dynprompt.get_real_node_id(node_id) if node_id else None
        inst = self.nodes.get(real_id) if real_id else None
        payload = {"prompt_id": self.prompt_id, "node_id": real_id, "node_type": inst.spec.name if inst else None,
                   "executed": self.result.ran + self.result.cached, "timestamp": timestamp(), **data}
        self.result.status = status
        self.result.error = payload
        self.emit(event, payload)
