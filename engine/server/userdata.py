"""User data: each user's files (saved workflows, settings, user.css) in their own folder under the state folder.

ComfyUI's routes and answers: /users, /userdata (list), /v2/userdata (tree), /userdata/{file}
GET/POST/DELETE and /userdata/{file}/move/{dest}. A name in the URL is one path segment, so
folders come URL-encoded (`workflows%2Fa.json`), as ComfyUI's front end sends them. Every name
goes through `safe_join` under the user's folder (no `..`, no absolute path, no link out), bodies
are bounded by the server's request limit, and files are served as downloads with their own
content type (user.css alone as a stylesheet), so a stored HTML or SVG file never runs in the
server's origin. This server has one user, `default` (ComfyUI without --multi-user).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from aiohttp import web
from pydantic import BeforeValidator, Field

from .errors import ApiError, json_response, parse_query
from .files import content_disposition, safe_path, send_file
from .models import Body
from .store import MEMORY

DEFAULT_USER = "default"
USERS_FOLDER = "users"
USER_CSS = "user.css"
SERVED_TYPES = {".json": "application/json", ".css": "text/css"}  # anything else is a plain download


@dataclass(frozen=True)
class UserFiles:
    """The root of every user's folder; `folder(user)` and `path(name, user)` never leave it."""

    root: Path
    temporary: bool = False  # a folder of this process alone, removed at cleanup
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)  # read-modify-write of a file

    def folder(self, user: str = DEFAULT_USER) -> Path:
        """The user's folder (created on first use)."""
        folder = safe_path(self.root, user)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def path(self, name: str, user: str = DEFAULT_USER) -> Path:
        """The file or folder `name` inside the user's folder; 403 for a name that would leave it."""
        if not name.strip("/"):
            raise ApiError(400, "give the name of a file in your user data, e.g. workflows/my%20workflow.json")
        return safe_path(self.folder(user), name)

    @classmethod
    def for_state(cls, state_dir: str | Path) -> "UserFiles":
        """`state/users/`; a new temporary folder when the state lives in memory (see `remove_temporary`)."""
        if str(state_dir) == MEMORY:
            return cls(Path(tempfile.mkdtemp(prefix="sigmagraph-users-")), temporary=True)
        return cls(Path(state_dir) / USERS_FOLDER)


USER_FILES = web.AppKey("sigmagraph_user_files", UserFiles)


async def remove_temporary(app: web.Application) -> None:
    """At cleanup: forgets the user data of a server whose state lived in memory."""
    if app[USER_FILES].temporary:
        await asyncio.to_thread(shutil.rmtree, app[USER_FILES].root, True)


# ComfyUI's reading of its query flags: only "true" turns a flag on, and only "false" turns overwrite off.
Flag = Annotated[bool, BeforeValidator(lambda value: str(value).lower() == "true")]
Overwrite = Annotated[bool, BeforeValidator(lambda value: str(value) != "false")]


class ListQuery(Body):
    """GET /userdata?dir&recurse&full_info&split."""

    dir: str = Field(min_length=1)
    recurse: Flag = False
    full_info: Flag = False
    split: Flag = False


class TreeQuery(Body):
    """GET /v2/userdata?path."""

    path: str = ""


class WriteQuery(Body):
    """POST /userdata/{file}?overwrite&full_info (and the same for move)."""

    overwrite: Overwrite = True
    full_info: Flag = False


def file_info(path: Path, relative_to: Path) -> dict[str, Any]:
    """ComfyUI's FileInfo: POSIX path relative to the user's folder, size, and times in milliseconds."""
    stat = path.stat()
    return {"path": path.relative_to(relative_to).as_posix(), "size": stat.st_size,
            "modified": int(stat.st_mtime * 1000), "created": int(stat.st_ctime * 1000)}


def _answer(path: Path, user_folder: Path, full_info: bool) -> web.Response:
    """What POST and move return: the file's info, or its path relative to the user's folder."""
    return json_response(file_info(path, user_folder) if full_info else path.relative_to(user_folder).as_posix())


def _list(folder: Path, query: ListQuery) -> list[Any]:
    files = sorted(p for p in (folder.rglob("*") if query.recurse else folder.glob("*")) if p.is_file())
    if query.full_info:
        return [file_info(p, folder) for p in files]
    names = [p.relative_to(folder).as_posix() for p in files]
    return [[name, *name.split("/")] for name in names] if query.split else names


async def get_users(request: web.Request) -> web.Response:
    """GET /users: single-user server storage (ComfyUI's answer without --multi-user)."""
    return json_response({"storage": "server", "migrated": True})


async def list_userdata(request: web.Request) -> web.Response:
    """GET /userdata?dir=workflows&recurse&full_info&split: the files of a folder (404 when it does not exist)."""
    query = parse_query(request, ListQuery)
    folder = request.app[USER_FILES].path(query.dir)
    if not folder.is_dir():
        raise ApiError(404, f"no folder {query.dir!r} in your user data", "not_found")
    return json_response(await asyncio.to_thread(_list, folder, query))


def _tree(root: Path, folder: Path) -> list[dict[str, Any]]:
    entries = []
    for path in folder.rglob("*"):
        entry: dict[str, Any] = {"name": path.name, "path": path.relative_to(root).as_posix(),
                                 "type": "directory" if path.is_dir() else "file"}
        if entry["type"] == "file":
            stat = path.stat()
            entry.update(size=stat.st_size, modified=stat.st_mtime)
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["type"] != "directory", e["name"].lower()))


async def list_userdata_tree(request: web.Request) -> web.Response:
    """GET /v2/userdata?path: every file and folder below `path` (default: all), folders first."""
    files = request.app[USER_FILES]
    relative = parse_query(request, TreeQuery).path
    root = files.folder()
    folder = files.path(relative) if relative.strip("/") else root
    if not folder.exists():
        raise ApiError(404, f"no folder {relative!r} in your user data", "not_found")
    if not folder.is_dir():
        raise ApiError(400, f"{relative!r} is a file, not a folder", "not_a_folder")
    return json_response(await asyncio.to_thread(_tree, root, folder))


def _existing_file(request: web.Request, key: str = "file") -> Path:
    name = request.match_info[key]
    path = request.app[USER_FILES].path(name)
    if not path.is_file():
        raise ApiError(404, f"no file {name!r} in your user data", "not_found")
    return path


async def get_userdata(request: web.Request) -> web.StreamResponse:
    """GET /userdata/{file}: the file, as a download (user.css at the top of the folder as a stylesheet)."""
    path = _existing_file(request)
    is_user_css = path == request.app[USER_FILES].path(USER_CSS)
    content_type = SERVED_TYPES.get(path.suffix.lower())
    disposition = "inline" if is_user_css else content_disposition("attachment", path.name)
    return send_file(path, content_type, {"Content-Disposition": disposition, "Cache-Control": "no-cache",
                                          "Content-Security-Policy": "default-src 'none'; sandbox"})


def write_file(path: Path, data: bytes, overwrite: bool) -> None:
    """Writes atomically (a reader never sees half a file); without `overwrite`, never replaces a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        try:
            with open(path, "xb") as file:  # exclusive: the check and the creation are one step
                file.write(data)
            return
        except FileExistsError:
            raise ApiError(409, f"{path.name!r} already exists; send overwrite=true to replace it",
                           "file_exists") from None
    if path.is_dir():
        raise ApiError(409, f"{path.name!r} is a folder", "file_exists")
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


async def post_userdata(request: web.Request) -> web.Response:
    """POST /userdata/{file}?overwrite&full_info: stores the raw body (409 if it exists and overwrite=false)."""
    files = request.app[USER_FILES]
    query = parse_query(request, WriteQuery)
    path = files.path(request.match_info["file"])
    data = await request.read()  # bounded by the app's client_max_size: larger bodies answer 413
    await asyncio.to_thread(write_file, path, data, query.overwrite)
    return _answer(path, files.folder(), query.full_info)


async def delete_userdata(request: web.Request) -> web.Response:
    """DELETE /userdata/{file}: 204, or 404 when there is no such file."""
    path = _existing_file(request)
    path.unlink()
    return web.Response(status=204)


def _move(source: Path, destination: Path, overwrite: bool) -> None:
    if destination.exists() and not overwrite:
        raise ApiError(409, f"{destination.name!r} already exists; send overwrite=true to replace it", "file_exists")
    if destination.is_dir():
        raise ApiError(409, f"{destination.name!r} is a folder", "file_exists")
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, destination)


async def move_userdata(request: web.Request) -> web.Response:
    """POST /userdata/{file}/move/{dest}?overwrite&full_info: renames a file inside the user's folder."""
    files = request.app[USER_FILES]
    query = parse_query(request, WriteQuery)
    source = _existing_file(request)
    destination = files.path(request.match_info["dest"])
    await asyncio.to_thread(_move, source, destination, query.overwrite)
    return _answer(destination, files.folder(), query.full_info)
