"""Which front end the server serves at `/`, and what ComfyUI's front end asks of a server beside the API.

`--front-end sigmagraph` (the default) serves the canvas editor; `comfyui` the official front end
of the `comfyui-frontend-package` wheel (GPL-3.0, installed separately, never bundled); a PATH a
built front end (a folder with index.html). The extras answer as ComfyUI answers with nothing to
offer: no node-pack translations (`/i18n`), example workflows (`/workflow_templates`) or shared
subgraphs (`/global_subgraphs`), and no stylesheet at the legacy `/user.css` (the user's own is
`/api/userdata/user.css`). The official workflow templates are served at `/templates/` when a
templates package is installed. `/features` and the websocket's `feature_flags` reply say what
this server supports.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from ..paths import package_folder
from .errors import ApiError, json_response
from .hub import event_message
from .options import ServerOptions
from .state import STATE
from .static import serve_from

SIGMAGRAPH, COMFYUI = "sigmagraph", "comfyui"
COMFYUI_PACKAGE = "comfyui_frontend_package"
COMFYUI_PIP = "pip install 'sigmagraph[comfyui-frontend]'"
# ComfyUI's full templates package first (index, workflows and thumbnails), then the JSON-only one.
TEMPLATE_PACKAGES = ("comfyui_workflow_templates", "comfyui_workflow_templates_json")
FEATURE_FLAGS = "feature_flags"


class FrontEndMissing(ValueError):
    """The chosen front end is not installed or not a built front end."""


def front_end_root(choice: str) -> Path:
    """The folder of static files to serve for `--front-end sigmagraph|comfyui|PATH` (FrontEndMissing if absent)."""
    if choice == SIGMAGRAPH:
        root = package_folder("sigmagraph.web")
        hint = "reinstall sigmagraph"
    elif choice == COMFYUI:
        found = importlib.util.find_spec(COMFYUI_PACKAGE)
        root = Path(found.origin).parent / "static" if found and found.origin else None
        hint = f"install it with: {COMFYUI_PIP}"
    else:
        root, hint = Path(choice).expanduser(), "give the folder of a built front end (the one holding index.html)"
    if root is None or not (root / "index.html").is_file():
        raise FrontEndMissing(f"the {choice!r} front end is not installed here ({root or 'not found'}); {hint}")
    return root


def server_features(options: ServerOptions) -> dict[str, Any]:
    """The capabilities this server announces (ComfyUI's server feature flags)."""
    return {"supports_preview_metadata": False,  # previews go as plain JPEG frames (event 1)
            "max_upload_size": options.max_upload_bytes}


def feature_flags_reply(text: str, options: ServerOptions) -> str | None:
    """The `feature_flags` message answering a client's own (None for any other message)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("type") != FEATURE_FLAGS:
        return None
    return event_message(FEATURE_FLAGS, server_features(options))


async def get_features(request: web.Request) -> web.Response:
    """GET /features: this server's feature flags."""
    return json_response(server_features(request.app[STATE].options))


async def nothing_offered(request: web.Request) -> web.Response:
    """GET /global_subgraphs: `{}`, ComfyUI's answer when no node pack offers any."""
    return json_response({})


async def legacy_user_css(request: web.Request) -> web.Response:
    """GET /user.css: an empty stylesheet (a user's stylesheet lives in user data, as user.css)."""
    return web.Response(text="", content_type="text/css", headers={"Cache-Control": "no-cache"})


def templates_folder() -> Path | None:
    """The `templates/` folder of the first installed templates package, if any."""
    for package in TEMPLATE_PACKAGES:
        folder = package_folder(package)
        if folder is not None and (folder / "templates").is_dir():
            return folder / "templates"
    return None


async def template_file(request: web.Request) -> web.StreamResponse:
    """GET /templates/{path}: a file of the official workflow templates (index.json, workflows, thumbnails)."""
    folder = templates_folder()
    if folder is None:
        raise ApiError(404, "no workflow templates are installed (pip install 'sigmagraph[templates]')", "not_found")
    return serve_from(folder, request.match_info["path"], "template file")
