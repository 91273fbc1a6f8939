"""Custom-node folder packs' translations and example workflows, served to ComfyUI's front end as ComfyUI
serves them: GET /i18n, GET /workflow_templates and GET /api/workflow_templates/{pack}/{file}."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

import pytest
import pytest_asyncio

from sigmagraph.engine import Session, discovery
from sigmagraph.engine.server import create_app

pytestmark = pytest.mark.asyncio

NO_NODES = "NODE_CLASS_MAPPINGS = {}\n"


def write(path, content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))


@pytest.fixture
def custom_nodes(tmp_path):
    """Two folder packs with locales and example workflows, a file pack, and a pack with a broken locale file."""
    folder = tmp_path / "custom_nodes"
    files = {
        "alpha/__init__.py": NO_NODES,
        "alpha/locales/en/main.json": {"nodeDefs": {"A": {"display_name": "Alpha A"}}, "menu": {"x": "X"}},
        "alpha/locales/en/settings.json": {"Alpha.Speed": {"name": "Speed"}},
        "alpha/locales/fr/main.json": {"menu": {"x": "Ex"}},
        "alpha/example_workflows/upscale.json": {"nodes": []},
        "alpha/example_workflows/upscale.jpg": b"\xff\xd8 thumbnail",
        "alpha/example_workflows/notes.txt": "not a workflow",
        "alpha/Workflows/basic.json": {"nodes": []},
        "beta/__init__.py": NO_NODES,
        "beta/locales/en/main.json": {"menu": {"y": "Y", "x": "X from beta"}},
        "beta/locales/en/nodeDefs.json": {"B": {"display_name": "Beta B"}},
        "beta/locales/de/commands.json": "{ broken",
        "beta/js/readme.md": "no templates here",
        "gamma.py": NO_NODES,
    }
    for name, content in files.items():
        write(folder / name, content)
    yield folder
    for name in [m for m in sys.modules if m.startswith(discovery.PACKS_NAMESPACE)]:
        del sys.modules[name]


@pytest_asyncio.fixture
async def client(aiohttp_client, config, options, custom_nodes):
    config = dataclasses.replace(config, custom_nodes_dirs=(custom_nodes,))
    return await aiohttp_client(create_app(config, Session(config), options))


async def test_folder_packs_are_recorded_with_their_folders(custom_nodes, config):
    registry = discovery.load_packs(dataclasses.replace(config, custom_nodes_dirs=(custom_nodes,)))
    assert registry.pack_folders == {"alpha": str((custom_nodes / "alpha").resolve()),
                                     "beta": str((custom_nodes / "beta").resolve())}


async def test_i18n_merges_every_packs_locales(client, caplog):
    with caplog.at_level(logging.ERROR):
        translations = await (await client.get("/api/i18n")).json()
    assert translations == {
        "en": {"nodeDefs": {"A": {"display_name": "Alpha A"}, "B": {"display_name": "Beta B"}},
               "menu": {"x": "X from beta", "y": "Y"},  # packs in name order: beta's key wins
               "settings": {"Alpha.Speed": {"name": "Speed"}}},
        "fr": {"menu": {"x": "Ex"}},
    }
    assert any("de/commands.json" in record.getMessage() for record in caplog.records)
    assert await (await client.get("/i18n")).json() == translations


async def test_workflow_templates_lists_and_serves_the_packs_examples(client):
    assert await (await client.get("/api/workflow_templates")).json() == {"alpha": ["basic", "upscale"]}
    response = await client.get("/api/workflow_templates/alpha/upscale.json")
    assert response.status == 200 and await response.json() == {"nodes": []}
    response = await client.get("/api/workflow_templates/alpha/basic.json")  # the second folder
    assert response.status == 200
    response = await client.get("/api/workflow_templates/alpha/upscale.jpg")  # the front end's thumbnail
    assert response.status == 200 and await response.read() == b"\xff\xd8 thumbnail"


async def test_workflow_template_files_stay_inside_the_packs_example_folders(client):
    missing = await client.get("/api/workflow_templates/alpha/nope.json")
    assert missing.status == 404 and "nope.json" in (await missing.json())["error"]["message"]
    unknown = await client.get("/api/workflow_templates/zeta/upscale.json")
    assert unknown.status == 404 and "zeta" in (await unknown.json())["error"]["message"]
    escape = await client.get("/api/workflow_templates/alpha/%2E%2E%2F__init__.py")
    assert escape.status in (403, 404)
    assert (await client.get("/api/workflow_templates/beta/readme.md")).status == 404
