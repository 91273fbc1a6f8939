"""A live `sigmagraph serve` on 127.0.0.1, driven the way ComfyUI's websocket API example does it."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from .conftest import picture

HERE = Path(__file__).parent
STARTUP_TIMEOUT = 60.0


def start_server(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, "queue.Queue[str]"]:
    """`sigmagraph serve --port 0 ...` with the test packs as custom nodes; its stdout lines in a queue."""
    packs = tmp_path / "custom_nodes"
    packs.mkdir(exist_ok=True)
    shutil.copy(HERE.parent / "engine" / "testing_pack.py", packs / "testing_pack.py")
    shutil.copy(HERE / "server_pack.py", packs / "server_pack.py")
    command = [sys.executable, "-m", "sigmagraph.engine.cli", "serve", "--custom-nodes-dir", str(packs),
               "--models-dir", str(tmp_path / "models"), "--output-dir", str(tmp_path / "output"),
               "--input-dir", str(tmp_path / "input"), "--cpu", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                               env={**os.environ, "TMPDIR": str(tmp_path)})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    return process, lines


def wait_for_line(lines: "queue.Queue[str]", text: str) -> str:
    seen = []
    while True:
        try:
            line = lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no line with {text!r}; output so far: {seen}") from None
        seen.append(line)
        if text in line:
            return line


@pytest.fixture
def live_server(tmp_path):
    process, lines = start_server(tmp_path, "--port", "0")
    url = wait_for_line(lines, "Sigmagraph server on http://127.0.0.1:").split(" on ")[1].strip()
    yield urllib.parse.urlsplit(url).netloc, process, lines
    if process.poll() is None:
        process.kill()
        process.wait()


# The client, as ComfyUI's script_examples/websockets_api_example.py structures it.

def queue_prompt(server_address: str, prompt: dict, client_id: str) -> dict:
    data = json.dumps({"prompt": prompt, "client_id": client_id}).encode("utf-8")
    request = urllib.request.Request(f"http://{server_address}/prompt", data=data)
    return json.loads(urllib.request.urlopen(request).read())


def get_image(server_address: str, filename: str, subfolder: str, folder_type: str) -> bytes:
    query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
    with urllib.request.urlopen(f"http://{server_address}/view?{query}") as response:
        return response.read()


def get_history(server_address: str, prompt_id: str) -> dict:
    with urllib.request.urlopen(f"http://{server_address}/history/{prompt_id}") as response:
        return json.loads(response.read())


async def get_images(ws: aiohttp.ClientWebSocketResponse, server_address: str, prompt: dict,
                     client_id: str) -> dict[str, list[bytes]]:
    prompt_id = queue_prompt(server_address, prompt, client_id)["prompt_id"]
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            event = json.loads(message.data)
            if event["type"] == "executing" and event["data"]["node"] is None \
                    and event["data"]["prompt_id"] == prompt_id:
                break  # execution is done
        # binary frames are previews
    history = get_history(server_address, prompt_id)[prompt_id]
    output_images = {}
    for node_id, node_output in history["outputs"].items():
        if "images" in node_output:
            output_images[node_id] = [get_image(server_address, image["filename"], image["subfolder"], image["type"])
                                      for image in node_output["images"]]
    return output_images


async def _run_example(server_address: str, prompt: dict) -> dict[str, list[bytes]]:
    client_id = str(uuid.uuid4())
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{server_address}/ws?clientId={client_id}") as ws:
            return await get_images(ws, server_address, prompt, client_id)


def test_websocket_api_example_against_a_live_server(live_server, tmp_path):
    server_address, process, _ = live_server
    images = asyncio.run(_run_example(server_address, picture(value=42, steps=3)))
    assert list(images) == ["2"] and len(images["2"]) == 1
    image = Image.open(BytesIO(images["2"][0]))
    assert image.format == "PNG" and image.size == (16, 16) and image.getpixel((0, 0)) == (42, 42, 42)
    assert (tmp_path / "output" / "pic_00001_.png").is_file()
    # the editor's default workflow, fetched as the editor does, runs on the built-in nodes
    names = json.loads(urllib.request.urlopen(f"http://{server_address}/workflows").read())
    assert "default.json" in names
    default = json.loads(urllib.request.urlopen(f"http://{server_address}/workflows/default.json").read())
    outputs = asyncio.run(_run_example(server_address, default))
    assert outputs and all(Image.open(BytesIO(data)).format == "PNG" for images in outputs.values() for data in images)
    stats = json.loads(urllib.request.urlopen(f"http://{server_address}/system_stats").read())
    assert stats["devices"][0]["type"] == "cpu" and isinstance(stats["node_pack_problems"], list)

    process.send_signal(signal.SIGTERM)  # a clean stop: the worker and the websockets are shut down
    assert process.wait(timeout=30) == 0


def test_serve_reports_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process, lines = start_server(tmp_path, "--port", str(taken.getsockname()[1]))
        assert process.wait(timeout=STARTUP_TIMEOUT) == 1
        assert "cannot listen on 127.0.0.1" in wait_for_line(lines, "cannot listen")
