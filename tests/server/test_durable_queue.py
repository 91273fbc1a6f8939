"""The durable queue: prompts and history kept in SQLite survive a killed server; lost runs are retried once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import replace

import aiohttp
import pytest
from PIL import Image

from sigmagraph.engine.server import ServerOptions, create_app
from sigmagraph.engine.server.store import DATABASE_NAME, Store

from .conftest import finished, picture, queue, simple
from .test_live import start_server, wait_for_line

PROMPTS = 10
STEPS, DELAY_MS = 8, 40  # each prompt runs ~0.35 s, so the kill lands mid-run


def _get(address: str, path: str):
    with urllib.request.urlopen(f"http://{address}{path}") as response:
        return json.loads(response.read())


def _serve(tmp_path, state):
    process, lines = start_server(tmp_path, "--port", "0", "--state-dir", str(state))
    url = wait_for_line(lines, "Sigmagraph server on http://127.0.0.1:").split(" on ")[1].strip()
    return process, urllib.parse.urlsplit(url).netloc


async def _queue_and_kill(address: str, process, client_id: str) -> tuple[list[str], str]:
    """Queues PROMPTS pictures (grey levels 0..9), then SIGKILLs the server halfway through the third."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{address}/ws?clientId={client_id}") as ws:
            ids = []
            for level in range(PROMPTS):
                async with http.post(f"http://{address}/prompt", json={
                        "prompt": picture(value=level, steps=STEPS, delay_ms=DELAY_MS), "client_id": client_id}) as r:
                    assert r.status == 200, await r.text()
                    ids.append((await r.json())["prompt_id"])
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                if event["type"] == "progress" and event["data"]["prompt_id"] == ids[2] \
                        and event["data"]["value"] == STEPS // 2:
                    process.send_signal(signal.SIGKILL)
                    return ids, ids[2]
    raise AssertionError("the third prompt never reached half way")


def test_a_killed_server_resumes_every_prompt_exactly_once(tmp_path):
    state = tmp_path / "state"
    process, address = _serve(tmp_path, state)
    try:
        ids, killed = asyncio.run(_queue_and_kill(address, process, uuid.uuid4().hex))
        assert process.wait(timeout=30) == -signal.SIGKILL
        done_before = set(_get_history_ids_from_disk(state))
        assert killed not in done_before and set(ids[:2]) <= done_before

        process, address = _serve(tmp_path, state)
        deadline = time.monotonic() + 60
        while len(history := _get(address, "/history")) < PROMPTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(history) == ids  # all finished, in queue order (the killed one resumed first)
        assert all(entry["status"]["status_str"] == "success" for entry in history.values())
        assert [history[pid]["status"]["attempts"] for pid in ids] == [2 if pid == killed else 1 for pid in ids]
        assert _get(address, "/queue") == {"queue_running": [], "queue_pending": []}
        files = sorted((tmp_path / "output").glob("pic_*.png"))
        assert len(files) == PROMPTS  # nothing ran twice to completion
        assert sorted(Image.open(f).getpixel((0, 0))[0] for f in files) == list(range(PROMPTS))
        for pid in ids:  # the history names files that exist, one per prompt
            (image,) = history[pid]["outputs"]["2"]["images"]
            assert (tmp_path / "output" / image["filename"]).is_file()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _get_history_ids_from_disk(state) -> list[str]:
    with sqlite3.connect(state / DATABASE_NAME) as db:  # read beside the dead server, as a restart would
        return [row[0] for row in db.execute("SELECT prompt_id FROM history ORDER BY seq")]


def _stored(number: int, item_prompt: dict, prompt_id: str, attempts: int) -> tuple[list, int]:
    return [number, prompt_id, item_prompt, {"client_id": "gone"}, ["2"]], attempts


@pytest.mark.asyncio
async def test_restart_retries_a_lost_run_once_then_reports_it(aiohttp_client, config, session, options, tmp_path):
    state = tmp_path / "state"
    store = Store(state)
    lost_once, lost_twice, fresh = (str(uuid.uuid4()) for _ in range(3))
    for item, attempts in (_stored(3, simple(1.0), lost_once, 1), _stored(1, simple(2.0), lost_twice, 2),
                           _stored(4, simple(3.0), fresh, 0)):
        store.add_prompt(item)
        for _ in range(attempts):
            store.start_attempt(item[1])
    broken = simple(4.0)
    broken["1"]["inputs"]["value"] = 5000  # beyond Constant's max: it no longer validates
    store.add_prompt([5, "broken", broken, {}, ["2"]])
    store.close()

    client = await aiohttp_client(create_app(config, session, replace(options, state_dir=state)))
    assert (await finished(client, lost_once))["status"]["attempts"] == 2
    assert (await finished(client, lost_once))["outputs"] == {"2": {"values": [1.0], "label": ["x"]}}
    assert (await finished(client, fresh))["status"]["attempts"] == 1
    failed = await finished(client, lost_twice)
    assert failed["status"]["status_str"] == "error" and failed["outputs"] == {}
    error = dict(failed["status"]["messages"])["execution_error"]
    assert error["exception_type"] == "sigmagraph.RunLost" and "server stopped" in error["exception_message"]
    invalid = dict((await finished(client, "broken"))["status"]["messages"])["execution_error"]
    assert "no longer validates" in invalid["exception_message"] and "node 1" in invalid["exception_message"]
    # new prompts continue the numbering, and the store holds nothing unfinished
    later = await queue(client, simple(5.0))
    assert later["number"] == 5
    await finished(client, later["prompt_id"])
    assert Store(state).prompts() == []


def test_store_keeps_history_bounded_and_in_completion_order(tmp_path):
    store = Store(tmp_path, history_limit=3)
    for name in "abcde":
        store.add_prompt([0, name, {}, {}, []])
        store.finish(name, {"n": name})
    assert [pid for pid, _ in store.history_slice(0, None)] == ["c", "d", "e"]
    assert store.prompts() == [] and store.history_entry("e") == {"n": "e"} and store.history_entry("a") is None
    store.close()
    reopened = Store(tmp_path, history_limit=3)  # a restart reads the same history
    assert [pid for pid, _ in reopened.history_slice(1, 5)] == ["d", "e"] and reopened.history_count() == 3


def test_memory_store_needs_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = Store(ServerOptions().state_dir)
    store.add_prompt([0, "p", {}, {}, []])
    assert [p.prompt_id for p in store.prompts()] == ["p"] and list(tmp_path.iterdir()) == []
