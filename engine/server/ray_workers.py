"""A pool of workers on Ray behind the one queue: routing, messages home, interrupts, lost workers.

The server stays the one front door. A dispatcher thread waits for a free worker, takes the next
prompt off the durable queue and sends it to the free worker whose cache holds most of its work
(routing.py); a thread per running prompt reads the worker's stream of messages, writes its files
home (output_files.py) and forwards its events to the client that queued it. A worker that dies
mid-prompt (its process killed, its node gone) is replaced by a new actor, and its prompt is
queued again once (recovery.py). Ray is imported here only, so that the extra stays optional.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import Config
from ..events import EXECUTED, EXECUTION_ROUTED
from ..executor import RunResult
from ..session import Session
from .history import History
from .hub import Hub
from .options import ServerOptions
from .output_files import rename_files, write_home
from .prompt_queue import PromptQueue, QueueItem
from .ray_actor import FILES, RESULT, PromptRunner
from .recovery import retry_or_fail
from .routing import WorkerMemory, choose, routing_keys
from .worker import RunRecorder

log = logging.getLogger("sigmagraph.server")

DEFAULT_WORKERS = 2
CALL_CONCURRENCY = 4  # a running prompt, plus interrupt, free and describe answered beside it
LOCAL_ONLY_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps a node on the loopback address
DESCRIBE_TIMEOUT = 5.0  # seconds a worker may take to say what it holds before it counts as unreachable


class RayMissing(RuntimeError):
    """Workers on Ray were asked for, and Ray is not installed."""


def import_ray() -> Any:
    """The ray module, or RayMissing saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayMissing("--workers needs Ray, which is not installed: pip install 'sigmagraph[ray]'") from None
    return ray


def init_loopback(ray: Any, **options: Any) -> None:
    """Starts a private Ray on this machine whose processes listen and talk on 127.0.0.1 only.

    Ray 2.x turns a node address of 127.0.0.1 into the machine's outward address unless its
    cluster mode is off; that switch is read by Ray's own processes from the environment at
    start, and by this one from the constant it set at import.
    """
    os.environ[LOCAL_ONLY_SWITCH] = "0"
    importlib.import_module("ray._private.ray_constants").ENABLE_RAY_CLUSTER = False
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, **options)


def connect(ray: Any, address: str) -> bool:
    """Joins the cluster at `address` ("auto": the local one, else a new one on this machine's loopback only);
    whether this process started Ray (and so must stop it). A process already connected stays as it is."""
    if ray.is_initialized():
        return False
    if address != "auto":
        ray.init(address=address)
    else:
        try:
            ray.init(address="auto")
        except ConnectionError:  # no cluster running: a private one, reachable from this machine only
            init_loopback(ray)
    return True


def portable(config: Config) -> Config:
    """The config with its folders absolute, so that a worker process finds them wherever it starts."""
    return replace(config, models_dir=config.models_dir.resolve(), input_dir=config.input_dir.resolve(),
                   custom_nodes_dirs=tuple(p.resolve() for p in config.custom_nodes_dirs))


@dataclass
class Slot:
    """One place in the pool: its actor (replaced when it dies), what it ran, and its counters."""

    name: str
    actor: Any = None
    memory: WorkerMemory = field(default_factory=WorkerMemory)
    homed: dict[tuple[str, str, str], str] = field(default_factory=dict)  # its files' names at home
    running: QueueItem | None = None
    runs: int = 0
    replaced: int = 0


class RayWorkers:
    """N Ray actors running the queue; what the server holds instead of the in-process worker."""

    def __init__(self, queue: PromptQueue, history: History, session: Session, hub: Hub, options: ServerOptions):
        self.ray = import_ray()
        self.queue, self.history, self.hub = queue, history, hub
        self.config = session.config  # the server's folders: where files come home
        self.worker_config = portable(session.config)
        self.options = options
        self.slots = [Slot(f"ray-{i}") for i in range(options.num_workers or DEFAULT_WORKERS)]
        self._free = threading.Condition()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._started_ray = False
        self._actor_class: Any = None
        self._torch_threads = 1
        self._lost_on: dict[str, set[str]] = {}  # prompt id -> workers that lost it: its retry goes elsewhere

    # lifetime

    def start(self) -> None:
        """Connects to Ray, creates the actors (they start in the background) and starts dispatching."""
        self._started_ray = connect(self.ray, self.options.workers or "auto")
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        threads = max(1, cpus // len(self.slots))
        gpus = 1 if self.config.device != "cpu" and self.ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self._actor_class = self.ray.remote(PromptRunner).options(
            num_cpus=threads, num_gpus=gpus, max_concurrency=CALL_CONCURRENCY, max_restarts=0)
        self._torch_threads = threads
        for slot in self.slots:
            slot.actor = self._new_actor(slot)
        dispatcher = threading.Thread(target=self._dispatch, name="sigmagraph-ray-dispatcher", daemon=True)
        self._threads.append(dispatcher)
        dispatcher.start()

    def _new_actor(self, slot: Slot) -> Any:
        return self._actor_class.remote(self.worker_config, slot.name, self._torch_threads)

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupts what runs, waits for the runs to be recorded, lets the actors go (and Ray, if ours)."""
        with self._free:
            self._closed = True
            self._free.notify_all()
        self.queue.close()
        self.interrupt()
        for thread in list(self._threads):
            thread.join(timeout)
        for slot in self.slots:
            self._let_go(slot.actor)
        if self._started_ray:
            self.ray.shutdown()

    def _let_go(self, actor: Any) -> None:
        try:
            self.ray.get(actor.close.remote(), timeout=DESCRIBE_TIMEOUT)
        except Exception:  # noqa: BLE001 - a dead worker has nothing left to clean
            pass
        self.ray.kill(actor)

    # dispatching

    def _dispatch(self) -> None:
        while True:
            with self._free:
                while not self._closed and all(slot.running for slot in self.slots):
                    self._free.wait()
                if self._closed:
                    return
            item = self.queue.take()  # only this thread takes: the free slot stays free meanwhile
            if item is None:
                return
            keys = routing_keys(item.workflow)
            with self._free:
                free = [slot for slot in self.slots if slot.running is None]
                lost_on = self._lost_on.pop(item.prompt_id, set())
                free = [slot for slot in free if slot.name not in lost_on] or free
                slot = free[choose(keys, [s.memory for s in free], [s.runs for s in free])]
                slot.running = item
            runner = threading.Thread(target=self._run, args=(slot, item, keys), daemon=True,
                                      name=f"sigmagraph-{slot.name}-{item.prompt_id[:8]}")
            self._threads = [t for t in self._threads if t.is_alive()] + [runner]
            runner.start()

    def _run(self, slot: Slot, item: QueueItem, keys: set[str]) -> None:
        recorder = RunRecorder(self.hub, item)
        # ours, before the run's events: where it runs and how many of its nodes that worker ran before
        recorder(EXECUTION_ROUTED, {"prompt_id": item.prompt_id, "worker": slot.name,
                                    "known_nodes": slot.memory.overlap(keys)})
        try:
            result = self._stream(slot, item, recorder)
        except self.ray.exceptions.RayError as error:
            cause = f"worker {slot.name} was lost ({type(error).__name__}: {str(error).strip().splitlines()[0]})"
            log.warning("prompt %s: %s", item.prompt_id, cause)
            self._replace(slot)
            with self._free:
                self._lost_on.setdefault(item.prompt_id, set()).add(slot.name)
            if not retry_or_fail(item, cause, self.queue, self.history, recorder, slot.name):
                with self._free:
                    self._lost_on.pop(item.prompt_id, None)
        else:
            slot.memory.remember(keys)
            slot.runs += 1
            recorder.finish(result, self.queue, self.history, slot.name)
        finally:
            with self._free:
                slot.running = None
                self._free.notify_all()

    def _stream(self, slot: Slot, item: QueueItem, recorder: RunRecorder) -> RunResult:
        """Runs the prompt on the slot's actor, relaying its messages; its result with the files' names at home."""
        stream = slot.actor.run.options(num_returns="streaming").remote(
            item.prompt_id, item.prompt, item.extra_data, list(item.workflow.outputs), self.options.preview_interval)
        for reference in stream:
            for event, data in self.ray.get(reference):
                if event == FILES:
                    slot.homed |= write_home(self.config, data)
                elif event == RESULT:
                    result = RunResult(**data)
                    result.ui_outputs = {nid: rename_files(ui, slot.homed) for nid, ui in result.ui_outputs.items()}
                    return result
                elif event == EXECUTED:
                    recorder(event, {**data, "output": rename_files(data["output"], slot.homed)})
                else:
                    recorder(event, data)
        raise self.ray.exceptions.RayError(f"worker {slot.name} ended the run without a result")

    def _replace(self, slot: Slot) -> None:
        """A new actor in the slot of a lost one, with an empty cache (and so nothing to route to)."""
        try:
            self.ray.kill(slot.actor)
        except Exception:  # noqa: BLE001 - it is already gone
            pass
        slot.actor, slot.homed = self._new_actor(slot), {}
        slot.memory.forget()
        slot.replaced += 1

    # what requests ask

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Stops the prompt `prompt_id` (every running one, for None) on whichever worker runs it."""
        with self._free:
            hit = [(slot.actor, slot.running.prompt_id) for slot in self.slots
                   if slot.running is not None and prompt_id in (None, slot.running.prompt_id)]
        for actor, pid in hit:
            actor.interrupt.remote(pid)
        return bool(hit)

    def free(self) -> None:
        """Empties every worker's cache, each right after its running prompt."""
        for slot in self.slots:
            slot.actor.free.remote()
            slot.memory.forget()

    def describe(self) -> list[dict[str, Any]]:
        """Each worker: what it says of itself (state, device, cache), its runs and how often it was replaced."""
        described = []
        for slot in self.slots:
            counters = {"name": slot.name, "runs": slot.runs, "replaced": slot.replaced}
            try:
                described.append({**self.ray.get(slot.actor.describe.remote(), timeout=DESCRIBE_TIMEOUT), **counters})
            except Exception as error:  # noqa: BLE001 - a worker that cannot answer is reported, not fatal
                described.append({**counters, "state": "unreachable", "error": f"{type(error).__name__}: {error}"})
        return described
