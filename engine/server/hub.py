"""The websocket hub: connected clients by id, and delivery of events from any thread, in order.

Events of a prompt go to the client that queued it; without a client id only ComfyUI's
broadcast kinds (status, progress, interruptions, previews) go to everyone. Each client has
its own outbox drained by its own task, so a slow reader delays only itself; one that falls
too far behind is disconnected (it can reconnect and read /history).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from io import BytesIO
from typing import Any

from aiohttp import WSCloseCode, web
from PIL import Image, ImageOps

from ..events import EXECUTION_INTERRUPTED, EXECUTION_ROUTED, NODE_FINISHED, PROGRESS
from .errors import dumps

log = logging.getLogger("sigmagraph.server")

STATUS = "status"
BROADCAST_WITHOUT_CLIENT = {STATUS, PROGRESS, EXECUTION_INTERRUPTED}
# Beyond ComfyUI's protocol: not sent to a client that spoke ComfyUI's handshake (its front end reports
# unknown message types as errors).
SIGMAGRAPH_EVENTS = {NODE_FINISHED, EXECUTION_ROUTED}
OUTBOX_LIMIT = 4096  # messages waiting for one client before it counts as gone
PREVIEW_IMAGE, JPEG, PNG = 1, 1, 2  # ComfyUI's binary frame: event type 1 = preview image, image type 1 JPEG, 2 PNG
PREVIEW_MAX_SIDE = 512

Message = str | bytes


def status_data(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    """ComfyUI's `status` message data (with `sid` only in the greeting of a new connection)."""
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return data


def event_message(event: str, data: Any) -> str:
    """The JSON text frame `{"type": event, "data": data}`."""
    return dumps({"type": event, "data": data})


def preview_frame(image: Image.Image) -> bytes:
    """A binary preview frame: event type, image type (4-byte big-endian each), then JPEG bytes."""
    if max(image.size) > PREVIEW_MAX_SIDE:  # shrink big previews, never enlarge small ones
        image = ImageOps.contain(image, (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
    buffer = BytesIO()
    buffer.write(struct.pack(">II", PREVIEW_IMAGE, JPEG))
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def image_frame(image: Image.Image) -> bytes:
    """A whole picture as ComfyUI's SaveImageWebsocket sends it: a preview frame of PNG bytes, full size."""
    buffer = BytesIO()
    buffer.write(struct.pack(">II", PREVIEW_IMAGE, PNG))
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Client:
    """One websocket connection and the task that writes its outbox."""

    def __init__(self, sid: str, ws: web.WebSocketResponse):
        self.sid, self.ws = sid, ws
        self.comfyui_protocol = False  # set by the feature_flags handshake: ComfyUI's events only
        self.outbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self.sender = asyncio.create_task(self._send_all())

    async def _send_all(self) -> None:
        while True:
            message = await self.outbox.get()
            try:
                if isinstance(message, bytes):
                    await self.ws.send_bytes(message)
                else:
                    await self.ws.send_str(message)
            except ConnectionError:  # the peer went away; the handler removes this client
                return

    def offer(self, message: Message) -> bool:
        """Queues a message; False when the outbox is full."""
        try:
            self.outbox.put_nowait(message)
            return True
        except asyncio.QueueFull:
            return False


class Hub:
    """The connected clients; `send*` may be called from any thread once `bind` gave it the loop."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the clients live on (the server's)."""
        self._loop = loop

    def send(self, event: str, data: dict[str, Any], client_id: str | None = None) -> None:
        """Sends an event to `client_id`, or to everyone if it has none and is a broadcast kind."""
        if client_id is None and event not in BROADCAST_WITHOUT_CLIENT:
            return
        self._post(event_message(event, data), client_id, comfyui=event not in SIGMAGRAPH_EVENTS)

    def send_message(self, event: str | int, data: Any, client_id: str | None = None) -> None:
        """Sends a node pack's message to `client_id`, or to everyone without one (ComfyUI's send_sync).

        Bytes go as a binary frame: the event number (4-byte big-endian), then the bytes; any
        other data as the JSON frame `{"type": event, "data": data}`.
        """
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._post(struct.pack(">I", int(event)) + bytes(data), client_id)
        else:
            self._post(event_message(str(event), data), client_id)

    def send_preview(self, frame: bytes, client_id: str | None = None) -> None:
        """Sends a binary preview frame to `client_id` (to everyone without one)."""
        self._post(frame, client_id)

    def _post(self, message: Message, client_id: str | None, comfyui: bool = True) -> None:
        if self._loop is None:
            return  # not serving yet: nobody is connected
        try:
            self._loop.call_soon_threadsafe(self._deliver, message, client_id, comfyui)
        except RuntimeError:  # the loop is closed: the server is shutting down
            pass

    def _deliver(self, message: Message, client_id: str | None, comfyui: bool = True) -> None:
        targets = list(self._clients.values()) if client_id is None else [self._clients.get(client_id)]
        for client in targets:
            if client is None or (client.comfyui_protocol and not comfyui):
                continue
            if not client.offer(message):
                log.warning("websocket client %s fell %d messages behind: disconnecting it", client.sid,
                            OUTBOX_LIMIT)
                self._close_later(client, WSCloseCode.TRY_AGAIN_LATER, b"too far behind; reconnect and read /history")

    def is_connected(self, sid: str) -> bool:
        return sid in self._clients

    def connect(self, sid: str, ws: web.WebSocketResponse, greeting: str) -> Client:
        """Registers a connection (replacing an older one with the same id) with its first message."""
        old = self._clients.get(sid)
        if old is not None:
            self._close_later(old, WSCloseCode.GOING_AWAY, b"replaced by a new connection")
        client = Client(sid, ws)
        client.offer(greeting)
        self._clients[sid] = client
        return client

    def disconnect(self, client: Client) -> None:
        """Forgets a connection and stops its sender (unless a newer one took its id, that stays)."""
        if self._clients.get(client.sid) is client:
            del self._clients[client.sid]
        client.sender.cancel()

    def _close_later(self, client: Client, code: int, reason: bytes) -> None:
        self.disconnect(client)
        task = asyncio.ensure_future(client.ws.close(code=code, message=reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close_all(self) -> None:
        """Closes every connection at once (at shutdown, so that the server need not wait for them)."""
        for client in list(self._clients.values()):
            self._close_later(client, WSCloseCode.GOING_AWAY, b"server shutting down")
        await asyncio.gather(*self._closing, return_exceptions=True)
