"""The sigmas of a schedule node from its widget values, without queueing: what the editor's inline curve draws.

`GET /lab/schedule_nodes` names the node types it evaluates, and
`POST /lab/sigmas {"class_type": ..., "inputs": {widget: value}}` answers `{"sigmas": [...], "model": ...}`
by calling the node's own function, so the curve shows the numbers a run gives. Only built-in schedule
nodes are evaluated (one SIGMAS output from widgets and at most a MODEL; their functions are pure).
A MODEL input is not read from the graph (the model may live in another worker, or not be loaded yet):
such schedules are drawn for SD1.x's discrete schedule, and the answer names that stand-in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sigmagraph.engine import Config, NodeSpec, Registry, SocketType
from sigmagraph.engine.server.errors import ApiError, json_response
from sigmagraph.engine.server.pack_hooks import ServerLink
from sigmagraph.engine.server.state import STATE
from sigmagraph.engine.spec import SocketInput
from sigmagraph.engine.validation import validate

from ...sampling.model_sampling import ModelSampling, discrete_model_sampling

BUILTIN_PACKS = "sigmagraph.nodes.packs."
STAND_IN_MODEL = "SD1.x (discrete, eps)"  # what a MODEL input is taken to be


@dataclass(frozen=True)
class ScheduleModel:
    """The part of a MODEL that schedule nodes read: its noise levels."""

    model_sampling: ModelSampling


def is_schedule_node(spec: NodeSpec) -> bool:
    """A built-in node giving one SIGMAS from its widgets and at most a MODEL input."""
    sockets = [i.type for i in spec.inputs if isinstance(i, SocketInput)]
    return ([o.type for o in spec.outputs] == ["SIGMAS"] and set(sockets) <= {"MODEL"} and not spec.hidden
            and getattr(spec.function, "__module__", "").startswith(BUILTIN_PACKS))


def widget_values(spec: NodeSpec, inputs: Any, config: Config) -> dict[str, Any]:
    """The widget inputs checked and coerced as a run's validation does them; ValueError says what is wrong."""
    widgets = spec.model_copy(update={"inputs": tuple(i for i in spec.inputs if not isinstance(i, SocketInput))})
    registry = Registry()
    registry.register_type(SocketType(name="SIGMAS"))
    registry.add(widgets)
    checked = validate({"1": {"class_type": spec.name, "inputs": inputs}}, registry, config, targets=["1"])
    if not checked.ok:
        errors = checked.report.node_errors.get("1", {}).get("errors", [])
        raise ValueError("; ".join(e["message"] for e in errors) or checked.report.summary())
    return checked.nodes["1"].literals


def schedule_sigmas(spec: NodeSpec, inputs: Any, config: Config) -> tuple[list[float], str | None]:
    """The node's sigmas for these widget values, and the stand-in model used (None when it takes no model)."""
    values = widget_values(spec, inputs, config)
    models = {i.name for i in spec.inputs if isinstance(i, SocketInput)}
    values |= {name: ScheduleModel(discrete_model_sampling("eps")) for name in models}
    sigmas = spec.function(**values)
    return [float(s) for s in sigmas], STAND_IN_MODEL if models else None


async def get_schedule_nodes(request: web.Request) -> web.Response:
    """GET /lab/schedule_nodes: the node types whose sigmas POST /lab/sigmas gives."""
    registry = request.app[STATE].session.registry
    return json_response(sorted(name for name, spec in registry.nodes.items() if is_schedule_node(spec)))


async def post_sigmas(request: web.Request) -> web.Response:
    """POST /lab/sigmas: the sigmas of a schedule node for the widget values given."""
    try:
        body = await request.json()
    except ValueError as error:
        raise ApiError(400, f"the body must be JSON: {error}") from None
    state = request.app[STATE]
    name = body.get("class_type") if isinstance(body, dict) else None
    spec = state.session.registry.nodes.get(name) if isinstance(name, str) else None
    if spec is None or not is_schedule_node(spec):
        raise ApiError(400, f"{name!r} is not a schedule node: the inline curve is drawn for built-in nodes giving "
                            "SIGMAS from their widgets (BasicScheduler, KarrasScheduler, ...)")
    try:
        # Off the event loop: a schedule of thousands of steps (beta quantiles) takes a moment.
        sigmas, model = await asyncio.to_thread(schedule_sigmas, spec, body.get("inputs") or {}, state.session.config)
    except ValueError as error:
        raise ApiError(400, f"{name}: {error}", "invalid_input") from None
    return json_response({"class_type": name, "sigmas": sigmas, "model": model})


def add_routes(link: ServerLink) -> None:
    """Adds GET /lab/schedule_nodes and POST /lab/sigmas to the server."""
    link.app.router.add_get("/lab/schedule_nodes", get_schedule_nodes)
    link.app.router.add_post("/lab/sigmas", post_sigmas)
