"""History paging and ComfyUI's job listing (/api/jobs) over the durable store, against the real app."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
import pytest_asyncio

from sigmagraph.engine.server import create_app

from .conftest import finished, picture, queue, running, simple, slow

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def durable(aiohttp_client, config, session, options, tmp_path):
    return await aiohttp_client(create_app(config, session, replace(options, state_dir=tmp_path / "state")))


async def _finish_all(client, workflows) -> list[str]:
    ids = []
    for workflow in workflows:
        ids.append((await queue(client, workflow))["prompt_id"])
        await finished(client, ids[-1])
    return ids


async def test_history_pages_like_comfyui(durable):
    ids = await _finish_all(durable, [simple(float(v)) for v in range(5)])

    async def page(query: str) -> list[str]:
        return list(await (await durable.get(f"/history{query}")).json())

    # ComfyUI: oldest first; max_items alone gives the newest ones; offset counts from the oldest
    assert await page("") == ids
    assert await page("?max_items=2") == ids[3:]
    assert await page("?offset=3") == ids[3:]
    assert await page("?max_items=2&offset=1") == ids[1:3]
    assert await page("?max_items=10&offset=4") == ids[4:]
    assert await page("?max_items=0") == []


async def test_jobs_list_filters_sorts_and_pages(durable):
    ok = await _finish_all(durable, [simple(1.0), simple(2.0)])
    broken = simple(3.0)
    broken["9"] = {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "no"}}
    broken["2"]["inputs"]["value"] = ["9", 0]
    failed = (await queue(durable, broken))["prompt_id"]
    await finished(durable, failed)
    blocker = (await queue(durable, slow(steps=100000)))["prompt_id"]
    await running(durable)
    waiting = (await queue(durable, simple(4.0), extra_data={"extra_pnginfo": {"workflow": {"id": "wf-7"}}}))
    try:
        body = await (await durable.get("/api/jobs")).json()
        by_id = {job["id"]: job for job in body["jobs"]}
        assert body["pagination"] == {"offset": 0, "limit": None, "total": 5, "has_more": False}
        assert [by_id[pid]["status"] for pid in (*ok, failed, blocker, waiting["prompt_id"])] == \
            ["completed", "completed", "failed", "in_progress", "pending"]
        # newest first by creation time (the default sort)
        assert [job["id"] for job in body["jobs"]] == [waiting["prompt_id"], blocker, failed, *reversed(ok)]
        assert by_id[waiting["prompt_id"]]["workflow_id"] == "wf-7"
        assert by_id[waiting["prompt_id"]]["priority"] == waiting["number"]
        assert by_id[failed]["execution_error"]["exception_message"].endswith("no")
        assert by_id[ok[0]]["execution_end_time"] >= by_id[ok[0]]["execution_start_time"] > 0
        assert "outputs" not in by_id[ok[0]]  # details only for one job

        async def ids(query: str) -> tuple[list[str], dict]:
            got = await (await durable.get(f"/api/jobs?{query}")).json()
            return [job["id"] for job in got["jobs"]], got["pagination"]

        assert await ids("status=completed,failed&sort_order=asc") == (
            [*ok, failed], {"offset": 0, "limit": None, "total": 3, "has_more": False})
        assert await ids("limit=2&offset=1") == ([blocker, failed], {"offset": 1, "limit": 2, "total": 5,
                                                                      "has_more": True})
        assert (await ids("workflow_id=wf-7"))[0] == [waiting["prompt_id"]]
        assert (await ids("offset=-4&limit=1"))[1]["offset"] == 0  # ComfyUI clamps a negative offset
        for bad in ("status=done", "sort_by=name", "sort_order=up", "limit=0", "limit=x"):
            assert (await durable.get(f"/api/jobs?{bad}")).status == 400, bad
    finally:
        await durable.post("/interrupt", json={"prompt_id": blocker})
    await finished(durable, waiting["prompt_id"])
    # The interrupted prompt is "cancelled", the status newer ComfyUI front ends filter on.
    cancelled = await (await durable.get("/api/jobs?status=cancelled")).json()
    assert [job["id"] for job in cancelled["jobs"]] == [blocker] and cancelled["jobs"][0]["status"] == "cancelled"


async def test_one_job_in_detail_or_404(durable):
    (pid,) = await _finish_all(durable, [picture(value=9, steps=1)])
    job = await (await durable.get(f"/api/jobs/{pid}")).json()
    image = {"filename": "pic_00001_.png", "subfolder": "", "type": "output"}
    assert job["status"] == "completed" and job["outputs"] == {"2": {"images": [image]}}
    assert job["outputs_count"] == 1 and job["preview_output"] == {**image, "nodeId": "2", "mediaType": "images"}
    assert job["workflow"]["prompt"] == picture(value=9, steps=1) and job["execution_status"]["completed"] is True
    missing = await durable.get(f"/api/jobs/{uuid.uuid4()}")
    assert missing.status == 404 and "not found" in (await missing.json())["error"]["message"]
    assert (await durable.get(f"/jobs/{pid}")).status == 404  # ComfyUI serves it under /api/ only


async def test_history_survives_a_restart_of_the_app(aiohttp_client, config, session, options, tmp_path):
    durable_options = replace(options, state_dir=tmp_path / "state")
    first = await aiohttp_client(create_app(config, session, durable_options))
    ids = await _finish_all(first, [simple(1.0), simple(2.0)])
    await first.close()
    second = await aiohttp_client(create_app(config, session, durable_options))
    assert list(await (await second.get("/history")).json()) == ids
    assert (await finished(second, ids[1]))["outputs"] == {"2": {"values": [2.0], "label": ["x"]}}
    await asyncio.sleep(0)
