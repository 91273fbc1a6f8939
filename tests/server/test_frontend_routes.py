"""The routes ComfyUI's front end calls beside user data: models, embeddings, metadata, features, the
websocket handshake, templates and the front end's extension modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio
import torch
from safetensors.torch import save_file

from sigmagraph.engine import Combo, node
from sigmagraph.engine.node import NODE_SPEC_ATTRIBUTE
from sigmagraph.engine.paths import package_folder
from sigmagraph.engine.server import create_app

from .conftest import UPLOAD_LIMIT, queue, simple

pytestmark = pytest.mark.asyncio


@node(category="test", returns=["NUMBER"])
def PickCheckpoint(ckpt_name=Combo(lambda config: ["shipped.safetensors"], files_in="models/checkpoints")):
    """A loader-like node whose choices include a model that ships with a package (not on disk)."""
    return None


@pytest.fixture
def models(config) -> Path:
    """models/ with checkpoints (one in a subfolder, one non-model file), embeddings and an empty loras/."""
    root = Path(config.models_dir)
    for name in ("checkpoints/a.safetensors", "checkpoints/sub/b.ckpt", "checkpoints/notes.txt",
                 "embeddings/easy.pt", "embeddings/bad_hands.safetensors", "embeddings/readme.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"not really a model")
    (root / "loras").mkdir()
    return root


@pytest_asyncio.fixture
async def client(aiohttp_client, config, registry, session, options, models):
    registry.add(getattr(PickCheckpoint, NODE_SPEC_ATTRIBUTE), "test")
    return await aiohttp_client(create_app(config, session, options))


async def get_json(client, path: str, status: int = 200, **params):
    response = await client.get(path, params=params)
    assert response.status == status, await response.text()
    return await response.json()


async def test_model_folders_and_files(client):
    assert await get_json(client, "/api/models") == ["checkpoints", "embeddings", "loras"]
    # on disk (model extensions only, subfolders included) and offered by a node (shipped with a package)
    assert await get_json(client, "/api/models/checkpoints") == ["a.safetensors", "shipped.safetensors",
                                                                  "sub/b.ckpt"]
    assert await get_json(client, "/api/models/loras") == []
    await get_json(client, "/api/models/nope", 404)
    await get_json(client, "/api/models/..%2F..", 404)


async def test_experimental_model_listing(client, models):
    folders = await get_json(client, "/api/experiment/models")
    assert folders[0] == {"name": "checkpoints", "folders": [str((models / "checkpoints").resolve())]}
    entries = {e["name"]: e for e in await get_json(client, "/api/experiment/models/checkpoints")}
    stat = (models / "checkpoints" / "sub" / "b.ckpt").stat()
    assert entries["sub/b.ckpt"] == {"name": "sub/b.ckpt", "pathIndex": 0, "size": stat.st_size,
                                     "modified": stat.st_mtime, "created": stat.st_ctime}
    assert entries["shipped.safetensors"] == {"name": "shipped.safetensors", "pathIndex": 0}
    paths = await get_json(client, "/internal/folder_paths")
    assert paths["loras"] == [str((models / "loras").resolve())] and sorted(paths) == ["checkpoints", "embeddings",
                                                                                       "loras"]


async def test_embeddings_are_names_without_extension(client):
    assert await get_json(client, "/api/embeddings") == ["bad_hands", "easy"]


async def test_view_metadata_reads_the_safetensors_header(client, models):
    # written by the safetensors library itself: an independent producer of the header
    save_file({"w": torch.zeros(2)}, str(models / "loras" / "style.safetensors"),
              metadata={"ss_network_dim": "16", "modelspec.title": "Style"})
    save_file({"w": torch.zeros(2)}, str(models / "loras" / "plain.safetensors"))
    assert await get_json(client, "/api/view_metadata/loras", filename="style.safetensors") == {
        "ss_network_dim": "16", "modelspec.title": "Style"}
    await get_json(client, "/api/view_metadata/loras", 404, filename="plain.safetensors")  # no __metadata__
    await get_json(client, "/api/view_metadata/loras", 404, filename="missing.safetensors")
    await get_json(client, "/api/view_metadata/checkpoints", 404, filename="sub/b.ckpt")  # not safetensors
    await get_json(client, "/api/view_metadata/checkpoints", 404, filename="a.safetensors")  # not a header
    await get_json(client, "/api/view_metadata/loras", 403, filename="../loras/style.safetensors")
    await get_json(client, "/api/view_metadata/loras", 400)


async def test_features_and_what_no_pack_offers(client):
    assert await get_json(client, "/api/features") == {"supports_preview_metadata": False,
                                                       "max_upload_size": UPLOAD_LIMIT}
    for path in ("/api/i18n", "/api/workflow_templates", "/api/global_subgraphs", "/i18n"):
        assert await get_json(client, path) == {}
    response = await client.get("/user.css")
    assert response.status == 200 and response.content_type == "text/css" and await response.text() == ""


async def test_websocket_answers_the_feature_flags_handshake(client):
    async with client.ws_connect("/ws?clientId=fe") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "status"
        await ws.send_str("not json")  # ignored, the connection stays
        await ws.send_json({"type": "something_else", "data": {}})
        await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        reply = await ws.receive_json(timeout=5)
        assert reply == {"type": "feature_flags", "data": {"supports_preview_metadata": False,
                                                           "max_upload_size": UPLOAD_LIMIT}}


async def _events_of_a_run(client, ws, client_id: str, value: float) -> list[str]:
    """Queues a prompt for `client_id` and returns the types of the messages it gets until the run ends."""
    await queue(client, simple(value), client_id=client_id)
    types = []
    while not types or types[-1] != "execution_success":
        types.append((await ws.receive_json(timeout=10))["type"])
    return types


async def test_after_the_handshake_only_comfyuis_events_arrive(client):
    """ComfyUI's front end reports unknown message types as errors: `node_finished` (ours) is not sent to it."""
    async with client.ws_connect("/ws?clientId=plain") as plain, client.ws_connect("/ws?clientId=comfy") as comfy:
        await plain.receive_json(timeout=5)
        await comfy.receive_json(timeout=5)
        await comfy.send_json({"type": "feature_flags", "data": {}})
        assert (await comfy.receive_json(timeout=5))["type"] == "feature_flags"
        assert "node_finished" in await _events_of_a_run(client, plain, "plain", 1.0)
        spoken = await _events_of_a_run(client, comfy, "comfy", 2.0)  # another value: nothing cached
        assert "node_finished" not in spoken and {"execution_start", "executing", "executed"} <= set(spoken)


TEMPLATES = next((p / "templates" for p in map(package_folder, ("comfyui_workflow_templates",
                                                                  "comfyui_workflow_templates_json"))
                  if p is not None and (p / "templates" / "index.json").is_file()), None)


@pytest.mark.skipif(TEMPLATES is None, reason="no workflow templates package (pip install 'sigmagraph[templates]')")
async def test_official_templates_are_served(client):
    response = await client.get("/templates/index.json")
    assert response.status == 200 and await response.read() == (TEMPLATES / "index.json").read_bytes()
    assert (await client.get("/templates/..%2F__init__.py")).status == 403
    assert (await client.get("/templates/no_such_template.json")).status == 404


async def test_packs_scripts_import_the_front_ends_extension_modules(aiohttp_client, config, session, options,
                                                                     tmp_path):
    """ComfyUI's front end keeps extensions/core/*.js for packs' scripts that import them."""
    shim = tmp_path / "web" / "extensions" / "core" / "widgetInputs.js"
    shim.parent.mkdir(parents=True)
    shim.write_text("export const x = 1;")
    client = await aiohttp_client(create_app(config, session, options))
    response = await client.get("/extensions/core/widgetInputs.js")
    assert response.status == 200 and response.content_type == "text/javascript"
    assert (await client.get("/extensions/core/..%2F..%2F..%2Fsecret")).status in (403, 404)
    assert (await client.get("/extensions/nopack/x.js")).status == 404

