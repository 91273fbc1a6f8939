"""Process state shared by the ComfyUI facade modules; it outlives their reloads and `sys.modules` purges.

The loader, server or session activates the Config; the adapter wraps each pack node call in
`running(ctx)` so the facades (ProgressBar, throw_exception_if_processing_interrupted, direct
calls of core nodes) find the run; the server lends PromptServer its message sink, loop and
current client, and adds the routes packs registered.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from aiohttp import web

from sigmagraph.engine import Config, RunContext
from sigmagraph.engine.context import InterruptFlag
from sigmagraph.engine.events import discard

from . import folders

log = logging.getLogger("sigmagraph.compat")

# ------------------------------------------------------------------------------------------------
# The active configuration and ComfyUI's model-folder table over it

_active: Config | None = None
_folder_defaults: dict[str, list[str]] = {}  # the default paths the folder table currently holds

# folder_paths.folder_names_and_paths: one dict for the life of the process, which packs extend.
model_folders: dict[str, tuple[list[str], Any]] = {}
# folder_paths.filename_list_cache: name -> (files, {folder: mtime}, time listed)
filename_list_cache: dict[str, tuple[list[str], dict[str, float], float]] = {}


def activate(config: Config) -> None:
    """Makes `config` the one the facades describe (folders, device); the model-folder table follows it."""
    global _active, _folder_defaults
    defaults = folders.default_paths(config)
    folders.rebase(model_folders, _folder_defaults, defaults)
    filename_list_cache.clear()  # listings of the previous folders
    _active, _folder_defaults = config, defaults


def config() -> Config:
    """The active Config (a default one until something activates another)."""
    if _active is None:
        activate(Config())
    return _active


def folder_table() -> dict[str, tuple[list[str], Any]]:
    """`folder_names_and_paths`, filled from the active Config on first use."""
    config()
    return model_folders


# ------------------------------------------------------------------------------------------------
# The running node

_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("sigmagraph_compat_run", default=None)
# The parametrization of the model a pack's sampler function is sampling (its extra_args, ComfyUI's, lack it).
sampling_model: contextvars.ContextVar[Any] = contextvars.ContextVar("sigmagraph_compat_sampling_model", default=None)
# GraphBuilder's default id prefix (root, call index, graph index), as ComfyUI sets it per node call.
graph_prefix: contextvars.ContextVar[tuple[str, int, int]] = contextvars.ContextVar(
    "graph_builder_default_prefix", default=("", 0, 0))
# Interrupts requested outside any run (ComfyUI's global flag), e.g. by a pack's own worker.
idle_interrupt = InterruptFlag()


@contextmanager
def running(ctx: RunContext, call_index: int = 0) -> Iterator[RunContext]:
    """Makes `ctx` the running node's context (and its GraphBuilder prefix) inside the block."""
    run_token = _run.set(ctx)
    prefix_token = graph_prefix.set((ctx.node_id, call_index, 0))
    try:
        yield ctx
    finally:
        graph_prefix.reset(prefix_token)
        _run.reset(run_token)


def current_run() -> RunContext | None:
    """The running node's context, None outside a run."""
    return _run.get()


def run_context() -> RunContext:
    """The running node's context, else one over the active Config whose events go nowhere."""
    return _run.get() or RunContext(config(), prompt_id="", node_id="", emit=discard, interrupt=idle_interrupt)


# ------------------------------------------------------------------------------------------------
# Node classes: ComfyUI's nodes.NODE_CLASS_MAPPINGS holds the core nodes and every loaded pack's

node_class_mappings: dict[str, type] = {}
node_display_name_mappings: dict[str, str] = {}
extension_web_dirs: dict[str, str] = {}

# comfy.utils.set_progress_bar_global_hook's hook; None reports through the running node's context.
progress_bar_hook: Callable[..., Any] | None = None


def set_progress_bar_hook(hook: Callable[..., Any] | None) -> None:
    """Replaces the hook every new comfy.utils.ProgressBar reports to (None: the running node's context)."""
    global progress_bar_hook
    progress_bar_hook = hook


# ------------------------------------------------------------------------------------------------
# The server's side of PromptServer

MessageSink = Callable[[Any, Any, "str | None"], None]  # (event, data, client id)


@dataclass
class ServerLink:
    """What the Sigmagraph server lends `PromptServer.instance` (serving.py sets these fields while it runs)."""

    send: MessageSink | None = None  # where send_sync / send deliver; None drops the messages
    loop: asyncio.AbstractEventLoop | None = None
    running_client: Callable[[], "str | None"] = lambda: None  # the client of the prompt being run
    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    app: web.Application = field(default_factory=web.Application)  # before a server: routes packs add directly
    on_prompt_handlers: list[Callable[[dict], dict]] = field(default_factory=list)
    sockets_metadata: dict[str, dict] = field(default_factory=dict)  # client id -> its feature flags
    tasks_remaining: Callable[[], int] = lambda: 0  # prompts waiting in the server's queue


server = ServerLink()


def registered_routes() -> list[web.AbstractRouteDef]:
    """The routes packs declared with `@PromptServer.instance.routes.get(...)`, for the server to add."""
    return list(server.routes)


def trigger_on_prompt(json_data: dict) -> dict:
    """A submitted prompt's JSON after every pack's on-prompt handler (one that fails is skipped, as in ComfyUI)."""
    for handler in server.on_prompt_handlers:
        try:
            json_data = handler(json_data)
        except Exception:  # noqa: BLE001 - a broken pack handler must not block prompts
            log.exception("on_prompt handler %s failed", getattr(handler, "__name__", handler))
    return json_data
