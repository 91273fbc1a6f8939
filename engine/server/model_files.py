"""The model folders as ComfyUI's front end browses them: /models, /experiment/models, /embeddings, /view_metadata.

A folder is a subfolder of the models folder, either present on disk or read by a node
(a combo input declared with `files_in="models/<folder>"`). Its files are the model files on
disk there plus what those combos offer (so the demo checkpoint shipped with the package is
listed among the checkpoints, as in the node's widget). Names never leave their folder; a link
inside it may lead anywhere, as for the loader nodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import Field

from ..config import Config
from ..paths import UnsafePath, list_files, safe_join
from ..registry import Registry
from ..spec import ComboInput
from .errors import ApiError, json_response, parse_query
from .models import Body
from .state import STATE

# ComfyUI's `supported_pt_extensions`: what counts as a model file in a models subfolder.
MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")
MODELS_PREFIX = "models/"
EMBEDDINGS = "embeddings"
METADATA_LIMIT = 1024 * 1024  # ComfyUI reads at most 1 MB of a safetensors header for /view_metadata


def offered_by_nodes(registry: Registry, config: Config) -> dict[str, set[str]]:
    """Folder -> the names that the combos reading models/<folder> offer (packaged models included)."""
    offered: dict[str, set[str]] = {}
    for spec in registry.nodes.values():
        for spec_input in spec.inputs:
            if isinstance(spec_input, ComboInput) and (spec_input.files_in or "").startswith(MODELS_PREFIX):
                folder = spec_input.files_in[len(MODELS_PREFIX):]
                offered.setdefault(folder, set()).update(spec_input.resolve(config))
    return offered


def model_folders(registry: Registry, config: Config) -> list[str]:
    """The folders: subfolders of the models folder on disk, and those that nodes read."""
    root = Path(config.models_dir)
    on_disk = {entry.name for entry in os.scandir(root) if entry.is_dir()} if root.is_dir() else set()
    return sorted(on_disk | set(offered_by_nodes(registry, config)))


def files_on_disk(config: Config, folder: str) -> list[str]:
    """The model files under models/<folder> (POSIX names relative to it)."""
    return list_files(folder_path(config, folder), MODEL_EXTENSIONS)


def folder_path(config: Config, folder: str) -> Path:
    """models/<folder>; 404 for a name that is not a plain folder name."""
    try:
        return safe_join(config.models_dir, folder, allow_links_out=True)
    except UnsafePath:
        raise ApiError(404, f"no model folder {folder!r}", "not_found") from None


def model_names(registry: Registry, config: Config, folder: str) -> list[str]:
    """The files of one folder (404 for an unknown folder, as ComfyUI answers)."""
    if folder not in model_folders(registry, config):
        raise ApiError(404, f"no model folder {folder!r} (GET /models lists them)", "not_found")
    return sorted(set(files_on_disk(config, folder)) | offered_by_nodes(registry, config).get(folder, set()))


def _file_entry(config: Config, folder: str, name: str) -> dict[str, Any]:
    """ComfyUI's entry of the experimental listing; times and size only for a file on disk."""
    entry: dict[str, Any] = {"name": name, "pathIndex": 0}
    path = folder_path(config, folder) / name
    if path.is_file():
        stat = path.stat()
        entry.update(modified=stat.st_mtime, created=stat.st_ctime, size=stat.st_size)
    return entry


def safetensors_metadata(path: Path) -> dict[str, Any] | None:
    """The `__metadata__` of a safetensors file's header; None when it has none or the header is unreadable."""
    try:
        with open(path, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > METADATA_LIMIT:
                return None
            header = json.loads(file.read(length))
    except (OSError, struct.error, ValueError):
        return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return metadata if isinstance(metadata, dict) else None


class MetadataQuery(Body):
    """GET /view_metadata/{folder}?filename."""

    filename: str = Field(min_length=1)


def _state(request: web.Request) -> tuple[Registry, Config]:
    state = request.app[STATE]
    return state.session.registry, state.config


async def list_folders(request: web.Request) -> web.Response:
    """GET /models: the model folders."""
    return json_response(await asyncio.to_thread(model_folders, *_state(request)))


async def list_models(request: web.Request) -> web.Response:
    """GET /models/{folder}: the names of its model files."""
    return json_response(await asyncio.to_thread(model_names, *_state(request), request.match_info["folder"]))


async def list_folders_experiment(request: web.Request) -> web.Response:
    """GET /experiment/models: `[{name, folders}]`, each folder with its path on disk."""
    registry, config = _state(request)
    folders = await asyncio.to_thread(model_folders, registry, config)
    return json_response([{"name": folder, "folders": [str(folder_path(config, folder))]} for folder in folders])


async def folder_paths(request: web.Request) -> web.Response:
    """GET /internal/folder_paths: `{folder: [path on disk]}` (ComfyUI's internal route, read by its front end)."""
    registry, config = _state(request)
    folders = await asyncio.to_thread(model_folders, registry, config)
    return json_response({folder: [str(folder_path(config, folder))] for folder in folders})


async def list_models_experiment(request: web.Request) -> web.Response:
    """GET /experiment/models/{folder}: `[{name, pathIndex, modified, created, size}]`."""
    registry, config = _state(request)
    folder = request.match_info["folder"]

    def entries() -> list[dict[str, Any]]:
        return [_file_entry(config, folder, name) for name in model_names(registry, config, folder)]

    return json_response(await asyncio.to_thread(entries))


async def list_embeddings(request: web.Request) -> web.Response:
    """GET /embeddings: the names (without extension) of the files in models/embeddings."""
    config = request.app[STATE].config
    names = await asyncio.to_thread(files_on_disk, config, EMBEDDINGS)
    return json_response([os.path.splitext(name)[0] for name in names])


async def view_metadata(request: web.Request) -> web.Response:
    """GET /view_metadata/{folder}?filename=NAME.safetensors: the file's `__metadata__`, 404 when it has none."""
    config = request.app[STATE].config
    folder, filename = request.match_info["folder"], parse_query(request, MetadataQuery).filename
    if not filename.endswith(".safetensors"):
        raise ApiError(404, f"{filename!r}: only .safetensors files carry metadata", "not_found")
    try:
        path = safe_join(folder_path(config, folder), filename, allow_links_out=True)
    except UnsafePath as e:
        raise ApiError(403, f"refused: {e}", "forbidden_path") from None
    metadata = await asyncio.to_thread(safetensors_metadata, path) if path.is_file() else None
    if metadata is None:
        raise ApiError(404, f"no metadata for {filename!r} in models/{folder}", "not_found")
    return json_response(metadata)
