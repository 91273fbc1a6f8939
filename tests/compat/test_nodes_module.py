"""ComfyUI's `nodes` and `comfy_extras.nodes_*` as served by compat: core classes, direct calls, subclassing packs."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sigmagraph import compat
from sigmagraph.compat import state
from sigmagraph.engine import RunContext, Session
from sigmagraph.engine.context import InterruptFlag
from sigmagraph.engine.discovery import import_pack_path, load_packs
from sigmagraph.engine.testing import run

compat.install()

import comfy_extras.nodes_align_your_steps as nodes_align_your_steps  # noqa: E402
import comfy_extras.nodes_custom_sampler as nodes_custom_sampler  # noqa: E402
import comfy_extras.nodes_mask as nodes_mask  # noqa: E402
import nodes  # noqa: E402

CLASSIC_PACK = Path(__file__).with_name("packs") / "classic_pack"

# ComfyUI's method of each class (its nodes.py and comfy_extras), arguments in ComfyUI's order.
COMFY_METHODS = {
    (nodes, "VAEDecode"): ("decode", ["vae", "samples"]),
    (nodes, "VAEEncode"): ("encode", ["vae", "pixels"]),
    (nodes, "CLIPTextEncode"): ("encode", ["clip", "text"]),
    (nodes, "KSampler"): ("sample", ["model", "seed", "steps", "cfg", "sampler_name", "scheduler", "positive",
                                     "negative", "latent_image", "denoise"]),
    (nodes, "LoraLoader"): ("load_lora", ["model", "clip", "lora_name", "strength_model", "strength_clip"]),
    (nodes, "EmptyLatentImage"): ("generate", ["width", "height", "batch_size"]),
    (nodes, "CheckpointLoaderSimple"): ("load_checkpoint", ["ckpt_name"]),
    (nodes, "SaveImage"): ("save_images", ["images", "filename_prefix", "prompt", "extra_pnginfo"]),
    (nodes, "PreviewImage"): ("save_images", ["images", "filename_prefix", "prompt", "extra_pnginfo"]),
    (nodes_custom_sampler, "SamplerCustom"): ("sample", ["model", "add_noise", "noise_seed", "cfg", "positive",
                                                         "negative", "sampler", "sigmas", "latent_image"]),
    (nodes_custom_sampler, "BasicScheduler"): ("get_sigmas", ["model", "scheduler", "steps", "denoise"]),
    (nodes_custom_sampler, "BasicGuider"): ("get_guider", ["model", "conditioning"]),
    (nodes_mask, "SolidMask"): ("solid", ["value", "width", "height"]),
}


def png_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def classic_pack(config):
    """The fixture pack, imported as the engine imports a custom_nodes folder."""
    return import_pack_path(CLASSIC_PACK)


@pytest.fixture
def analytic(config):
    """An exact Gaussian-mixture MODEL, its empty CONDITIONING and a 64x64 noisy-free latent, through the classes."""
    model = nodes.NODE_CLASS_MAPPINGS["GaussianMixtureModel"]().run(seed=3)[0]
    cond = nodes.NODE_CLASS_MAPPINGS["NoConditioning"]().run()[0]
    latent = nodes.EmptyLatentImage().generate(64, 64, 1)[0]
    return model, cond, latent


def test_core_classes_have_comfyuis_functions_and_argument_order():
    for (module, name), (function, arguments) in COMFY_METHODS.items():
        cls = getattr(module, name)
        assert cls.FUNCTION == function, name
        assert list(inspect.signature(getattr(cls, function)).parameters)[1:] == arguments, name
    assert inspect.signature(nodes.KSampler.sample).parameters["denoise"].default == 1.0
    assert nodes.NODE_CLASS_MAPPINGS["SamplerCustom"] is nodes_custom_sampler.SamplerCustom


def test_input_types_are_the_catalogues_without_the_run_context(config):
    assert nodes.SaveImage.INPUT_TYPES()["hidden"] == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert "hidden" not in nodes.KSampler.INPUT_TYPES()
    assert nodes.VAEDecode.INPUT_TYPES() == {"required": {"samples": ["LATENT"], "vae": ["VAE"]}}
    assert nodes.EmptyLatentImage.RETURN_TYPES == ("LATENT",) and nodes.SaveImage.OUTPUT_NODE
    assert nodes.NODE_DISPLAY_NAME_MAPPINGS["CheckpointLoaderSimple"] == "Load Checkpoint"


def test_empty_latent_image_generate():
    out = nodes.EmptyLatentImage().generate(512, 512, 1)
    assert isinstance(out, tuple) and len(out) == 1
    assert torch.equal(out[0]["samples"], torch.zeros(1, 4, 64, 64))


def test_a_subclass_of_save_image_writes_pngs_under_the_output_folder(config, classic_pack):
    image = torch.zeros(1, 4, 6, 3)
    image[..., 0] = 0.5
    image[..., 1] = 1.0
    prompt = {"1": {"class_type": "SaveImage", "inputs": {}}}
    out = classic_pack.SaveWithSuffix().save_images(image, "shots/img", prompt, {"workflow": {"nodes": []}})
    assert out == {"ui": {"images": [{"filename": "img_fixture_00001_.png", "subfolder": "shots", "type": "output"}]}}
    path = config.output_dir / "shots" / "img_fixture_00001_.png"
    assert png_pixels(path)[0, 0].tolist() == [127, 255, 0]  # 8 bits by truncation: floor(0.5 * 255) = 127
    with Image.open(path) as png:
        assert json.loads(png.text["prompt"]) == prompt and json.loads(png.text["workflow"]) == {"nodes": []}
    again = classic_pack.SaveWithSuffix().save_images(image, "shots/img")
    assert again["ui"]["images"][0]["filename"] == "img_fixture_00002_.png"  # never overwrites


def test_preview_subclasses_write_into_the_temporary_folder(config, classic_pack):
    mask = torch.ones(1, 5, 5)
    out = classic_pack.MaskPreview().execute(mask)
    (entry,) = out["ui"]["images"]
    assert entry["type"] == "temp" and entry["filename"].startswith("ComfyUI_temp_")
    assert png_pixels(config.temp_dir / entry["filename"]).min() == 255
    assert nodes.PreviewImage().save_images(torch.zeros(1, 2, 2, 3))["ui"]["images"][0]["type"] == "temp"


def test_a_pack_subclassing_core_nodes_runs_in_a_workflow(config, classic_pack):
    registry = load_packs(config)
    registry.load_module(classic_pack, "classic_pack")
    assert not [p for p in registry.problems if p.pack == "classic_pack"]
    workflow = {"1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}},
                "2": {"class_type": "FixtureMaskPreview", "inputs": {"mask": ["1", 0]}},
                "3": {"class_type": "FixtureBlankLatent", "inputs": {"size": 64}},
                "4": {"class_type": "SaveLatent", "inputs": {"samples": ["3", 0], "filename_prefix": "lat"}}}
    result = run(Session(config, registry), workflow)
    (entry,) = result.ui_outputs["2"]["images"]
    assert entry["type"] == "temp" and (config.temp_dir / entry["filename"]).is_file()
    assert (config.output_dir / "lat_00001_.latent").is_file()


def test_direct_calls_outside_a_run_use_the_active_config(config):
    pixels = np.array([[[0, 128, 255], [10, 20, 30]]], dtype=np.uint8)
    config.input_dir.mkdir(parents=True)
    Image.fromarray(pixels).save(config.input_dir / "tiny.png")
    image, mask = nodes.LoadImage().load_image("tiny.png")
    assert torch.allclose(image[0], torch.from_numpy(pixels / 255.0).float()) and mask.shape == (1, 64, 64)
    digest = hashlib.sha256((config.input_dir / "tiny.png").read_bytes()).hexdigest()
    assert nodes.LoadImage.IS_CHANGED(image="tiny.png") == digest


def test_sampling_through_the_classes_reports_progress(analytic):
    model, cond, latent = analytic
    events = []
    ctx = RunContext(state.config(), "p", "8", lambda event, data: events.append((event, data)), InterruptFlag())
    with state.running(ctx):
        (out,) = nodes.KSampler().sample(model, 1, 4, 1.0, "euler", "normal", cond, cond, latent)
    assert out["samples"].shape == (1, 4, 8, 8) and torch.isfinite(out["samples"]).all()
    assert [data["value"] for event, data in events if event == "progress"] == [1, 2, 3, 4]


def test_common_ksampler_runs_as_comfyuis(analytic):
    model, cond, latent = analytic
    args = (model, 11, 6, 1.0, "euler", "karras", cond, cond)
    whole = nodes.common_ksampler(*args, latent)[0]["samples"]
    ranged = nodes.common_ksampler(*args, latent, start_step=0, last_step=6)[0]["samples"]
    assert torch.allclose(ranged, whole, atol=1e-5)  # the whole range is the plain run
    # A deterministic sampler split in two (leftover noise kept, none added after) is the whole run.
    first = nodes.common_ksampler(*args, latent, last_step=2)[0]
    second = nodes.common_ksampler(*args, first, disable_noise=True, start_step=2)[0]["samples"]
    assert torch.allclose(second, whole, atol=1e-4)
    # denoise < 1 with a step range: the range counts in the shortened schedule, as without one.
    noisy = {"samples": torch.randn(1, 4, 8, 8, generator=torch.manual_seed(0))}
    partial = nodes.common_ksampler(*args, noisy, denoise=0.5)[0]["samples"]
    partial_ranged = nodes.common_ksampler(*args, noisy, denoise=0.5, start_step=0, last_step=6)[0]["samples"]
    assert torch.allclose(partial_ranged, partial, atol=1e-5)


def test_noise_objects_draw_comfyuis_noise():
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    expected = torch.randn((1, 4, 8, 8), generator=torch.manual_seed(5), dtype=torch.float32)
    assert torch.equal(nodes_custom_sampler.Noise_RandomNoise(5).generate_noise(latent), expected)
    assert torch.equal(nodes_custom_sampler.Noise_EmptyNoise().generate_noise(latent), torch.zeros(1, 4, 8, 8))


def test_composite_pastes_with_offsets_masks_and_clipping():
    destination = torch.zeros(1, 1, 4, 4)
    nodes_mask.composite(destination, torch.ones(1, 1, 2, 2), 8, 8)  # latent units: 8 pixels per element
    assert destination[0, 0].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    clipped = nodes_mask.composite(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 2, 2), -8, 8)
    assert clipped[0, 0].nonzero().tolist() == [[1, 0], [2, 0]]
    blended = nodes_mask.composite(torch.zeros(2, 3, 3, 3), torch.ones(1, 3, 3, 3), 0, 0,
                                   mask=torch.full((3, 3), 0.25), multiplier=1)
    assert torch.allclose(blended, torch.full((2, 3, 3, 3), 0.25))


def test_align_your_steps_interpolation_matches_comfyuis_formula():
    levels = nodes_align_your_steps.NOISE_LEVELS["SD1"]
    ours = nodes_align_your_steps.loglinear_interp(levels, 16)
    xs, new_xs = np.linspace(0, 1, len(levels)), np.linspace(0, 1, 16)
    reference = np.exp(np.interp(new_xs, xs, np.log(levels[::-1])))[::-1]
    assert np.allclose(ours, reference)


def test_get_module_name(tmp_path):
    (tmp_path / "my_pack.py").write_text("")
    assert nodes.get_module_name(str(tmp_path / "my_pack.py")) == "my_pack"
    assert nodes.get_module_name(str(tmp_path / "other_pack") + "/") == "other_pack"
