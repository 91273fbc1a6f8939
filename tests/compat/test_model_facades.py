"""Upscale and CLIP vision models through ComfyUI's modules, as WAS, Comfyroll and UltimateSDUpscale use them.

The fixture pack packs/model_pack loads an upscale model with old ComfyUI's chainner loader, tiles
it itself, hands it to the core ImageUpscaleWithModel, and encodes images with a CLIP vision
model. Expected values come from the built-in nodes on the same files (tests/models checks those
against spandrel and transformers).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sigmagraph.compat import state
from sigmagraph.engine import Config, Session
from sigmagraph.engine.discovery import load_packs
from sigmagraph.nodes.models import clip_vision
from sigmagraph.nodes.models.clip_vision import VIT_L14, CLIPVisionModel
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.upscaler import RRDBConfig, RRDBNet

from .test_pack_loading import forget_packs

PACK = Path(__file__).parent / "packs" / "model_pack"
TINY_VISION = replace(VIT_L14, width=32, heads=4, layers=3, mlp_width=64, patch_size=7, image_size=28,
                      projection_dim=16)


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A Config whose folders hold a random x2 RRDBNet (ESRGAN's layout), a tiny vision tower, an image and the pack."""
    monkeypatch.setitem(clip_vision.PRESETS, 32, TINY_VISION)
    config = Config(models_dir=tmp_path / "models", output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                    temp_dir=tmp_path / "temp", device="cpu", custom_nodes_dirs=(tmp_path / "custom_nodes",))
    shutil.copytree(PACK, tmp_path / "custom_nodes" / "model_pack", ignore=shutil.ignore_patterns("__pycache__"))
    upscaler = init_random_(empty_module(RRDBNet, RRDBConfig(features=8, growth=8, blocks=1, upsamplings=1)), 0)
    (config.models_dir / "upscale_models").mkdir(parents=True)
    # basicsr names its upsampling convs conv_up1, conv_up2...: the loader converts them.
    save_file({key.replace("conv_up.0", "conv_up1"): value for key, value in upscaler.state_dict().items()},
              config.models_dir / "upscale_models" / "2x.safetensors")
    tower = init_random_(empty_module(CLIPVisionModel, TINY_VISION), 1)
    (config.models_dir / "clip_vision").mkdir()
    save_file(tower.state_dict(), config.models_dir / "clip_vision" / "tiny.safetensors")
    config.input_dir.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(config.input_dir / "small.png")
    previous = state.config()
    yield config
    state.activate(previous)
    forget_packs()


def saved(config: Config, result, node: str) -> np.ndarray:
    with Image.open(config.output_dir / result.ui_outputs[node]["images"][0]["filename"]) as image:
        return np.asarray(image)


def test_pack_upscalers_match_the_builtin_node(models):
    session = Session(models, load_packs(models))
    image = {"class_type": "LoadImage", "inputs": {"image": "small.png"}}
    builtin = {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "2x.safetensors"}}
    from_weights = {"class_type": "FixtureUpscaleLoaderFromWeights", "inputs": {"model_name": "2x.safetensors"}}
    workflow = {"1": image, "2": builtin, "3": from_weights,
                "4": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
                "5": {"class_type": "FixtureTiledUpscale", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
                "6": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["3", 0], "image": ["1", 0]}},
                "7": {"class_type": "FixtureUpscaleThroughCore",
                      "inputs": {"upscale_model": ["3", 0], "image": ["1", 0]}}}
    for node in ("4", "5", "6", "7"):
        workflow[f"save{node}"] = {"class_type": "SaveImage", "inputs": {"images": [node, 0], "filename_prefix": node}}
    result = session.run(workflow)
    assert result.ok, result.error
    expected = saved(models, result, "save4")
    assert expected.shape == (40, 56, 3) and expected.std() > 1  # upscaled, not blank
    for node in ("5", "6", "7"):
        assert np.abs(saved(models, result, f"save{node}").astype(int) - expected).max() <= 1, node


def test_pack_nodes_read_and_make_clip_vision_outputs(models):
    session = Session(models, load_packs(models))
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "small.png"}},
        "2": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "tiny.safetensors"}},
        "3": {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["2", 0], "image": ["1", 0], "crop": "none"}},
        "4": {"class_type": "FixtureEncodeImage", "inputs": {"clip_vision": ["2", 0], "image": ["1", 0]}},
        "5": {"class_type": "FixtureEmbedsNorm", "inputs": {"clip_vision_output": ["3", 0]}},
        "6": {"class_type": "FixtureEmbedsNorm", "inputs": {"clip_vision_output": ["4", 0]}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": ["6", 0]}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1]}},
    }
    result = session.run(workflow)
    assert result.ok, result.error
    builtin, from_pack = (float(result.ui_outputs[node]["text"][0]) for node in ("7", "8"))
    assert builtin > 0 and from_pack == pytest.approx(builtin, rel=1e-6)
    assert float(result.ui_outputs["9"]["text"][0]) > 0


def test_comfy_clip_vision_module(models):
    state.activate(models)
    import comfy.clip_vision

    model = comfy.clip_vision.load(str(models.models_dir / "clip_vision" / "tiny.safetensors"))
    assert (model.image_size, model.model_type, model.config["projection_dim"]) == (28, "clip_vision_model", 16)
    image = torch.rand(2, 30, 40, 3, generator=torch.Generator().manual_seed(2))
    out = model.encode_image(image)
    assert out["image_embeds"].shape == (2, 16) and out.last_hidden_state.shape == (2, 17, 32)
    assert out.mm_projected is None and out.image_sizes == [torch.Size([3, 28, 28])] * 2
    # clip_preprocess with ComfyUI's defaults: CLIP's mean and std, the centre square.
    pixels = comfy.clip_vision.clip_preprocess(image, size=28)
    with torch.no_grad():
        direct = model.model(pixels)
    torch.testing.assert_close(direct.image_embeds, out.image_embeds)
    assert comfy.clip_vision.load_clipvision_from_sd({"first_stage_model.x": torch.ones(1)}) is None
    tower = model.get_sd()
    nested = {f"cond_stage_model.{key}": value for key, value in tower.items()}
    again = comfy.clip_vision.load_clipvision_from_sd(nested, prefix="cond_stage_model.", convert_keys=True)
    torch.testing.assert_close(again.encode_image(image).image_embeds, out.image_embeds)
