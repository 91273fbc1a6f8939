"""`PromptServer.instance` made the Sigmagraph server's while it runs (through the engine's ServerLink).

Before a server exists, packs write to stand-ins in compat.state: a route table, an application
(some packs add routes or middlewares to `PromptServer.instance.app` directly), a message sink
that drops. `attach` moves what they added onto the real application, adds the routes packs
declared (again under /api/, as ComfyUI does for its front end), delivers `send_sync` on the
server's websocket and passes POST /prompt bodies through the on-prompt handlers. When the
application is cleaned up, PromptServer goes back to stand-ins.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from aiohttp import web


from . import state

if TYPE_CHECKING:
    from sigmagraph.engine.server.pack_hooks import ServerLink

_served: weakref.WeakSet[web.Application] = weakref.WeakSet()  # the real applications attached so far


def _pack_routes() -> list[web.AbstractRouteDef]:
    """The routes packs declared, each (method, path) once: the latest (a pack imported again declares them again);
    the plain ones also under /api/."""
    latest = {(r.method, r.path) if isinstance(r, web.RouteDef) else r: r for r in state.registered_routes()}
    routes = list(latest.values())
    return [web.RouteDef(r.method, "/api" + r.path, r.handler, r.kwargs)
            for r in routes if isinstance(r, web.RouteDef)] + routes


def _move_additions(stand_in: web.Application, app: web.Application) -> None:
    """Puts the routes and middlewares packs added to the stand-in application on the real one."""
    for resource in stand_in.router.resources():
        if isinstance(resource, web.StaticResource):
            info = resource.get_info()
            app.router.add_static(info["prefix"], info["directory"])
            continue
        for route in resource:
            app.router.add_route(route.method, resource.canonical, route.handler)
    app.middlewares.extend(stand_in.middlewares)


def attach(link: ServerLink) -> None:
    """Makes PromptServer.instance the server of `link` until its application is cleaned up."""
    server = state.server
    if server.app not in _served:
        _move_additions(server.app, link.app)
    _served.add(link.app)
    link.app.add_routes(_pack_routes())
    server.app, server.send = link.app, link.send
    server.running_client, server.tasks_remaining = link.running_client, link.queue_remaining
    link.prompt_filters.append(state.trigger_on_prompt)

    async def bind_loop(app: web.Application) -> None:
        if server.app is app:
            server.loop = asyncio.get_running_loop()

    async def detach(app: web.Application) -> None:
        if server.app is app:  # back to the stand-ins (what packs registered stays)
            idle = state.ServerLink()
            server.app, server.send, server.loop = idle.app, idle.send, idle.loop
            server.running_client, server.tasks_remaining = idle.running_client, idle.tasks_remaining

    link.app.on_startup.append(bind_loop)
    link.app.on_cleanup.append(detach)
