"""ComfyUI's three script_examples clients against a live `sigmagraph serve`, on the demo model.

Each client is transcribed here as ComfyUI writes it (basic_api_example.py, websockets_api_example.py,
websockets_api_example_ws_images.py: the same requests, the same websocket-client calls, the same
message handling); only the server address and the checkpoint name and size of the prompt differ.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from io import BytesIO

import pytest
from PIL import Image

from .test_live import live_server  # noqa: F401 - the fixture

websocket = pytest.importorskip("websocket", reason="websocket-client (what ComfyUI's examples use) is not installed")


def prompt_text(save_node: dict) -> dict:
    """ComfyUI's example prompt (SD1.5 at 512², 20 steps) on the demo model at 64², 4 steps."""
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {
            "cfg": 8, "denoise": 1, "latent_image": ["5", 0], "model": ["4", 0], "negative": ["7", 0],
            "positive": ["6", 0], "sampler_name": "euler", "scheduler": "normal", "seed": 8566257, "steps": 4}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sigmagraph-demo.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"batch_size": 1, "height": 64, "width": 64}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "masterpiece best quality girl"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1], "text": "bad hands"}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        **save_node,
    }
    prompt["6"]["inputs"]["text"] = "masterpiece best quality man"  # as the examples then set them
    prompt["3"]["inputs"]["seed"] = 5
    return prompt


SAVE_IMAGE = {"9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}}
SAVE_WEBSOCKET = {"save_image_websocket_node": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["8", 0]}}}


def basic_api_example(server_address: str, prompt: dict) -> None:
    p = {"prompt": prompt}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request(f"http://{server_address}/prompt", data=data)
    urllib.request.urlopen(req)


def websockets_api_example(server_address: str, prompt: dict) -> dict[str, list[bytes]]:
    client_id = str(uuid.uuid4())

    def queue_prompt(prompt):
        p = {"prompt": prompt, "client_id": client_id}
        data = json.dumps(p).encode("utf-8")
        req = urllib.request.Request(f"http://{server_address}/prompt", data=data)
        return json.loads(urllib.request.urlopen(req).read())

    def get_image(filename, subfolder, folder_type):
        data = {"filename": filename, "subfolder": subfolder, "type": folder_type}
        url_values = urllib.parse.urlencode(data)
        with urllib.request.urlopen(f"http://{server_address}/view?{url_values}") as response:
            return response.read()

    def get_history(prompt_id):
        with urllib.request.urlopen(f"http://{server_address}/history/{prompt_id}") as response:
            return json.loads(response.read())

    def get_images(ws, prompt):
        prompt_id = queue_prompt(prompt)["prompt_id"]
        output_images = {}
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["node"] is None and data["prompt_id"] == prompt_id:
                        break  # Execution is done
            else:
                continue  # previews are binary data
        history = get_history(prompt_id)[prompt_id]
        for node_id in history["outputs"]:
            node_output = history["outputs"][node_id]
            images_output = []
            if "images" in node_output:
                for image in node_output["images"]:
                    image_data = get_image(image["filename"], image["subfolder"], image["type"])
                    images_output.append(image_data)
            output_images[node_id] = images_output
        return output_images

    ws = websocket.WebSocket()
    ws.connect(f"ws://{server_address}/ws?clientId={client_id}")
    images = get_images(ws, prompt)
    ws.close()
    return images


def websockets_api_example_ws_images(server_address: str, prompt: dict) -> dict[str, list[bytes]]:
    client_id = str(uuid.uuid4())

    def queue_prompt(prompt):
        p = {"prompt": prompt, "client_id": client_id}
        data = json.dumps(p).encode("utf-8")
        req = urllib.request.Request(f"http://{server_address}/api/prompt", data=data)
        return json.loads(urllib.request.urlopen(req).read())

    def get_images(ws, prompt):
        prompt_id = queue_prompt(prompt)["prompt_id"]
        output_images = {}
        current_node = ""
        while True:
            out = ws.recv()
            if isinstance(out, str):
                message = json.loads(out)
                if message["type"] == "executing":
                    data = message["data"]
                    if data["prompt_id"] == prompt_id:
                        if data["node"] is None:
                            break  # Execution is done
                        else:
                            current_node = data["node"]
            else:
                if current_node == "save_image_websocket_node":
                    images_output = output_images.get(current_node, [])
                    images_output.append(out[8:])
                    output_images[current_node] = images_output
        return output_images

    ws = websocket.WebSocket()
    ws.connect(f"ws://{server_address}/ws?clientId={client_id}")
    images = get_images(ws, prompt)
    ws.close()
    return images


def pixels(data: bytes) -> bytes:
    with Image.open(BytesIO(data)) as image:
        assert image.format == "PNG" and image.size == (64, 64)
        return image.convert("RGB").tobytes()


def test_comfyuis_three_example_clients(live_server, tmp_path):  # noqa: F811 - the fixture
    server_address, _, _ = live_server

    basic_api_example(server_address, prompt_text(SAVE_IMAGE))
    deadline = time.monotonic() + 120
    while not list((tmp_path / "output").glob("ComfyUI_*.png")):
        assert time.monotonic() < deadline, "the basic example's prompt did not finish"
        time.sleep(0.2)

    saved = websockets_api_example(server_address, prompt_text(SAVE_IMAGE))
    assert list(saved) == ["9"] and len(saved["9"]) == 1

    sent = websockets_api_example_ws_images(server_address, prompt_text(SAVE_WEBSOCKET))
    assert list(sent) == ["save_image_websocket_node"] and len(sent["save_image_websocket_node"]) == 1
    # The same prompt's picture, sent whole over the websocket instead of written to a file.
    assert pixels(sent["save_image_websocket_node"][0]) == pixels(saved["9"][0])
    # The second example's prompt equals the first's, so its SaveImage is cached (as in ComfyUI), and
    # SaveImageWebsocket writes no file: one PNG in all.
    assert len(list((tmp_path / "output").glob("*.png"))) == 1
