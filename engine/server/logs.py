"""The server's log for ComfyUI's front end (its Logs panel): /internal/logs, /internal/logs/raw and the
`logs` websocket event for subscribed clients, as ComfyUI's internal routes serve them.

While the server runs, a handler on the root logger keeps the last entries it prints (what the
console shows, packs' loggers included) as ComfyUI's `{"t": ISO time, "m": text}` entries.
"""

from __future__ import annotations

import logging
import shutil
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import StrictBool, StrictStr

from ..cli import CONSOLE_LOG_FORMAT
from .errors import json_response, read_json
from .hub import Hub
from .models import Body
from .state import STATE

CAPACITY = 300  # entries kept, as ComfyUI's logger
LOGS = "logs"  # the websocket event, ComfyUI's


def terminal_size() -> dict[str, int]:
    """The console's size, which the front end's terminal mirrors (80x24 when there is no terminal)."""
    size = shutil.get_terminal_size()
    return {"cols": size.columns, "rows": size.lines}


class LogBuffer(logging.Handler):
    """The last CAPACITY log entries; each new one also goes to the subscribed websocket clients."""

    def __init__(self, hub: Hub, capacity: int = CAPACITY) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(CONSOLE_LOG_FORMAT))
        self.entries: deque[dict[str, str]] = deque(maxlen=capacity)
        self.subscribers: set[str] = set()
        self.hub = hub

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = {"t": datetime.fromtimestamp(record.created).isoformat(), "m": self.format(record) + "\n"}
        except Exception:  # noqa: BLE001 — logging's contract: a bad record is reported, never raised
            self.handleError(record)
            return
        self.entries.append(entry)
        for client_id in list(self.subscribers):
            self.hub.send(LOGS, {"entries": [entry], "size": None}, client_id)

    def subscribe(self, client_id: str, enabled: bool) -> None:
        """(Un)subscribes a client; ids no longer connected are dropped, so the set stays bounded."""
        self.subscribers = {sid for sid in self.subscribers if self.hub.is_connected(sid)}
        if enabled:
            self.subscribers.add(client_id)
        else:
            self.subscribers.discard(client_id)


LOG_BUFFER: web.AppKey[LogBuffer] = web.AppKey("log_buffer", LogBuffer)


async def log_capture(app: web.Application) -> AsyncIterator[None]:
    """Keeps the log while the server runs (cleanup context)."""
    buffer = app[LOG_BUFFER] = LogBuffer(app[STATE].hub)
    logging.getLogger().addHandler(buffer)
    yield
    logging.getLogger().removeHandler(buffer)


class LogSubscription(Body):
    clientId: StrictStr  # noqa: N815 — ComfyUI's field name
    enabled: StrictBool


async def get_logs(request: web.Request) -> web.Response:
    """GET /internal/logs: the entries as one string, "time - text" each."""
    return json_response("".join(f"{e['t']} - {e['m']}" for e in request.app[LOG_BUFFER].entries))


async def get_raw_logs(request: web.Request) -> web.Response:
    """GET /internal/logs/raw: `{entries: [{t, m}], size: {cols, rows}}`."""
    return json_response({"entries": list(request.app[LOG_BUFFER].entries), "size": terminal_size()})


async def patch_subscribe(request: web.Request) -> web.Response:
    """PATCH /internal/logs/subscribe `{clientId, enabled}`: new entries as `logs` events to that client."""
    body: Any = await read_json(request, LogSubscription)
    request.app[LOG_BUFFER].subscribe(body.clientId, body.enabled)
    return web.Response(status=200)
