"""What the handlers share, stored once in the application under the typed key STATE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from ..config import Config
from ..session import Session
from .history import History
from .hub import STATUS, Hub, status_data
from .options import ServerOptions
from .prompt_queue import PromptQueue
from .worker import PromptWorker


@dataclass
class ServerState:
    """The session that runs prompts, its configuration (the folders served), and the server's moving parts."""

    config: Config
    session: Session
    options: ServerOptions
    hub: Hub
    queue: PromptQueue
    history: History
    worker: PromptWorker
    # what pack loaders pass each POST /prompt body through (ComfyUI's on-prompt handlers)
    prompt_filters: list[Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def build(cls, session: Session, options: ServerOptions) -> "ServerState":
        """Wires the hub, queue, history and worker around the session (whose config the server serves)."""
        hub = Hub()
        queue = PromptQueue(session.interrupt, on_change=lambda remaining: hub.send(STATUS, status_data(remaining)))
        history = History(options.history_limit)
        worker = PromptWorker(queue, history, session, hub, options.preview_interval)
        return cls(session.config, session, options, hub, queue, history, worker)


STATE = web.AppKey("sigmagraph_state", ServerState)
