"""What the server lends pack loaders (engine/pack_loader.py): the app, message delivery, prompt filters.

A loader adapting packs of another host (ComfyUI's `PromptServer`) gets one `ServerLink` per
application, before the editor's catch-all route is added, so the routes it adds are reached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from .errors import PARSED_BODY
from .state import STATE, ServerState

MessageSink = Callable[[Any, Any, "str | None"], None]
PromptFilter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ServerLink:
    """The server, as a pack loader may use it."""

    app: web.Application  # routes, middlewares and startup hooks may be added until it starts
    send: MessageSink  # (event, data, client id or None for every client), from any thread, in order with runs' events
    prompt_filters: list[PromptFilter]  # every POST /prompt body passes through these, in order, before validation
    queue_remaining: Callable[[], int]  # prompts pending or running
    running_client: Callable[[], str | None]  # the client id of the running prompt, if it named one


def attach_loaders(app: web.Application, state: ServerState) -> None:
    """Gives each pack loader of the session, and each pack module defining `attach_server(link)`, the link
    to this application."""
    link = ServerLink(app=app, send=state.hub.send_message, prompt_filters=state.prompt_filters,
                      queue_remaining=state.queue.remaining,
                      running_client=lambda: next((item.client_id for item in state.queue.snapshot()[0]), None))
    for loader in state.session.registry.loaders:
        loader.attach_server(link)
    for hook in state.session.registry.server_hooks.values():
        hook(link)


def filtered(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    """`handler` reading a JSON object body passed through the prompt filters first (a body that is not
    a JSON object is left for the handler to refuse)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        filters = request.app[STATE].prompt_filters
        if filters:
            try:
                body = json.loads(await request.read())
            except (ValueError, RecursionError):
                body = None
            if isinstance(body, dict):
                for prompt_filter in filters:
                    body = prompt_filter(body)
                request[PARSED_BODY] = body
        return await handler(request)

    return handle
