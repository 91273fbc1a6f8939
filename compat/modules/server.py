"""ComfyUI's `server`: `PromptServer.instance`, through which packs add routes and message the front end.

The instance exists before any pack is imported and keeps nothing itself: routes, the message
sink, the loop and the current client live in compat.state, where the Sigmagraph server reads
the routes (`state.registered_routes()`) and sets the rest. Messages sent while no server
listens (a CLI run) are dropped.
"""

from __future__ import annotations

import asyncio
import struct
from io import BytesIO
from typing import Any, Callable

from aiohttp import web
from PIL import Image, ImageOps

from sigmagraph.compat import state


class BinaryEventTypes:
    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


def _encoded_preview(image_type: str, image: Image.Image, max_size: int | None) -> bytes:
    """A preview's bytes as ComfyUI frames them: the image type (1 JPEG, 2 PNG, 4-byte big-endian), then the image."""
    if max_size is not None:
        image = ImageOps.contain(image, (max_size, max_size), Image.Resampling.LANCZOS)
    buffer = BytesIO()
    buffer.write(struct.pack(">I", 2 if image_type == "PNG" else 1))
    image.save(buffer, format=image_type, quality=95, compress_level=1)
    return buffer.getvalue()


class PromptQueue:
    """What packs read of ComfyUI's queue: its server, and the number of prompts waiting (the server's)."""

    def __init__(self, server: "PromptServer"):
        self.server = server

    def get_tasks_remaining(self) -> int:
        return state.server.tasks_remaining()


class PromptServer:
    """ComfyUI's server object as packs use it; its state is the Sigmagraph server's (compat.state.server)."""

    instance: "PromptServer"

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        PromptServer.instance = self
        self.supports = ["custom_nodes_from_web"]
        self.prompt_queue = PromptQueue(self)

    @property
    def routes(self) -> web.RouteTableDef:
        return state.server.routes

    @property
    def app(self) -> web.Application:
        return state.server.app

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return state.server.loop

    @property
    def client_id(self) -> str | None:
        return state.server.running_client()

    @property
    def sockets_metadata(self) -> dict[str, dict]:
        return state.server.sockets_metadata

    @property
    def last_node_id(self) -> str | None:
        run = state.current_run()
        return run.node_id if run else None

    @property
    def last_prompt_id(self) -> str | None:
        run = state.current_run()
        return run.prompt_id if run else None

    def add_on_prompt_handler(self, handler: Callable[[dict], dict]) -> None:
        """Adds a function the server passes every submitted prompt's JSON through before queueing it."""
        state.server.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data: dict) -> dict:
        """The submitted prompt's JSON after every on-prompt handler (one that fails is skipped)."""
        return state.trigger_on_prompt(json_data)

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        """Sends a message (an event name or a BinaryEventTypes value, and its data) to one client or all.

        An unencoded preview, (format, PIL image, largest side or None), goes as ComfyUI sends it:
        a PREVIEW_IMAGE frame of the encoded image.
        """
        if state.server.send is None:
            return
        if event == BinaryEventTypes.UNENCODED_PREVIEW_IMAGE:
            event, data = BinaryEventTypes.PREVIEW_IMAGE, _encoded_preview(*data)
        state.server.send(event, data, sid)

    async def send(self, event: Any, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    def send_progress_text(self, text: str | bytes, node_id: str, sid: str | None = None) -> None:
        """A text shown under a node: ComfyUI's binary TEXT message (node id length, node id, text)."""
        text = text.encode("utf-8") if isinstance(text, str) else text
        node = str(node_id).encode("utf-8")
        self.send_sync(BinaryEventTypes.TEXT, struct.pack(">I", len(node)) + node + text, sid)


PromptServer()
