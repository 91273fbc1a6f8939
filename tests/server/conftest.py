"""Fixtures: the real application over the engine's test pack plus server_pack, in tmp folders."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from sigmagraph.engine import Registry
from sigmagraph.engine.server import ServerOptions, create_app
from sigmagraph.engine.server.options import MEGABYTE

from ..engine import testing_pack
from ..engine.conftest import config, session  # noqa: F401 - the same fixtures, over this package's registry
from . import server_pack

UPLOAD_LIMIT = 1 * MEGABYTE


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.load_module(testing_pack, "testing")
    reg.load_module(server_pack, "server")
    assert not reg.problems, reg.problems
    return reg




@pytest.fixture
def options(tmp_path) -> ServerOptions:
    return ServerOptions(max_upload_bytes=UPLOAD_LIMIT, web_root=tmp_path / "web", workflows_dir=tmp_path / "workflows")


@pytest_asyncio.fixture
async def client(aiohttp_client, config, session, options):
    return await aiohttp_client(create_app(config, session, options))


def simple(value: float = 2.0, label: str = "x") -> dict[str, Any]:
    """Constant -> Show."""
    return {"1": {"class_type": "Constant", "inputs": {"value": value}},
            "2": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": label}}}


def slow(value: float = 1.0, steps: int = 20) -> dict[str, Any]:
    """Constant -> Slow (progress every step, ~1 ms each) -> Show."""
    return {"1": {"class_type": "Constant", "inputs": {"value": value}},
            "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": steps}},
            "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "slow"}}}


def picture(value: float = 7.0, steps: int = 4, delay_ms: int = 0) -> dict[str, Any]:
    """Constant -> Picture (previews, then a PNG in output/)."""
    return {"1": {"class_type": "Constant", "inputs": {"value": value}},
            "2": {"class_type": "Picture", "inputs": {"value": ["1", 0], "steps": steps, "delay_ms": delay_ms,
                                                      "prefix": "pic"}}}


async def queue(client, workflow: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """POST /prompt that must succeed; returns the response document."""
    response = await client.post("/prompt", json={"prompt": workflow, **fields})
    assert response.status == 200, await response.text()
    return await response.json()


async def finished(client, prompt_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The history entry of a prompt, once it has one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entry = await (await client.get(f"/history/{prompt_id}")).json()
        if entry:
            return entry[prompt_id]
        assert asyncio.get_running_loop().time() < deadline, f"prompt {prompt_id} did not finish"
        await asyncio.sleep(0.01)


async def running(client, timeout: float = 10.0) -> list:
    """Waits until a prompt is running; returns its queue item."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (items := (await (await client.get("/queue")).json())["queue_running"]):
        assert asyncio.get_running_loop().time() < deadline, "nothing started running"
        await asyncio.sleep(0.005)
    return items[0]
