"""GET /ws?clientId=: the websocket a client listens on for its prompts' events."""

from __future__ import annotations

import uuid

from aiohttp import WSMsgType, web

from .errors import parse_query
from .front_end import feature_flags_reply
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
        async for message in ws:
            if message.type == WSMsgType.TEXT and (reply := feature_flags_reply(message.data, state.options)):
                client.comfyui_protocol = True  # ComfyUI's handshake: its feature flags, answered with ours
                client.offer(reply)
    finally:
        state.hub.disconnect(client)
    return ws
