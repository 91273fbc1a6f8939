"""Bounded load on loopback: many clients at once, order kept, nothing lost, memory returned."""

from __future__ import annotations

import asyncio
import gc
import os
import sys

import pytest

from .conftest import queue, slow

pytestmark = pytest.mark.asyncio

CLIENTS, PROMPTS_EACH = 10, 5


async def listen(ws, prompt_ids: set[str]) -> list[dict]:
    """This client's JSON messages until every one of its prompts said `executing null`."""
    messages, done = [], set()
    async with asyncio.timeout(30):
        while done != prompt_ids:
            message = await ws.receive_json()
            messages.append(message)
            if message["type"] == "executing" and message["data"]["node"] is None:
                done.add(message["data"]["prompt_id"])
    return messages


async def one_client(client, index: int) -> tuple[list[str], list[dict]]:
    ws = await client.ws_connect(f"/ws?clientId=client{index}")
    await ws.receive_json()  # greeting
    answers = []
    for k in range(PROMPTS_EACH):
        answers.append(await queue(client, slow(value=index * 100 + k, steps=3), client_id=f"client{index}"))
    ids = [a["prompt_id"] for a in answers]
    messages = await listen(ws, set(ids))
    await ws.close()
    return ids, messages


async def test_fifty_prompts_from_ten_clients(client):
    results = await asyncio.gather(*(one_client(client, i) for i in range(CLIENTS)))
    history = await (await client.get("/history")).json()
    assert len(history) == CLIENTS * PROMPTS_EACH  # none lost
    numbers = [entry["prompt"][0] for entry in history.values()]
    assert numbers == sorted(numbers)  # finished in queue order
    for index, (ids, messages) in enumerate(results):
        own = set(ids)
        assert all(m["data"]["prompt_id"] in own for m in messages if "prompt_id" in m["data"])  # only its own
        starts = [m["data"]["prompt_id"] for m in messages if m["type"] == "execution_start"]
        assert sorted(starts) == sorted(ids)
        for k, prompt_id in enumerate(ids):
            entry = history[prompt_id]
            assert entry["status"]["status_str"] == "success"
            assert entry["outputs"]["3"]["values"] == [float(index * 100 + k)]
    assert await (await client.get("/queue")).json() == {"queue_running": [], "queue_pending": []}


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
async def test_memory_returns_after_free(client):
    def big(seed: int) -> dict:  # 40 MB tensors: above glibc's largest mmap threshold, so freeing returns them
        return {"1": {"class_type": "Zeros", "inputs": {"size": 10_000_000, "seed": seed}},
                "2": {"class_type": "Sum", "inputs": {"t": ["1", 0]}},
                "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "sum"}}}

    async def run_all(seeds) -> None:
        ids = [(await queue(client, big(seed)))["prompt_id"] for seed in seeds]
        while len(await (await client.get("/history")).json()) < len(ids):
            await asyncio.sleep(0.02)

    await run_all([100])
    await client.post("/free", json={"free_memory": True})
    await client.post("/history", json={"clear": True})
    gc.collect()
    baseline = rss_bytes()
    await run_all(range(4))
    grown = rss_bytes()
    assert grown - baseline > 120e6  # four cached 40 MB outputs
    await client.post("/queue", json={"clear": True})
    await client.post("/history", json={"clear": True})
    assert (await client.post("/free", json={"unload_models": True, "free_memory": True})).status == 200
    gc.collect()
    assert rss_bytes() - baseline < 40e6, (baseline, grown, rss_bytes())
