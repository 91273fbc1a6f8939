"""GET /ws?clientId=: the websocket a client listens on for its prompts' events."""

from __future__ import annotations

import uuid

from aiohttp import web

from .errors import parse_query
from .hub import STATUS, event_message, status_data
from .models import SocketQuery
from .state import STATE


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Greets with `status` (queue length and the client's `sid`), then streams until either side closes."""
    state = request.app[STATE]
    sid = parse_query(request, SocketQuery).clientId or uuid.uuid4().hex
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    client = state.hub.connect(sid, ws, event_message(STATUS, status_data(state.queue.remaining(), sid)))
    try:
        async for _ in ws:
            pass  # clients have nothing to say yet (ComfyUI's feature_flags greeting needs no answer)
    finally:
        state.hub.disconnect(client)
    return ws
