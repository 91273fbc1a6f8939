"""JSON in and out: request bodies checked by pydantic models, and one error shape for every refusal.

Every error a client can cause answers with `{"error": {type, message, details, extra_info}}`
(ComfyUI's error object) and a 4xx status; only a server bug gives 500, still as JSON.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

log = logging.getLogger("sigmagraph.server")

Model = TypeVar("Model", bound=BaseModel)
# The request key of a JSON body already read (and rewritten by prompt filters): read_json takes it as the body.
PARSED_BODY = "sigmagraph_parsed_body"


class ApiError(Exception):
    """A refused request: HTTP status, ComfyUI-style error type and a message a person can act on."""

    def __init__(self, status: int, message: str, type: str = "invalid_request", details: str = ""):
        super().__init__(message)
        self.status, self.message, self.type, self.details = status, message, type, details


def dumps(value: Any) -> str:
    """JSON text; values that are not JSON (a node's odd UI payload) become strings rather than a 500."""
    return json.dumps(value, default=str)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response encoded with `dumps`."""
    return web.json_response(data, status=status, dumps=dumps)


def error_response(status: int, message: str, type: str = "invalid_request", details: str = "") -> web.Response:
    """ComfyUI's error object as a response."""
    return json_response({"error": {"type": type, "message": message, "details": details, "extra_info": {}}},
                         status)


def validate_model(model: type[Model], data: Any, where: str = "body") -> Model:
    """`data` checked against `model`; ApiError 400 listing every problem otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or where}: {err['msg']}" for err in e.errors())
        raise ApiError(400, f"invalid request {where}: {problems}") from None


async def read_json(request: web.Request, model: type[Model], empty_ok: bool = False) -> Model:
    """The JSON body checked against `model` (an empty body counts as `{}` when `empty_ok`)."""
    if PARSED_BODY in request:
        return validate_model(model, request[PARSED_BODY])
    raw = await request.read()  # bounded by the app's client_max_size: larger bodies raise 413
    if not raw.strip():
        if not empty_ok:
            raise ApiError(400, f"{request.method} {request.path} needs a JSON object body")
        return validate_model(model, {})
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    return validate_model(model, data)


def parse_query(request: web.Request, model: type[Model]) -> Model:
    """The query string checked against `model`."""
    return validate_model(model, dict(request.query), where="query")


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turns refusals, aiohttp's HTTP errors and unexpected exceptions into JSON error responses."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.message, e.type, e.details)
    except web.HTTPRequestEntityTooLarge as e:
        return error_response(413, f"the request body is too large ({e.text}); the server's limit is set "
                                   "with --max-upload-size MB", "request_too_large")
    except web.HTTPMethodNotAllowed as e:
        allowed = ", ".join(sorted(e.allowed_methods))
        return error_response(405, f"{request.method} is not allowed on {request.path} (allowed: {allowed})",
                              "method_not_allowed")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(e.status, f"{request.method} {request.path}: {e.reason}",
                              e.reason.lower().replace(" ", "_"))
    except Exception:  # noqa: BLE001 - a bug must still answer JSON, and the log keeps the traceback
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal server error; the server log has the details", "server_error")
