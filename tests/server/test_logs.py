"""The server's log as ComfyUI's front end reads it (its Logs panel): /internal/logs, /internal/logs/raw,
PATCH /internal/logs/subscribe and the `logs` websocket event, in the shapes of ComfyUI's internal routes."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

from sigmagraph.engine.server import create_app
from sigmagraph.engine.server.logs import LogBuffer

pytestmark = pytest.mark.asyncio

PACK_LOG = logging.getLogger("some_pack")  # a custom node pack's logger, as packs write to theirs


async def next_of_type(ws, kind: str, timeout: float = 5.0) -> dict:
    while True:
        message = await asyncio.wait_for(ws.receive_json(), timeout)
        if message["type"] == kind:
            return message


async def test_the_log_keeps_what_the_console_prints_in_comfyuis_shapes(client):
    PACK_LOG.warning("model file %s is old", "x.ckpt")
    raw = await (await client.get("/internal/logs/raw")).json()
    entry = raw["entries"][-1]
    assert entry["m"] == "some_pack: model file x.ckpt is old\n"
    assert abs((datetime.now() - datetime.fromisoformat(entry["t"])).total_seconds()) < 60
    assert set(raw["size"]) == {"cols", "rows"} and raw["size"]["cols"] > 0 and raw["size"]["rows"] > 0
    text = await (await client.get("/internal/logs")).json()
    assert text.endswith(f"{entry['t']} - some_pack: model file x.ckpt is old\n")


async def test_the_log_keeps_the_last_300_entries(client):
    for i in range(310):
        PACK_LOG.warning("line %d", i)
    entries = (await (await client.get("/internal/logs/raw")).json())["entries"]
    assert len(entries) == 300 and entries[0]["m"] == "some_pack: line 10\n"


async def test_a_subscribed_client_receives_new_entries_until_it_unsubscribes(client):
    ws = await client.ws_connect("/ws?clientId=alice")
    response = await client.patch("/internal/logs/subscribe", json={"enabled": True, "clientId": "alice"})
    assert response.status == 200
    PACK_LOG.warning("first")
    message = await next_of_type(ws, "logs")
    assert message["data"]["size"] is None and [e["m"] for e in message["data"]["entries"]] == ["some_pack: first\n"]

    await client.patch("/internal/logs/subscribe", json={"enabled": False, "clientId": "alice"})
    PACK_LOG.warning("second")
    with pytest.raises(asyncio.TimeoutError):
        await next_of_type(ws, "logs", timeout=0.5)
    await ws.close()


async def test_a_bad_subscription_is_refused_naming_the_field(client):
    response = await client.patch("/internal/logs/subscribe", json={"enabled": "yes", "clientId": "alice"})
    assert response.status == 400 and "enabled" in (await response.json())["error"]["message"]
    response = await client.patch("/internal/logs/subscribe", json={"enabled": True})
    assert response.status == 400 and "clientId" in (await response.json())["error"]["message"]


async def test_the_log_stops_capturing_when_the_server_stops(aiohttp_client, config, session, options):
    before = [h for h in logging.getLogger().handlers if isinstance(h, LogBuffer)]
    client = await aiohttp_client(create_app(config, session, options))
    assert len([h for h in logging.getLogger().handlers if isinstance(h, LogBuffer)]) == len(before) + 1
    await client.close()
    assert [h for h in logging.getLogger().handlers if isinstance(h, LogBuffer)] == before
