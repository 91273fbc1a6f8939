"""Two Ray workers on the demo model behind one server: events home in order, files home, routing, faults.

The tests share one pool (starting workers is the slow part) and run in file order; the fault
test comes last because it replaces the actors.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp
from PIL import Image

from sigmagraph.engine.server.state import STATE
from sigmagraph.nodes.demo.generate import txt2img_workflow

from .conftest import COPY

STEPS = 2
CLIENTS, PER_CLIENT = 4, 5
TIMEOUT = 240.0  # a bound for a stuck pool, far above a normal run (see benchmarks/scale.py)
LOADER, SAMPLER, SAVE = "1", "5", "7"


def demo(seed: int, steps: int = STEPS, ckpt: str | None = None, prefix: str = "ray") -> dict[str, Any]:
    """The default workflow at 32x32 with one picture, saved under `prefix`."""
    workflow = txt2img_workflow("a red circle", seed=seed, batch=1, ckpt_name=ckpt, steps=steps)
    workflow["4"]["inputs"].update(width=32, height=32)
    workflow[SAVE] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}}
    return workflow


class Client:
    """A websocket client that queues prompts and collects what it hears about them."""

    def __init__(self, http: aiohttp.ClientSession, base: str, client_id: str):
        self.http, self.base, self.client_id = http, base, client_id
        self.events: list[dict[str, Any]] = []
        self.frames = 0

    async def __aenter__(self) -> "Client":
        self.ws = await self.http.ws_connect(f"{self.base}ws?clientId={self.client_id}")
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def queue(self, workflow: dict[str, Any]) -> str:
        async with self.http.post(f"{self.base}prompt", json={"prompt": workflow, "client_id": self.client_id}) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["prompt_id"]

    async def until_done(self, prompt_ids: list[str], on_event=None) -> None:
        """Reads the websocket until each prompt said `executing null`."""
        pending = set(prompt_ids)
        async for message in self.ws:
            if isinstance(message.data, bytes):
                self.frames += 1
                continue
            event = json.loads(message.data)
            self.events.append(event)
            if on_event is not None:
                await on_event(event)
            data = event["data"]
            if event["type"] == "executing" and data.get("node") is None and data.get("prompt_id") in pending:
                pending.discard(data["prompt_id"])
                if not pending:
                    return
        raise AssertionError(f"the websocket closed with {len(pending)} prompts unfinished")

    def of(self, prompt_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events if isinstance(e["data"], dict) and e["data"].get("prompt_id") == prompt_id]


async def get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def entry(http: aiohttp.ClientSession, base: str, prompt_id: str) -> dict[str, Any]:
    return (await get(http, f"{base}history/{prompt_id}"))[prompt_id]


def loaded_checkpoint(history_entry: dict[str, Any]) -> bool:
    """Whether the run loaded its checkpoint (the loader ran rather than came from the cache)."""
    cached = next(data["nodes"] for name, data in history_entry["status"]["messages"] if name == "execution_cached")
    return LOADER not in cached


def run(coroutine) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


def test_twenty_prompts_from_four_clients_come_home_in_order(ray_server):
    base = ray_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            clients = [Client(http, base, f"client-{c}") for c in range(CLIENTS)]
            for client in clients:
                await client.__aenter__()
            seeds = {c: [100 * c + k for k in range(PER_CLIENT)] for c in range(CLIENTS)}
            ids = {c: [await clients[c].queue(demo(seed)) for seed in seeds[c]] for c in range(CLIENTS)}
            await asyncio.gather(*(clients[c].until_done(ids[c]) for c in range(CLIENTS)))
            entries = {pid: await entry(http, base, pid) for c in ids for pid in ids[c]}
            for client in clients:
                await client.__aexit__()
            return clients, seeds, ids, entries

    clients, seeds, ids, entries = run(scenario())
    for c, client in enumerate(clients):
        mine = set(ids[c])
        assert {e["data"]["prompt_id"] for e in client.events if "prompt_id" in e["data"]} == mine  # only its own
        assert client.frames >= PER_CLIENT  # the sampler previews each prompt's last step at least
        for pid in ids[c]:
            kinds = [e["type"] for e in client.of(pid)]
            assert kinds[0] == "execution_routed" and kinds[1] == "execution_start"
            assert kinds[-2:] == ["execution_success", "executing"] and client.of(pid)[-1]["data"]["node"] is None
            steps = [e["data"]["value"] for e in client.of(pid) if e["type"] == "progress"]
            assert steps == list(range(1, STEPS + 1))
            assert kinds.index("executed") < kinds.index("execution_success")
    workers = Counter(e["status"]["worker"] for e in entries.values())
    assert set(workers) == {"ray-0", "ray-1"} and sum(workers.values()) == CLIENTS * PER_CLIENT
    # a seed sweep loads the checkpoint at most once per worker (routing keeps it where it is loaded)
    loads = Counter(e["status"]["worker"] for e in entries.values() if loaded_checkpoint(e))
    assert all(count <= 1 for count in loads.values()), loads
    # the files came home: one per prompt, new names, PNG metadata intact (the prompt that made it)
    output = ray_server.runner.app[STATE].config.output_dir
    names = [e["outputs"][SAVE]["images"][0]["filename"] for e in entries.values()]
    assert len(set(names)) == len(names) == len(list(output.glob("ray_*_.png")))
    for c in ids:
        for pid, seed in zip(ids[c], seeds[c]):
            (image,) = entries[pid]["outputs"][SAVE]["images"]
            assert json.loads(Image.open(output / image["filename"]).text["prompt"])[SAMPLER]["inputs"]["seed"] == seed
            executed = next(e for e in clients[c].of(pid) if e["type"] == "executed" and e["data"]["node"] == SAVE)
            assert executed["data"]["output"]["images"] == [image]  # the event names the file at home too


def test_prompts_go_where_their_checkpoint_is_loaded(ray_server):
    base = ray_server.url

    async def one(client: Client, workflow: dict[str, Any]) -> dict[str, Any]:
        pid = await client.queue(workflow)
        await client.until_done([pid])
        return await entry(client.http, base, pid)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with Client(http, base, "router") as client:
                first = await one(client, demo(1, ckpt=COPY))
                assert loaded_checkpoint(first)  # nobody held the copy yet
                await one(client, demo(2))  # the other checkpoint in between
                again = await one(client, demo(3, ckpt=COPY))
                return first, again

    first, again = run(scenario())
    assert again["status"]["worker"] == first["status"]["worker"] and not loaded_checkpoint(again)


def test_interrupt_by_prompt_id_stops_it_on_its_worker(ray_server):
    base = ray_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with Client(http, base, "stopper") as client:
                pid = await client.queue(demo(7, steps=5000))

                async def stop_when_sampling(event):
                    if event["type"] == "progress" and event["data"]["value"] == 2:
                        async with http.post(f"{base}interrupt", json={"prompt_id": pid}) as response:
                            assert response.status == 200

                await client.until_done([pid], stop_when_sampling)
                return client.of(pid), await entry(http, base, pid)

    events, history = run(scenario())
    assert [name for name, _ in history["status"]["messages"]][-1] == "execution_interrupted"
    assert max(e["data"]["value"] for e in events if e["type"] == "progress") < 5000


def test_system_stats_lists_the_workers_and_free_reaches_each(ray_server):
    base = ray_server.url

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with Client(http, base, "freer") as client:  # something in a cache, whatever ran before
                await client.until_done([await client.queue(demo(21))])
            before = (await get(http, f"{base}system_stats"))["workers"]
            async with http.post(f"{base}free", json={"unload_models": True}) as response:
                assert response.status == 200
            for _ in range(100):  # the workers free their caches on their own threads
                after = (await get(http, f"{base}system_stats"))["workers"]
                if all(w.get("cached_nodes") == 0 for w in after):
                    return before, after
                await asyncio.sleep(0.1)
            return before, after

    before, after = run(scenario())
    assert [w["name"] for w in before] == ["ray-0", "ray-1"]
    assert all(w["state"] == "idle" and w["device"] == "cpu" for w in before), before
    assert any(w["cached_nodes"] > 0 and w["cached_bytes"] > 0 for w in before), before
    assert all(w.get("cached_nodes") == 0 and w.get("cached_bytes") == 0 for w in after), after


def test_lost_workers_requeue_once_then_report_and_the_pool_recovers(ray_server, ray_cluster):
    base = ray_server.url
    pool = ray_server.runner.app[STATE].workers

    def worker_running(pid: str):
        return next(slot for slot in pool.slots if slot.running is not None and slot.running.prompt_id == pid)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with Client(http, base, "victim") as client:
                # one worker killed mid-sampling: its prompt completes on the other
                survivor = await client.queue(demo(11, steps=12))
                killed: list[str] = []

                async def kill_running(event):
                    if event["type"] == "progress" and event["data"]["value"] == 2 and not killed:
                        slot = worker_running(event["data"]["prompt_id"])
                        killed.append(slot.name)
                        ray_cluster.kill(slot.actor)

                await client.until_done([survivor], kill_running)
                retried = await entry(http, base, survivor)
                # both killed: the prompt ends with an error naming the worker, and the server still answers
                doomed = await client.queue(demo(12, steps=12))
                both: list[str] = []

                async def kill_both(event):
                    if event["type"] == "progress" and event["data"]["value"] == 2 and not both:
                        running = worker_running(event["data"]["prompt_id"])
                        for slot in sorted(pool.slots, key=lambda s: s is running):  # the idle one first
                            both.append(slot.name)
                            ray_cluster.kill(slot.actor)

                await client.until_done([doomed], kill_both)
                failed = await entry(http, base, doomed)
                stats = await get(http, f"{base}system_stats")
                later = await client.queue(demo(13))  # replacement workers take it
                await client.until_done([later])
                return killed, retried, failed, stats, await entry(http, base, later)

    killed, retried, failed, stats, later = run(scenario())
    assert retried["status"]["status_str"] == "success" and retried["status"]["attempts"] == 2
    assert retried["status"]["worker"] != killed[0]
    error = dict(failed["status"]["messages"])["execution_error"]
    assert failed["status"]["status_str"] == "error" and error["exception_type"] == "sigmagraph.RunLost"
    assert "was lost" in error["exception_message"] and failed["status"]["worker"] in error["exception_message"]
    assert sum(w["replaced"] for w in stats["workers"]) == 3  # each death noticed once, each slot refilled
    assert later["status"]["status_str"] == "success"
