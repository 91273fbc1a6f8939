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

from sigmagraph.compat import state
from sigmagraph.engine.testing import output, run

from .conftest import REAL_PACKS, REPO, real_packs_session

PACKS = ("ComfyUI_essentials", "ComfyUI-KJNodes", "rgthree-comfy", "was-node-suite-comfyui", "ComfyUI-Inspire-Pack",
         "ComfyUI-Custom-Scripts")
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
