"""What the handlers share, stored once in the application under the typed key STATE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from aiohttp import web

from ..config import Config
from ..session import Session
from .history import History
from .hub import STATUS, Hub, status_data
from .options import ServerOptions
from .prompt_queue import PromptQueue
from .ray_workers import RayWorkers
from .recovery import resume_stored
from .store import Store
from .worker import PromptWorker, RunRecorder


class Workers(Protocol):
    """What runs the queue: the in-process worker or a pool on Ray; the server does not care which."""

    def start(self) -> None:
        """Starts taking prompts off the queue."""

    def stop(self) -> None:
        """Interrupts what runs and stops taking prompts (blocking: call it off the event loop)."""

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Stops a running prompt (every running one for None); whether one was hit."""

    def free(self) -> None:
        """Empties every worker's cache between its prompts."""

    def describe(self) -> list[dict[str, Any]]:
        """Each worker's name, state, device and what its cache holds (for /system_stats)."""


@dataclass
class ServerState:
    """The session that runs prompts, its configuration (the folders served), and the server's moving parts."""

    config: Config
    session: Session
    options: ServerOptions
    hub: Hub
    queue: PromptQueue
    history: History
    workers: Workers
    # what pack loaders pass each POST /prompt body through (ComfyUI's on-prompt handlers)
    prompt_filters: list[Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def build(cls, session: Session, options: ServerOptions) -> "ServerState":
        """Wires the hub, store, queue, history and workers around the session (whose config the server serves).

        Prompts a previous server left in the store are queued again before anything new.
        """
        hub = Hub()
        store = Store(options.state_dir, options.history_limit)
        queue = PromptQueue(on_change=lambda remaining: hub.send(STATUS, status_data(remaining)), store=store)
        history = History(store)
        resume_stored(queue, history, lambda item: RunRecorder(hub, item), session.validate)
        if options.workers is None:
            workers: Workers = PromptWorker(queue, history, session, hub, options.preview_interval)
        else:
            workers = RayWorkers(queue, history, session, hub, options)
        return cls(session.config, session, options, hub, queue, history, workers)


STATE = web.AppKey("sigmagraph_state", ServerState)
