"""ComfyUI's PromptServer wired to the Sigmagraph server: pack routes, send_sync on the websocket, web extensions,
on-prompt handlers. The pack is packs/server_fixture_pack, loaded after packs/comfy_pack (which purges sys.modules).
"""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import pytest
import pytest_asyncio

from sigmagraph.compat import state
from sigmagraph.engine import Session
from sigmagraph.engine.server import ServerOptions, create_app

from ..server.conftest import finished, queue
from .test_pack_loading import fixture_config, forget_packs, pack_module

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(aiohttp_client, tmp_path):
    previous = state.config()
    config = fixture_config(tmp_path, ("comfy_pack", "server_fixture_pack"))
    session = Session(config)
    assert not session.registry.problems, session.registry.problems
    yield await aiohttp_client(create_app(config, session, ServerOptions(web_root=None, workflows_dir=None)))
    state.activate(previous)
    forget_packs()


async def until_done(ws, prompt_id: str) -> list:
    """Every message (JSON as dicts, binary as bytes) up to `executing {node: null}` of `prompt_id`."""
    messages = []
    async with asyncio.timeout(10):
        while not (messages and isinstance(messages[-1], dict) and messages[-1]["type"] == "executing"
                   and messages[-1]["data"] == {"node": None, "display_node": None, "prompt_id": prompt_id}):
            message = await ws.receive()
            messages.append(message.json() if message.type == aiohttp.WSMsgType.TEXT else message.data)
    return messages


async def test_pack_routes_are_served_and_prompt_server_is_the_real_app(client):
    assert await (await client.get("/fixture/hello?name=sigma")).json() == {"hello": "sigma"}
    assert await (await client.get("/api/fixture/hello")).json() == {"hello": "world"}  # ComfyUI's /api/ copy
    assert await (await client.get("/fixture/direct")).text() == "added to the app itself"
    assert "KSampler" in await (await client.get("/object_info")).json()
    import server

    assert server.PromptServer.instance.app is client.app
    assert pack_module("server_fixture_pack").SEES_EARLIER_PACK


async def test_web_directories_are_served_and_listed(client):
    assert "/extensions/server_fixture_pack/fixture.js" in await (await client.get("/extensions")).json()
    script = await client.get("/extensions/server_fixture_pack/fixture.js")
    assert script.status == 200 and 'FIXTURE = "server_fixture_pack"' in await script.text()


async def test_send_sync_arrives_in_order_with_the_run_and_on_prompt_handlers_rewrite(client):
    alice = await client.ws_connect("/ws?clientId=alice")
    bob = await client.ws_connect("/ws?clientId=bob")
    for ws in (alice, bob):
        await ws.receive_json()  # the greeting
    answer = await queue(client, {"1": {"class_type": "FixtureNotify", "inputs": {"text": "hi %client%"}}},
                         client_id="alice")
    prompt_id = answer["prompt_id"]
    messages = await until_done(alice, prompt_id)
    kinds = [m["type"] if isinstance(m, dict) else "binary" for m in messages]
    progress_text = struct.pack(">I", 3) + struct.pack(">I", 1) + b"1" + b"hi alice"  # ComfyUI's TEXT frame
    assert kinds.index("executing") < kinds.index("fixture.note") < kinds.index("binary") \
        < kinds.index("fixture.ran") < kinds.index("executed")
    assert messages[kinds.index("fixture.note")]["data"] == {"node": "1", "text": "hi alice"}  # the handler's text
    assert messages[kinds.index("binary")] == progress_text
    assert messages[kinds.index("executed")]["data"]["output"] == {"text": ["hi alice"]}
    entry = await finished(client, prompt_id)
    assert entry["prompt"][2]["1"]["inputs"]["text"] == "hi alice"
    # bob hears the broadcast only: no message addressed to alice
    heard = []
    while not heard or heard[-1].get("type") != "fixture.ran":
        heard.append(await asyncio.wait_for(bob.receive_json(), 10))
    assert [m["type"] for m in heard if m["type"].startswith("fixture.")] == ["fixture.ran"]
