"""One ordinary node of each imported real pack (build/real_packs, never committed) runs in a workflow on the
demo model, its result checked against what the node is documented to do, computed here with torch.

The packs load as a custom_nodes folder in this process; torchvision, which several import at module
level and which cannot be installed beside this CPU torch, is the test-only stand-in for the duration.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
from PIL import Image

from sigmagraph.compat import state
from sigmagraph.engine.testing import output, run

from .conftest import REAL_PACKS, REPO, real_packs_session

PACKS = ("ComfyUI_essentials", "ComfyUI-KJNodes", "rgthree-comfy", "was-node-suite-comfyui", "ComfyUI-Inspire-Pack",
         "ComfyUI-Custom-Scripts", "ComfyUI_Comfyroll_CustomNodes", "ComfyUI_UltimateSDUpscale")
STANDIN = str(REPO / "tests" / "compat" / "torchvision_standin")
pytestmark = pytest.mark.skipif(not all((REAL_PACKS / pack).is_dir() for pack in PACKS),
                                reason="build/real_packs (real ComfyUI packs, never committed) is absent")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    previous, had_torchvision = state.config(), "torchvision" in sys.modules
    sys.path.insert(0, STANDIN)
    session = real_packs_session(tmp_path_factory.mktemp("real_pack_nodes"), PACKS)
    assert not [p for p in session.registry.problems if p.node is None], session.registry.problems
    yield session
    state.activate(previous)
    sys.path.remove(STANDIN)
    if not had_torchvision:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]


DEMO = {
    "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sigmagraph-demo.safetensors"}},
    "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a large red star on a blue background",
                                                       "clip": ["ckpt", 1]}},
    "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "a green circle", "clip": ["ckpt", 1]}},
    "empty": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["ckpt", 1]}},
    "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    "sample": {"class_type": "KSampler", "inputs": {
        "model": ["ckpt", 0], "seed": 7, "steps": 4, "cfg": 4.0, "sampler_name": "euler", "scheduler": "karras",
        "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0], "denoise": 1.0}},
    "image": {"class_type": "VAEDecode", "inputs": {"samples": ["sample", 0], "vae": ["ckpt", 2]}},
}


def results(session: Session, nodes: dict, *wanted: str) -> list:
    """The first output of each wanted node after one run of DEMO plus `nodes`."""
    shown = {f"show_{n}": {"class_type": "PreviewAny", "inputs": {"source": [n, 0]}} for n in wanted}
    result = run(session, {**DEMO, **nodes, **shown})
    return [output(session, result, n) for n in wanted]


def test_image_nodes_of_four_packs_transform_the_demo_picture(session):
    flip, joined, cropped, was_flip, image = results(session, {
        "flip": {"class_type": "ImageFlip+", "inputs": {"image": ["image", 0], "axis": "x"}},
        "joined": {"class_type": "ImageConcanate", "inputs": {  # a V3 node of KJNodes
            "image1": ["image", 0], "image2": ["flip", 0], "direction": "right", "match_image_size": False}},
        "cropped": {"class_type": "Image Inset Crop (rgthree)", "inputs": {
            "image": ["image", 0], "measurement": "Pixels", "left": 8, "right": 16, "top": 0, "bottom": 8}},
        "was_flip": {"class_type": "Image Flip", "inputs": {"images": ["image", 0], "mode": "vertical"}},
    }, "flip", "joined", "cropped", "was_flip", "image")
    assert image.shape == (1, 64, 64, 3)
    torch.testing.assert_close(flip, image.flip(2))
    torch.testing.assert_close(joined, torch.cat((image, image.flip(2)), dim=2))
    torch.testing.assert_close(cropped, image[:, 0:56, 8:48])
    quantised = (image * 255).clamp(0, 255).to(torch.uint8).float() / 255  # WAS goes through PIL
    torch.testing.assert_close(was_flip, quantised.flip(1))


def test_comfyroll_sepia_tint(session):
    tinted, image = results(session, {"tint": {"class_type": "CR Color Tint", "inputs": {
        "image": ["image", 0], "strength": 1.0, "mode": "sepia"}}}, "tint", "image")
    luma = (image * torch.tensor([0.2989, 0.5870, 0.1140])).sum(-1, keepdim=True)  # Rec. 601
    torch.testing.assert_close(tinted, luma * torch.tensor([1.0, 0.8, 0.6]))


def quantised(image: torch.Tensor) -> torch.Tensor:
    """An IMAGE through 8-bit PIL and back, truncating as ComfyUI's (and USDU's) conversions do."""
    return (image * 255).clamp(0, 255).to(torch.uint8).float() / 255


def test_ultimate_sd_upscale_redraws_each_tile_as_img2img(session):
    sampling = {"seed": 3, "steps": 4, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5}
    tiles = {"wide": {"class_type": "ImageConcanate", "inputs": {
                 "image1": ["image", 0], "image2": ["image", 0], "direction": "right", "match_image_size": False}},
             "usdu": {"class_type": "UltimateSDUpscaleNoUpscale", "inputs": {
                 "upscaled_image": ["wide", 0], "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0],
                 "vae": ["ckpt", 2], **sampling, "mode_type": "Linear", "tile_width": 64, "tile_height": 64,
                 "mask_blur": 0, "tile_padding": 0, "seam_fix_mode": "None", "seam_fix_denoise": 1.0,
                 "seam_fix_width": 64, "seam_fix_mask_blur": 8, "seam_fix_padding": 16, "force_uniform_tiles": True,
                 "tiled_decode": False, "batch_size": 1}}}
    redrawn, image = results(session, tiles, "usdu", "image")
    assert redrawn.shape == (1, 64, 128, 3)
    # Each 64x64 tile (two copies of the picture side by side, no padding or blur) is the picture's own
    # img2img at the same seed, through USDU's 8-bit PIL conversions: LoadImage of the 8-bit picture.
    folder = session.config.input_dir
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray((quantised(image)[0] * 255).round().to(torch.uint8).numpy()).save(folder / "tile.png")
    img2img = {"load": {"class_type": "LoadImage", "inputs": {"image": "tile.png"}},
               "encoded": {"class_type": "VAEEncode", "inputs": {"pixels": ["load", 0], "vae": ["ckpt", 2]}},
               "redo": {"class_type": "KSampler", "inputs": {
                   "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0],
                   "latent_image": ["encoded", 0], **sampling}},
               "redone": {"class_type": "VAEDecode", "inputs": {"samples": ["redo", 0], "vae": ["ckpt", 2]}}}
    (reference,) = results(session, img2img, "redone")
    for half in (redrawn[:, :, :64], redrawn[:, :, 64:]):
        assert (half - quantised(reference)).abs().max() <= 1.5 / 255


def test_custom_scripts_math_expression(session):
    size, value = results(session, {
        "size": {"class_type": "GetImageSize", "inputs": {"image": ["image", 0]}},
        "math": {"class_type": "MathExpression|pysssss", "inputs": {"expression": "a * 2 + 3 ** 2",
                                                                   "a": ["size", 0]}},
    }, "size", "math")
    assert size == 64 and value == 64 * 2 + 9


def test_inspire_scheduled_perp_neg_guider_at_a_constant_scale_is_perp_neg(session):
    common = {
        "sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["ckpt", 0], "scheduler": "karras",
                                                              "steps": 4, "denoise": 1.0}},
        "noise": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
        "euler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    }
    guiders = {
        "inspire": {"class_type": "ScheduledPerpNegCFGGuider //Inspire", "inputs": {
            "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "empty_conditioning": ["empty", 0],
            "neg_scale": 0.7, "sigmas": ["sigmas", 0], "from_cfg": 4.0, "to_cfg": 4.0, "schedule": "linear"}},
        "builtin": {"class_type": "PerpNegGuider", "inputs": {
            "model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "empty_conditioning": ["empty", 0],
            "cfg": 4.0, "neg_scale": 0.7}},
    }
    samples = {f"run_{name}": {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["noise", 0], "guider": [name, 0], "sampler": ["euler", 0], "sigmas": ["sigmas", 0],
        "latent_image": ["latent", 0]}} for name in guiders}
    theirs, ours, plain = results(session, {**common, **guiders, **samples}, "run_inspire", "run_builtin", "sample")
    torch.testing.assert_close(theirs["samples"], ours["samples"], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(ours["samples"], plain["samples"], atol=1e-3)  # Perp-Neg is not plain CFG here
    assert math.isfinite(float(ours["samples"].abs().max()))
