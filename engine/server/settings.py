"""The front end's settings: one JSON object per user, `comfy.settings.json` in the user's folder (ComfyUI's file).

GET /settings and /settings/{id} read it (null for an unknown id); POST /settings merges an object
into it and POST /settings/{id} sets one value. Writes are serialized, so the front end's bursts
of single-setting POSTs never lose one another's change.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from pydantic import RootModel

from .errors import ApiError, json_response, read_json
from .userdata import USER_FILES, UserFiles, write_file

SETTINGS_FILE = "comfy.settings.json"


def read_settings(files: UserFiles) -> dict[str, Any]:
    """The user's settings ({} before the first one is saved)."""
    path = files.path(SETTINGS_FILE)
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(500, f"the settings file {path} is not valid JSON ({e}); fix or delete it",
                       "invalid_settings") from None
    if not isinstance(settings, dict):
        raise ApiError(500, f"the settings file {path} does not hold a JSON object; fix or delete it",
                       "invalid_settings")
    return settings


def update_settings(files: UserFiles, changes: dict[str, Any]) -> None:
    """Merges `changes` into the user's settings, atomically and one writer at a time."""
    with files.lock:
        settings = {**read_settings(files), **changes}
        write_file(files.path(SETTINGS_FILE), json.dumps(settings, indent=1).encode(), overwrite=True)


async def get_settings(request: web.Request) -> web.Response:
    """GET /settings: every setting."""
    return json_response(await asyncio.to_thread(read_settings, request.app[USER_FILES]))


async def get_setting(request: web.Request) -> web.Response:
    """GET /settings/{id}: one setting's value, null when it was never set."""
    settings = await asyncio.to_thread(read_settings, request.app[USER_FILES])
    return json_response(settings.get(request.match_info["id"]))


async def post_settings(request: web.Request) -> web.Response:
    """POST /settings {id: value, ...}: sets several settings."""
    changes = (await read_json(request, RootModel[dict[str, Any]])).root
    await asyncio.to_thread(update_settings, request.app[USER_FILES], changes)
    return web.Response()


async def post_setting(request: web.Request) -> web.Response:
    """POST /settings/{id} with a JSON value: sets one setting."""
    value = (await read_json(request, RootModel[Any])).root
    await asyncio.to_thread(update_settings, request.app[USER_FILES], {request.match_info["id"]: value})
    return web.Response()
