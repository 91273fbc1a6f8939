"""The application factory and the route table (every route, in one place)."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from aiohttp import web

from ..config import Config
from ..session import Session
from . import api, files, front_end, jobs, logs, model_files, pack_offers, settings, static, userdata, ws
from .errors import json_errors
from .options import ServerOptions
from .pack_hooks import attach_loaders, filtered
from .security import BrowserGuard
from .state import STATE, ServerState

# ComfyUI's API, served at these paths and again under /api/ (as ComfyUI does, for its front end).
API_ROUTES = [
    web.post("/prompt", filtered(api.post_prompt)),
    web.get("/prompt", api.get_prompt),
    web.get("/queue", api.get_queue),
    web.post("/queue", api.post_queue),
    web.post("/interrupt", api.post_interrupt),
    web.get("/history", api.get_history),
    web.get("/history/{prompt_id}", api.get_history_item),
    web.post("/history", api.post_history),
    web.post("/free", api.post_free),
    web.get("/object_info", api.object_info),
    web.get("/object_info/{node_class}", api.object_info_node),
    web.get("/socket_types", api.socket_types),
    web.get("/system_stats", api.get_system_stats),
    web.get("/view", files.view),
    web.post("/upload/image", files.upload_image),
    web.get("/extensions", static.extensions_index),
    web.get("/ws", ws.websocket),
    # what ComfyUI's own front end asks for (--front-end comfyui)
    web.get("/features", front_end.get_features),
    web.get("/users", userdata.get_users),
    web.get("/userdata", userdata.list_userdata),
    web.get("/v2/userdata", userdata.list_userdata_tree),
    web.get("/userdata/{file}", userdata.get_userdata),
    web.post("/userdata/{file}", userdata.post_userdata),
    web.delete("/userdata/{file}", userdata.delete_userdata),
    web.post("/userdata/{file}/move/{dest}", userdata.move_userdata),
    web.get("/settings", settings.get_settings),
    web.post("/settings", settings.post_settings),
    web.get("/settings/{id}", settings.get_setting),
    web.post("/settings/{id}", settings.post_setting),
    web.get("/embeddings", model_files.list_embeddings),
    web.get("/models", model_files.list_folders),
    web.get("/models/{folder}", model_files.list_models),
    web.get("/experiment/models", model_files.list_folders_experiment),
    web.get("/experiment/models/{folder}", model_files.list_models_experiment),
    web.get("/view_metadata/{folder}", model_files.view_metadata),
    web.get("/i18n", pack_offers.get_i18n),
    web.get("/workflow_templates", pack_offers.get_workflow_templates),
    web.get("/global_subgraphs", front_end.nothing_offered),
]

# ComfyUI serves its job listing under /api/ only.
JOB_ROUTES = [web.get("/api/jobs", jobs.get_jobs), web.get("/api/jobs/{job_id}", jobs.get_job)]

# The editor's pages and files; the catch-all for web/ files comes last (after the routes of node packs).
PAGE_ROUTES = [
    web.get("/", static.index),
    web.get("/workflows", static.workflows_index),
    web.get("/workflows/{name}", static.workflow_file),
    web.get("/extensions/{pack}/{path:.+}", static.extension_file),
    web.get("/templates/{path:.+}", front_end.template_file),
    web.get("/api/workflow_templates/{pack}/{path:.+}", pack_offers.workflow_template_file),
    web.get("/internal/folder_paths", model_files.folder_paths),
    web.get("/internal/logs", logs.get_logs),
    web.get("/internal/logs/raw", logs.get_raw_logs),
    web.patch("/internal/logs/subscribe", logs.patch_subscribe),
    web.get("/user.css", front_end.legacy_user_css),
    web.get("/{path:.+}", static.web_file),
]


async def _worker_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Starts the workers with the server, and at cleanup stops them (interrupting their prompts) and the store."""
    state = app[STATE]
    state.hub.bind(asyncio.get_running_loop())
    state.workers.start()
    yield
    await asyncio.to_thread(state.workers.stop)
    state.queue.store.close()


async def _close_websockets(app: web.Application) -> None:
    await app[STATE].hub.close_all()


def create_app(config: Config, session: Session | None = None, options: ServerOptions | None = None
               ) -> web.Application:
    """The server of `session` (default: a new Session of `config`, loading the packs), with its folders.

    The session's pack loaders get the app before the editor's routes: the routes they add come first.
    """
    options = options or ServerOptions()
    session = session if session is not None else Session(config)
    guard = BrowserGuard(options.host, options.cors_origin)
    app = web.Application(client_max_size=options.max_upload_bytes, middlewares=[guard.middleware, json_errors])
    app[STATE] = ServerState.build(session, options)
    app[userdata.USER_FILES] = userdata.UserFiles.for_state(options.state_dir)
    app.add_routes(API_ROUTES)
    app.add_routes([web.RouteDef(r.method, "/api" + r.path, r.handler, r.kwargs) for r in API_ROUTES])
    app.add_routes(JOB_ROUTES)
    attach_loaders(app, app[STATE])
    app.add_routes(PAGE_ROUTES)
    app.cleanup_ctx.append(logs.log_capture)
    app.cleanup_ctx.append(_worker_lifetime)
    app.on_shutdown.append(_close_websockets)
    app.on_cleanup.append(userdata.remove_temporary)
    return app
