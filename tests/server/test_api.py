"""The JSON API against the real app: prompt, queue order, interrupt, history, free, catalogue, stats."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sigmagraph.engine.validation import ValidatedWorkflow

from ..engine import testing_pack
from .conftest import finished, queue, running, simple, slow

pytestmark = pytest.mark.asyncio


async def test_prompt_runs_and_history_holds_outputs_and_messages(client):
    answer = await queue(client, simple(3.0), client_id="me", extra_data={"extra_pnginfo": {"workflow": {}}})
    assert set(answer) == {"prompt_id", "number", "node_errors"} and answer["node_errors"] == {}
    entry = await finished(client, answer["prompt_id"])
    number, prompt_id, prompt, extra_data, outputs = entry["prompt"]
    assert (number, prompt_id, outputs) == (answer["number"], answer["prompt_id"], ["2"])
    assert prompt == simple(3.0) and extra_data["client_id"] == "me" and "create_time" in extra_data
    assert entry["outputs"] == {"2": {"values": [3.0], "label": ["x"]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert entry["meta"]["2"]["node_id"] == "2"


async def test_the_worker_runs_through_the_session_what_post_validated(client, session, monkeypatch):
    runs = []
    run = session.run
    monkeypatch.setattr(session, "run", lambda workflow, **options: runs.append(workflow) or run(workflow, **options))
    answer = await queue(client, simple(4.0))
    assert (await finished(client, answer["prompt_id"]))["outputs"] == {"2": {"values": [4.0], "label": ["x"]}}
    assert len(runs) == 1 and isinstance(runs[0], ValidatedWorkflow) and runs[0].outputs == ("2",)


async def test_invalid_prompt_is_400_with_node_errors_and_not_queued(client):
    bad = simple()
    bad["1"]["inputs"]["value"] = 5000
    bad["3"] = {"class_type": "NoSuchNode", "inputs": {}}
    response = await client.post("/prompt", json={"prompt": bad})
    assert response.status == 400
    body = await response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["errors"][0]["type"] == "value_bigger_than_max"
    assert body["node_errors"]["3"]["errors"][0]["type"] == "missing_node_type"
    assert await (await client.get("/queue")).json() == {"queue_running": [], "queue_pending": []}
    assert await (await client.get("/history")).json() == {}


async def test_prompt_without_output_node_is_400(client):
    lonely = {"1": {"class_type": "Constant", "inputs": {"value": 1.0}}}
    response = await client.post("/prompt", json={"prompt": lonely})
    assert response.status == 400 and (await response.json())["error"]["type"] == "prompt_no_outputs"


async def test_ui_format_prompt_is_converted(client):
    ui = {"nodes": [{"id": 1, "type": "Constant", "inputs": [], "outputs": [{"name": "NUMBER", "type": "NUMBER",
                                                                            "links": [1]}],
                     "widgets_values": [4.0]},
                    {"id": 2, "type": "Show", "inputs": [{"name": "value", "type": "NUMBER", "link": 1}],
                     "outputs": [], "widgets_values": ["ui"]}],
          "links": [[1, 1, 0, 2, 0, "NUMBER"]], "version": 0.4}
    answer = await queue(client, ui)
    assert (await finished(client, answer["prompt_id"]))["outputs"]["2"]["values"] == [4.0]


async def test_client_chosen_prompt_id(client):
    chosen = str(uuid.uuid4())
    assert (await queue(client, simple(), prompt_id=chosen))["prompt_id"] == chosen
    await finished(client, chosen)
    again = await client.post("/prompt", json={"prompt": simple(), "prompt_id": chosen})
    assert again.status == 400 and (await again.json())["error"]["type"] == "invalid_prompt_id"
    bad = await client.post("/prompt", json={"prompt": simple(), "prompt_id": "not-a-uuid"})
    assert bad.status == 400 and "UUID" in (await bad.json())["error"]["message"]


async def test_queue_order_by_number_and_front(client):
    blocker = await queue(client, slow(steps=100000))
    await running(client)
    normal = [await queue(client, simple(float(i))) for i in range(3)]
    urgent = await queue(client, simple(10.0), front=True)
    explicit = await queue(client, simple(11.0), number=-1000)
    pending = (await (await client.get("/queue")).json())["queue_pending"]
    expected = [explicit, urgent, *normal]
    assert [item[1] for item in pending] == [a["prompt_id"] for a in expected]
    assert urgent["number"] < 0 and explicit["number"] == -1000
    assert all(len(item) == 5 and item[4] == ["2"] for item in pending)
    await client.post("/interrupt", json={"prompt_id": blocker["prompt_id"]})
    for answer in expected:
        await finished(client, answer["prompt_id"])
    history = await (await client.get("/history")).json()
    assert list(history) == [blocker["prompt_id"], *(a["prompt_id"] for a in expected)]


async def test_queue_delete_and_clear_touch_only_pending(client):
    blocker = await queue(client, slow(steps=100000))
    await running(client)
    a, b, c = [await queue(client, simple(float(i))) for i in range(3)]
    assert (await client.post("/queue", json={"delete": [b["prompt_id"], blocker["prompt_id"]]})).status == 200
    snapshot = await (await client.get("/queue")).json()
    assert [i[1] for i in snapshot["queue_pending"]] == [a["prompt_id"], c["prompt_id"]]
    assert snapshot["queue_running"][0][1] == blocker["prompt_id"]
    await client.post("/queue", json={"clear": True})
    assert (await (await client.get("/queue")).json())["queue_pending"] == []
    assert (await (await client.get("/prompt")).json()) == {"exec_info": {"queue_remaining": 1}}
    await client.post("/interrupt", json={})
    assert (await finished(client, blocker["prompt_id"]))["status"]["status_str"] == "error"


async def test_interrupt_in_the_middle_of_a_slow_node(client):
    answer = await queue(client, slow(steps=100000))
    await running(client)
    await asyncio.sleep(0.05)  # well inside the Slow node's loop
    other = str(uuid.uuid4())
    await client.post("/interrupt", json={"prompt_id": other})  # not the running prompt: ignored
    await asyncio.sleep(0.05)
    assert (await (await client.get("/queue")).json())["queue_running"][0][1] == answer["prompt_id"]
    assert (await client.post("/interrupt", json={"prompt_id": answer["prompt_id"]})).status == 200
    entry = await finished(client, answer["prompt_id"])
    status = entry["status"]
    assert status["status_str"] == "error" and status["completed"] is False
    event, data = status["messages"][-1]
    assert event == "execution_interrupted" and data["node_id"] == "2" and data["node_type"] == "Slow"
    assert testing_pack.CALLS["Show"] == 0
    after = await queue(client, simple(5.0))  # the worker goes on, and the old interrupt does not leak
    assert (await finished(client, after["prompt_id"]))["status"]["status_str"] == "success"


async def test_untargeted_interrupt_and_empty_body(client):
    answer = await queue(client, slow(steps=100000))
    await running(client)
    assert (await client.post("/interrupt")).status == 200
    assert (await finished(client, answer["prompt_id"]))["status"]["messages"][-1][0] == "execution_interrupted"
    assert (await client.post("/interrupt")).status == 200  # nothing running: a no-op
    after = await queue(client, simple(6.0))
    assert (await finished(client, after["prompt_id"]))["status"]["completed"] is True


async def test_failing_prompt_does_not_stop_the_worker(client):
    failing = simple()
    failing["2"] = {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "broken on purpose"}}
    failing["3"] = {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "never"}}
    bad = await queue(client, failing)
    good = await queue(client, simple(9.0))
    entry = await finished(client, bad["prompt_id"])
    event, data = entry["status"]["messages"][-1]
    assert event == "execution_error" and data["node_id"] == "2" and data["exception_message"] == "broken on purpose"
    assert (await finished(client, good["prompt_id"]))["outputs"]["2"]["values"] == [9.0]


async def test_a_node_calling_sys_exit_does_not_stop_the_worker(client):
    ws = await client.ws_connect("/ws?clientId=q")
    quitting = simple()
    quitting["2"] = {"class_type": "Quit", "inputs": {"x": ["1", 0]}}
    quitting["3"] = {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "never"}}
    bad = await queue(client, quitting, client_id="q")
    good = await queue(client, simple(8.0))
    event, data = (await finished(client, bad["prompt_id"]))["status"]["messages"][-1]
    assert event == "execution_error" and data["exception_type"] == "builtins.SystemExit"
    assert (await finished(client, good["prompt_id"]))["status"]["completed"] is True
    seen = []
    while not (seen and seen[-1]["type"] == "executing" and seen[-1]["data"]["node"] is None):
        seen.append(await ws.receive_json(timeout=5))
    assert "execution_error" in [m["type"] for m in seen]  # the client still hears the end of its prompt


async def test_cache_persists_across_prompts_and_free_clears_it(client):
    first = await queue(client, slow(steps=5))
    await finished(client, first["prompt_id"])
    second = await queue(client, slow(steps=5))
    cached = (await finished(client, second["prompt_id"]))["status"]["messages"][1]
    assert cached[0] == "execution_cached" and cached[1]["nodes"] == ["3"]
    assert testing_pack.CALLS["Slow"] == 1
    assert (await client.post("/free", json={"unload_models": True, "free_memory": True})).status == 200
    third = await queue(client, slow(steps=5))
    await finished(client, third["prompt_id"])
    assert testing_pack.CALLS["Slow"] == 2


async def test_free_while_running_clears_after_the_prompt(client):
    answer = await queue(client, slow(steps=200))
    await running(client)
    await client.post("/free", json={"free_memory": True})
    assert (await finished(client, answer["prompt_id"]))["status"]["completed"] is True
    again = await queue(client, slow(steps=5))
    await finished(client, again["prompt_id"])
    assert testing_pack.CALLS["Slow"] == 2 and testing_pack.CALLS["Constant"] == 2  # nothing was left cached


async def test_history_paging_delete_and_clear(client):
    ids = []
    for i in range(4):
        ids.append((await queue(client, simple(float(i))))["prompt_id"])
        await finished(client, ids[-1])
    assert list(await (await client.get("/history")).json()) == ids
    assert list(await (await client.get("/history?max_items=2")).json()) == ids[2:]
    assert list(await (await client.get("/history?max_items=2&offset=1")).json()) == ids[1:3]
    assert await (await client.get(f"/history/{uuid.uuid4()}")).json() == {}
    await client.post("/history", json={"delete": [ids[0]]})
    assert list(await (await client.get("/history")).json()) == ids[1:]
    await client.post("/history", json={"clear": True})
    assert await (await client.get("/history")).json() == {}
    bad = await client.get("/history?max_items=-1")
    assert bad.status == 400 and "max_items" in (await bad.json())["error"]["message"]


async def test_object_info(client):
    catalogue = await (await client.get("/object_info")).json()
    assert {"Constant", "Slow", "Show", "Picture"} <= set(catalogue)
    assert catalogue["Add"]["input"]["required"]["offset"] == ["INT", {"default": 0, "min": -10, "max": 10, "step": 1}]
    one = await (await client.get("/object_info/Show")).json()
    assert one == {"Show": catalogue["Show"]}
    assert await (await client.get("/object_info/Nope")).json() == {}


async def test_system_stats(client, session):
    session.registry.record_failure("broken_pack", ImportError("no module named nowhere"))
    stats = await (await client.get("/system_stats")).json()
    assert stats["system"]["python_version"] and stats["system"]["ram_total"] > 0
    assert stats["devices"] and stats["devices"][0]["type"] in ("cpu", "cuda")
    assert stats["node_pack_problems"] == [{"pack": "broken_pack", "error": "ImportError: no module named nowhere",
                                            "node": None,
                                            "message": "skipped broken_pack: ImportError: no module named nowhere"}]


async def test_routes_are_also_under_api(client):
    answer = await (await client.post("/api/prompt", json={"prompt": simple(1.5)})).json()
    entry = await (await client.get(f"/api/history/{answer['prompt_id']}")).json()
    while not entry:
        await asyncio.sleep(0.01)
        entry = await (await client.get(f"/api/history/{answer['prompt_id']}")).json()
    assert "Show" in await (await client.get("/api/object_info")).json()
    assert set(await (await client.get("/api/queue")).json()) == {"queue_running", "queue_pending"}


async def test_socket_types_carry_the_registered_colours(client):
    response = await client.get("/socket_types")
    assert response.status == 200
    types = await response.json()
    assert types["NUMBER"]["color"] == "#88cc88"  # as tests/engine/testing_pack.py registers it
