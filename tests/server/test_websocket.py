"""/ws: the greeting, the event sequence of a run, who receives what, and preview frames."""

from __future__ import annotations

import asyncio
import struct
from io import BytesIO

import aiohttp
import pytest
from PIL import Image

from .conftest import finished, picture, queue, simple, slow

pytestmark = pytest.mark.asyncio


async def collect_until_done(ws, prompt_id: str, timeout: float = 10.0) -> list:
    """Every message (JSON as dicts, binary as bytes) up to `executing {node: null}` of `prompt_id`."""
    messages = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.receive()
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), message
            messages.append(message.json() if message.type == aiohttp.WSMsgType.TEXT else message.data)
            last = messages[-1]
            if isinstance(last, dict) and last["type"] == "executing" and last["data"]["node"] is None \
                    and last["data"]["prompt_id"] == prompt_id:
                return messages


async def drain(ws, quiet: float = 0.1) -> list:
    """The messages that arrive until `quiet` seconds pass without one."""
    messages = []
    while True:
        try:
            message = await ws.receive(timeout=quiet)
        except asyncio.TimeoutError:
            return messages
        messages.append(message.json() if message.type == aiohttp.WSMsgType.TEXT else message.data)


async def test_greeting_carries_sid_and_queue_length(client):
    named = await client.ws_connect("/ws?clientId=alice")
    assert await named.receive_json() == {"type": "status",
                                          "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "alice"}}
    anonymous = await client.ws_connect("/ws")
    greeting = await anonymous.receive_json()
    assert len(greeting["data"]["sid"]) == 32
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws?clientId=bad%20id")
    assert refused.value.status == 400


async def test_event_sequence_of_a_run_goes_only_to_the_queuing_client(client):
    alice = await client.ws_connect("/ws?clientId=alice")
    bob = await client.ws_connect("/ws?clientId=bob")
    warm = await queue(client, simple(2.0), client_id="alice")  # caches the Constant
    await collect_until_done(alice, warm["prompt_id"])
    answer = await queue(client, slow(2.0, steps=3), client_id="alice")
    messages = await collect_until_done(alice, answer["prompt_id"])
    types = [m["type"] for m in messages]
    expected = ["status", "execution_start", "execution_cached", "executing", "progress", "executed",
                "node_finished", "execution_success", "executing"]
    cursor = 0
    for kind in expected:  # in this order, possibly with others between
        cursor = types.index(kind, cursor) + 1
    by_type = {}
    for m in messages:
        by_type.setdefault(m["type"], []).append(m["data"])
    assert by_type["execution_cached"] == [{"nodes": ["1"], "prompt_id": answer["prompt_id"],
                                            "timestamp": by_type["execution_cached"][0]["timestamp"]}]
    assert [d["node"] for d in by_type["executing"]] == ["2", "3", None]
    assert [(d["value"], d["max"], d["node"]) for d in by_type["progress"]] == [(1, 3, "2"), (2, 3, "2"), (3, 3, "2")]
    assert by_type["executed"][0]["node"] == "3" and by_type["executed"][0]["output"]["values"] == [2.0]
    assert [(d["node"], d["cached"]) for d in by_type["node_finished"]] == [("1", True), ("2", False), ("3", False)]
    assert all(d["prompt_id"] == answer["prompt_id"] for t, ds in by_type.items() if t != "status" for d in ds)
    assert types[-2:] == ["status", "executing"]  # history is written and the queue freed before `executing null`
    assert by_type["status"][-1]["status"]["exec_info"]["queue_remaining"] == 0
    for_bob = await drain(bob)
    assert for_bob and {m["type"] for m in for_bob} == {"status"}  # queue changes reach everyone, nothing else


async def test_prompt_without_client_broadcasts_only_progress_and_status(client):
    watcher = await client.ws_connect("/ws?clientId=watcher")
    await watcher.receive_json()
    answer = await queue(client, slow(steps=3))
    await finished(client, answer["prompt_id"])
    assert {m["type"] for m in await drain(watcher)} == {"status", "progress"}


async def test_preview_frames_are_jpeg_and_throttled(client):
    ws = await client.ws_connect("/ws?clientId=painter")
    answer = await queue(client, picture(value=200, steps=14, delay_ms=50), client_id="painter")  # ~0.7 s
    messages = await collect_until_done(ws, answer["prompt_id"])
    frames = [m for m in messages if isinstance(m, bytes)]
    assert sum(1 for m in messages if isinstance(m, dict) and m["type"] == "progress") == 14
    stamps = {m["type"]: m["data"]["timestamp"] for m in messages if isinstance(m, dict) and "timestamp" in m["data"]}
    seconds = (stamps["execution_success"] - stamps["execution_start"]) / 1000
    assert 2 <= len(frames) <= seconds / 0.25 + 1  # at most one per 0.25 s: about 4 per second, however slow
    for frame in frames:
        assert struct.unpack(">II", frame[:8]) == (1, 1)
        image = Image.open(BytesIO(frame[8:]))
        assert image.format == "JPEG" and image.size == (64, 64)
        assert abs(image.getpixel((32, 32))[0] - 200) < 8


async def test_same_client_id_replaces_the_old_connection(client):
    first = await client.ws_connect("/ws?clientId=dup")
    await first.receive_json()
    second = await client.ws_connect("/ws?clientId=dup")
    await second.receive_json()
    closing = await first.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    answer = await queue(client, simple(1.25), client_id="dup")
    assert (await collect_until_done(second, answer["prompt_id"]))[-1]["data"]["node"] is None
