"""ComfyUI's JSON routes: prompt, queue, interrupt, history, free, object_info, system_stats."""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from ..events import timestamp
from ..workflow import WorkflowError
from .errors import ApiError, json_response, parse_query, read_json
from .history import History
from .hub import status_data
from .models import ClearDelete, FreeRequest, HistoryQuery, InterruptRequest, PromptRequest
from .prompt_queue import PromptQueue
from .state import STATE
from .system import system_stats


async def post_prompt(request: web.Request) -> web.Response:
    """POST /prompt: validates and queues -> {prompt_id, number, node_errors}, or 400 {error, node_errors}.

    As in ComfyUI, a prompt with some valid outputs is queued to produce those (`partial_execution_targets`
    names the outputs wanted, all when absent); `node_errors` then lists the problems of the others.
    """
    state = request.app[STATE]
    body = await read_json(request, PromptRequest)
    try:
        document = state.session.load(body.prompt)  # a UI-format document is converted, as the CLI does
    except WorkflowError as e:
        raise ApiError(400, str(e), "invalid_prompt") from None
    workflow = await asyncio.to_thread(state.session.validate, document, body.partial_execution_targets)
    if not workflow.ok:
        return json_response(workflow.report.to_json(), 400)
    prompt_id = body.prompt_id or str(uuid.uuid4())
    if state.queue.knows(prompt_id) or prompt_id in state.history:
        raise ApiError(400, f"prompt_id {prompt_id} is already queued or in the history; use a new one",
                       "invalid_prompt_id")
    extra_data = {**body.extra_data, "create_time": timestamp()}
    if body.client_id is not None:
        extra_data["client_id"] = body.client_id
    item = state.queue.put(prompt_id, document, extra_data, workflow, number=body.number, front=body.front)
    return json_response({"prompt_id": item.prompt_id, "number": item.number,
                          "node_errors": workflow.report.node_errors})


async def get_prompt(request: web.Request) -> web.Response:
    """GET /prompt: `{exec_info: {queue_remaining}}`."""
    return json_response(status_data(request.app[STATE].queue.remaining())["status"])


async def get_queue(request: web.Request) -> web.Response:
    """GET /queue: `{queue_running, queue_pending}` as lists of ComfyUI queue items."""
    running, pending = request.app[STATE].queue.snapshot()
    return json_response({"queue_running": [item.to_json() for item in running],
                          "queue_pending": [item.to_json() for item in pending]})


async def _clear_delete(request: web.Request, store: PromptQueue | History) -> web.Response:
    """Applies a `{clear, delete}` body: everything goes, and/or the listed prompt ids."""
    body = await read_json(request, ClearDelete)
    if body.clear:
        store.clear()
    store.delete(body.delete)
    return web.Response()


async def post_queue(request: web.Request) -> web.Response:
    """POST /queue {clear, delete}: removes pending prompts (interrupt the running one instead)."""
    return await _clear_delete(request, request.app[STATE].queue)


async def post_interrupt(request: web.Request) -> web.Response:
    """POST /interrupt {prompt_id?}: stops that prompt if it is running, on whichever worker (every one without)."""
    body = await read_json(request, InterruptRequest, empty_ok=True)
    await asyncio.to_thread(request.app[STATE].workers.interrupt, body.prompt_id or None)
    return web.Response()


async def get_history(request: web.Request) -> web.Response:
    """GET /history?max_items&offset: finished prompts, oldest first."""
    query = parse_query(request, HistoryQuery)
    return json_response(request.app[STATE].history.page(query.max_items, query.offset))


async def get_history_item(request: web.Request) -> web.Response:
    """GET /history/{prompt_id}: `{prompt_id: entry}`, or `{}` until it has finished."""
    return json_response(request.app[STATE].history.get(request.match_info["prompt_id"]))


async def post_history(request: web.Request) -> web.Response:
    """POST /history {clear, delete}."""
    return await _clear_delete(request, request.app[STATE].history)


async def post_free(request: web.Request) -> web.Response:
    """POST /free {unload_models, free_memory}: clears every worker's engine cache now, or after its prompt."""
    state = request.app[STATE]
    body = await read_json(request, FreeRequest, empty_ok=True)
    if body.unload_models or body.free_memory:
        await asyncio.to_thread(state.workers.free)
    return web.Response()


async def object_info(request: web.Request) -> web.Response:
    """GET /object_info: the node catalogue (combo lists read the folders, hence off the loop)."""
    state = request.app[STATE]
    return json_response(await asyncio.to_thread(state.session.registry.catalogue, state.config))


async def object_info_node(request: web.Request) -> web.Response:
    """GET /object_info/{class}: one entry, or `{}` for an unknown class (as ComfyUI answers)."""
    state = request.app[STATE]
    name = request.match_info["node_class"]
    spec = state.session.registry.nodes.get(name)
    return json_response({name: await asyncio.to_thread(spec.catalogue_entry, state.config)} if spec else {})


async def socket_types(request: web.Request) -> web.Response:
    """GET /socket_types: every registered socket type with its colour (not in ComfyUI's API)."""
    registry = request.app[STATE].session.registry
    return json_response({name: t.model_dump(exclude={"name"}) for name, t in registry.types.items()})


async def get_system_stats(request: web.Request) -> web.Response:
    """GET /system_stats, with `workers`: each worker's name, state, device and what it holds."""
    state = request.app[STATE]
    stats = await asyncio.to_thread(system_stats, state.config, state.session.registry)
    return json_response({**stats, "workers": await asyncio.to_thread(state.workers.describe)})
