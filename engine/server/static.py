"""The canvas editor's files: `/` and web/, the default workflows, and node packs' web extensions."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from ..paths import list_files
from .errors import ApiError, json_response
from .files import safe_path, send_file
from .state import STATE

SCRIPT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript"}  # ES modules need a JavaScript type


def _content_type(path: Path) -> str | None:
    return SCRIPT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]


def serve_from(root: Path | None, relative: str, what: str) -> web.FileResponse:
    """The file `relative` under `root` (403 outside it, 404 when absent), as `what` in the error."""
    path = safe_path(root, relative) if root is not None else None
    if path is None or not path.is_file():
        raise ApiError(404, f"no {what} {relative!r}", "not_found")
    return send_file(path, _content_type(path))


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: the canvas editor."""
    web_root = request.app[STATE].options.web_root
    if web_root is None or not (web_root / "index.html").is_file():
        raise ApiError(404, f"the canvas editor is not installed ({web_root or 'web'}/index.html is missing); "
                            "the API works, e.g. GET /object_info or POST /prompt", "not_found")
    response = serve_from(web_root, "index.html", "page")
    response.headers["Cache-Control"] = "no-cache"  # a new version of the editor shows on reload
    return response


async def web_file(request: web.Request) -> web.StreamResponse:
    """GET /{path}: a file of the canvas editor (web/)."""
    return serve_from(request.app[STATE].options.web_root, request.match_info["path"], "file")


async def workflows_index(request: web.Request) -> web.Response:
    """GET /workflows: the names of the default workflows."""
    folder = request.app[STATE].options.workflows_dir
    return json_response(list_files(folder, (".json",)) if folder else [])


async def workflow_file(request: web.Request) -> web.StreamResponse:
    """GET /workflows/{name}: one default workflow (JSON)."""
    name = request.match_info["name"]
    if not name.endswith(".json"):
        raise ApiError(404, f"no workflow {name!r}: workflows are .json files (see GET /workflows)", "not_found")
    return serve_from(request.app[STATE].options.workflows_dir, name, "workflow")


async def extensions_index(request: web.Request) -> web.Response:
    """GET /extensions: the URLs of the node packs' web scripts (ComfyUI's list of JS files)."""
    folders = request.app[STATE].session.registry.web_directories
    return json_response([f"/extensions/{quote(pack)}/{quote(name)}"
                          for pack, folder in sorted(folders.items()) for name in list_files(folder, (".js",))])


async def extension_file(request: web.Request) -> web.StreamResponse:
    """GET /extensions/{pack}/{path}: a file of a node pack's WEB_DIRECTORY, else of the front end's extensions/
    (ComfyUI's front end keeps there the modules that packs' scripts import, e.g. extensions/core/)."""
    pack = request.match_info["pack"]
    folder = request.app[STATE].session.registry.web_directories.get(pack)
    if folder is None:
        web_root = request.app[STATE].options.web_root
        return serve_from(web_root / "extensions" if web_root else None, f"{pack}/{request.match_info['path']}",
                          "extension file")
    return serve_from(Path(folder), request.match_info["path"], f"file of pack {pack!r}")
