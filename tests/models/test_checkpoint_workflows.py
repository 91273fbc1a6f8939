"""The default txt2img workflow, headless, on random checkpoints in SD 1.5's (full size) and SDXL's layouts."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from conftest import default_workflow, folders
from sigmagraph.engine import Session
from sigmagraph.nodes.models.checkpoint import open_checkpoint
from sigmagraph.nodes.models.detection import detect
from sigmagraph.nodes.models.devices import compute_device
from sigmagraph.nodes.models.lora import diffusers_unet_blocks, diffusers_unet_name
from sigmagraph.nodes.models.manager import manager_for
from sigmagraph.nodes.models.unet import SDXL_UNET


def memory_mb(field: str) -> int:
    """VmRSS or VmHWM of this process in MiB (Linux)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[field].split()[0]) // 1024


def reset_peak_memory() -> bool:
    """Resets VmHWM to the current RSS; False where the kernel does not offer it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run(session: Session, workflow: dict):
    events = []
    result = session.run(workflow, on_event=lambda event, data: events.append((event, data)),
                         extra_data={"extra_pnginfo": {"workflow": {"nodes": [], "note": "ui format"}}})
    assert result.ok, result.error and result.error["exception_message"]
    return result, events


def saved_image(session: Session, result, node: str = "9") -> Image.Image:
    entry = result.ui_outputs[node]["images"][0]
    return Image.open(session.config.output_dir / entry["subfolder"] / entry["filename"])


def test_default_workflow_on_random_sd15(random_models, tmp_path, one_thread):
    name = random_models.checkpoint("sd15")
    with open_checkpoint(random_models.root / "checkpoints" / name) as checkpoint:
        family, unet_config, prefix = detect(checkpoint)
        parameters = sum(torch.Size(checkpoint.shape(key)).numel() for key in checkpoint.keys())
    assert (family.name, prefix, unet_config.model_channels) == ("SD1.x", "model.diffusion_model.", 320)

    session = Session(folders(random_models.root, tmp_path))
    workflow = default_workflow(session, name)
    measured = reset_peak_memory()
    before = memory_mb("VmRSS")
    result, events = run(session, workflow)
    peak = memory_mb("VmHWM") - before

    with saved_image(session, result) as image:
        assert image.size == (64, 64)
        assert json.loads(image.text["prompt"])["4"]["inputs"]["ckpt_name"] == name
        assert json.loads(image.text["workflow"])["note"] == "ui format"
        assert np.asarray(image).std() > 0  # an image, not a constant
    assert [data["value"] for event, data in events if event == "progress" and data["node"] == "3"] == [1, 2]
    if measured:
        # fp16 on disk, fp32 in memory: the peak is the model plus little (one tensor, activations of 64x64).
        model_mb = parameters * 4 / 2**20
        assert peak < model_mb * 1.08 + 300, f"peak RSS grew {peak} MiB while loading a {model_mb:.0f} MiB model"


def lora_for(unet_config, path: Path, rank: int = 4, seed: int = 0) -> None:
    """A kohya-named LoRA on every attention projection of a UNet config, written to `path`."""
    generator = torch.Generator().manual_seed(seed)
    blocks = diffusers_unet_blocks(unet_config)
    tensors = {}
    width = unet_config.model_channels * unet_config.channel_mult[1]
    for index in (4, 5):  # the two input blocks of the second level
        for layer in ("attn1.to_q", "attn1.to_v", "attn2.to_q"):
            name = diffusers_unet_name(f"input_blocks.{index}.1.transformer_blocks.0.{layer}", blocks)
            key = "lora_unet_" + name.replace(".", "_")
            tensors[key + ".lora_up.weight"] = torch.randn(width, rank, generator=generator).half()
            tensors[key + ".lora_down.weight"] = torch.randn(rank, width, generator=generator).half()
            tensors[key + ".alpha"] = torch.tensor(float(rank))
    save_file(tensors, str(path))


def test_default_workflow_on_reduced_sdxl_with_lora_and_cache_release(random_models, tmp_path, one_thread):
    name = random_models.checkpoint("sdxl-small")
    with open_checkpoint(random_models.root / "checkpoints" / name) as checkpoint:
        family, unet_config, _ = detect(checkpoint)
        # bigG is stored in OpenCLIP's layout, as in SDXL's release.
        assert any(key.startswith("conditioner.embedders.1.model.transformer.resblocks.") for key in checkpoint.keys())
    assert family.name == "SDXL" and unet_config.transformer_depth == SDXL_UNET.transformer_depth
    config = folders(random_models.root, tmp_path)
    (config.models_dir / "loras").mkdir(exist_ok=True)
    lora_for(unet_config, config.models_dir / "loras" / "sdxl-test-lora.safetensors")

    session = Session(config)
    base = default_workflow(session, name)
    base["6"] = {"class_type": "CLIPTextEncodeSDXL", "inputs": {
        "clip": ["4", 1], "width": 1024, "height": 1024, "crop_w": 0, "crop_h": 0, "target_width": 1024,
        "target_height": 1024, "text_g": "a lighthouse at dusk", "text_l": "oil painting, " * 40}}
    with_lora = json.loads(json.dumps(base))
    with_lora["10"] = {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                                              "lora_name": "sdxl-test-lora.safetensors",
                                                              "strength_model": 1.0, "strength_clip": 1.0}}
    with_lora["3"]["inputs"]["model"] = ["10", 0]
    without_effect = json.loads(json.dumps(with_lora))
    without_effect["10"]["inputs"]["strength_model"] = 0.0

    gc.collect()
    manager = manager_for(compute_device(config.device))
    earlier = {id(module) for module in manager.loaded()}
    images = []
    for workflow in (base, with_lora, without_effect):
        result, _ = run(session, workflow)
        with saved_image(session, result) as image:
            images.append(image.tobytes())
    assert images[1] != images[0]  # the LoRA changes the UNet ...
    assert images[2] == images[0]  # ... and, used after it, the cached base model is the original again

    # Models live as long as the engine's cache holds them.
    managed = [weakref.ref(module) for module in manager.loaded() if id(module) not in earlier]
    assert managed and session.executor.cache.nbytes > 300e6  # the cache counts the models' weights
    session.executor.cache.clear()
    del result
    gc.collect()
    assert all(ref() is None for ref in managed)
