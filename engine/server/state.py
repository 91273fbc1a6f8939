"""What the handlers share, stored once in the application under the typed key STATE."""

from __future__ import annotations

from dataclasses import dataclass

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
    """The configuration, the session that runs prompts, and the server's moving parts."""

    config: Config
    session: Session
    options: ServerOptions
    hub: Hub
    queue: PromptQueue
    history: History
    worker: PromptWorker

    @classmethod
    def build(cls, config: Config, session: Session, options: ServerOptions) -> "ServerState":
        """Wires the hub, queue, history and worker around the session's executor."""
        hub = Hub()
        queue = PromptQueue(session.executor.interrupt,
                            on_change=lambda remaining: hub.send(STATUS, status_data(remaining)))
        history = History(options.history_limit)
        worker = PromptWorker(queue, history, session.executor, hub, options.preview_interval)
        return cls(config, session, options, hub, queue, history, worker)


STATE = web.AppKey("sigmagraph_state", ServerState)
