"""Live sampling previews reach the client that queued the prompt as ComfyUI's binary frames."""

from __future__ import annotations

import asyncio
import json
import struct
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image

from sigmagraph.engine.server import ServerOptions, create_app
from sigmagraph.engine.server.previews import preview_image
from sigmagraph.nodes.demo.generate import txt2img_workflow

PREVIEW_IMAGE, JPEG = 1, 1  # ComfyUI's BinaryEventTypes.PREVIEW_IMAGE and its JPEG image type
STEPS = 4


def test_a_sampler_preview_tensor_becomes_the_first_picture_truncated_to_8_bits():
    values = torch.rand(2, 5, 7, 3, generator=torch.Generator().manual_seed(0))
    values[0, 0, 0] = torch.tensor([1.2, -0.1, 0.999])  # out of range: clipped, then truncated
    picture = np.asarray(preview_image(values))
    expected = np.floor(np.clip(values[0].numpy() * 255.0, 0, 255)).astype(np.uint8)
    assert picture.shape == (5, 7, 3) and np.array_equal(picture, expected)
    assert tuple(picture[0, 0]) == (255, 0, 254)
    assert preview_image(values[1]).size == (7, 5)  # [H, W, 3] alone, as PIL's (width, height)
    pil = Image.new("RGB", (3, 3))
    assert preview_image(pil) is pil and preview_image("not a picture") is None
    assert preview_image(torch.zeros(1, 4, 4, 4)) is None  # a latent, not RGB


def split_frame(frame: bytes) -> tuple[int, int, Image.Image]:
    """ComfyUI's preview frame: event type and image type (4-byte big-endian each), then the image."""
    event, kind = struct.unpack(">II", frame[:8])
    return event, kind, Image.open(BytesIO(frame[8:]))


async def collect(ws, prompt_id: str) -> tuple[list[bytes], list[dict]]:
    """Binary frames and JSON events until the prompt's `executing null`."""
    frames, events = [], []
    async for message in ws:
        if isinstance(message.data, bytes):
            frames.append(message.data)
            continue
        event = json.loads(message.data)
        events.append(event)
        if event["type"] == "executing" and event["data"]["node"] is None and event["data"]["prompt_id"] == prompt_id:
            return frames, events
    raise AssertionError("the websocket closed before the prompt finished")


@pytest.mark.asyncio
async def test_previews_of_a_demo_model_run_reach_only_the_client_that_queued_it(aiohttp_client, builtin_session,
                                                                                   tmp_path):
    options = ServerOptions(web_root=None, workflows_dir=None, preview_interval=0.0)  # every preview the sampler sends
    client = await aiohttp_client(create_app(builtin_session.config, builtin_session, options))
    mine, other = await client.ws_connect("/ws?clientId=mine"), await client.ws_connect("/ws?clientId=other")
    for ws in (mine, other):
        assert json.loads((await ws.receive()).data)["type"] == "status"
    workflow = txt2img_workflow("a red circle", seed=3, batch=2, steps=STEPS)
    answer = await (await client.post("/prompt", json={"prompt": workflow, "client_id": "mine"})).json()
    frames, events = await collect(mine, answer["prompt_id"])

    progress = [e["data"]["value"] for e in events if e["type"] == "progress" and e["data"]["node"] == "5"]
    assert progress == list(range(1, STEPS + 1))
    assert 1 <= len(frames) <= STEPS  # the sampler previews at most every step, and always the last one
    width, height = workflow["4"]["inputs"]["width"], workflow["4"]["inputs"]["height"]
    for frame in frames:
        event, kind, picture = split_frame(frame)
        assert (event, kind, picture.format) == (PREVIEW_IMAGE, JPEG, "JPEG")
        # the latent's grid (the demo model's VAE scales by 8 on each side), one picture of the batch
        assert picture.size == (width // 8, height // 8) and picture.mode == "RGB"
    heard = await drain(other)
    assert not [m for m in heard if isinstance(m, bytes)]  # no preview for a client that did not queue it
    assert all(json.loads(m)["type"] == "status" for m in heard)  # only the queue's broadcasts
    await mine.close()
    await other.close()


async def drain(ws, quiet: float = 0.3) -> list[str | bytes]:
    """What a websocket received, until it stays quiet for `quiet` seconds."""
    heard = []
    while True:
        try:
            heard.append((await ws.receive(timeout=quiet)).data)
        except asyncio.TimeoutError:
            return heard
