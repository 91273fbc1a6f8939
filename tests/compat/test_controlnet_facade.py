"""comfy.controlnet and the ControlNet nodes as packs use them (packs/controlnet_pack, written like Comfyroll's nodes).

Expected values come from the built-in nodes run on the same graph: a pack's ControlNet objects
must sample exactly as the built-in ControlNetApply/ControlNetApplyAdvanced's controls, which
tests/models/test_controlnet.py checks against diffusers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sigmagraph import compat
from sigmagraph.compat import state
from sigmagraph.engine import Session
from sigmagraph.engine.discovery import load_packs
from sigmagraph.engine.testing import output, run
from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT
from sigmagraph.nodes.models.controlnet import ControlNet, ControlNetConfig, ControlNetNetwork
from sigmagraph.nodes.models.families import DEMO, DEMO_UNET, FAMILY_MARK_KEY
from sigmagraph.nodes.models.module_init import empty_module, init_random_

from .test_pack_loading import fixture_config, forget_packs

CONTROLNET = "random_cn.safetensors"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    previous = state.config()
    config = fixture_config(tmp_path_factory.mktemp("controlnet"), ("controlnet_pack",))
    module = init_random_(empty_module(ControlNet, ControlNetConfig(DEMO_UNET)), 0)
    (config.models_dir / "controlnet").mkdir(parents=True)
    save_file({f"control_model.{k}": v.contiguous() for k, v in module.state_dict().items()},
              config.models_dir / "controlnet" / CONTROLNET, {FAMILY_MARK_KEY: DEMO.name})
    config.input_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(config.input_dir / "hint.png")
    compat.install(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small models: see tests/models/conftest.one_thread
    yield Session(config, load_packs(config))
    torch.set_num_threads(threads)
    state.activate(previous)
    forget_packs()


def graph(**apply: dict) -> dict:
    """The demo model's txt2img whose KSampler ("3") takes positive and negative from node "12" (given, or rewired)."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": DEMO_CHECKPOINT.name}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red house", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CONTROLNET}},
        "11": {"class_type": "LoadImage", "inputs": {"image": "hint.png"}},
        **apply,
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "seed": 3, "steps": 4, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["12", 0], "negative": ["12", 1], "latent_image": ["5", 0], "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }


ADVANCED = {"strength": 0.8, "start_percent": 0.2, "end_percent": 0.9}


def latent(session: Session, workflow: dict) -> torch.Tensor:
    return output(session, run(session, workflow), "3")["samples"]


def test_comfy_controlnet_loads_a_file_into_comfyuis_object(session):
    import comfy.controlnet
    assert "comfy.controlnet" in sys.modules and comfy.controlnet.__name__ == "comfy.controlnet"
    control_net = comfy.controlnet.load_controlnet(str(session.config.models_dir / "controlnet" / CONTROLNET))
    assert isinstance(control_net, comfy.controlnet.ControlBase)
    assert isinstance(control_net.network, ControlNetNetwork) and control_net.network.family is DEMO
    hint, previous = torch.zeros(1, 3, 64, 64), object()
    applied = control_net.copy().set_cond_hint(hint, 0.5, (0.1, 0.7)).set_previous_controlnet(previous)
    assert applied is not control_net and applied.network is control_net.network
    assert (applied.hint is hint, applied.strength, applied.start_percent, applied.end_percent) == (True, 0.5, 0.1, 0.7)
    assert applied.previous is previous and applied.copy().previous is None  # as ComfyUI's copy
    assert control_net.cond_hint_original is None  # the original is untouched


def test_a_pack_loading_a_file_into_the_core_apply_node_samples_as_the_built_in_nodes(session):
    native = graph(**{"12": {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net": ["10", 0], "image": ["11", 0], **ADVANCED}}})
    packed = graph(**{"12": {"class_type": "FixtureControlNetFromFile", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net_name": CONTROLNET, "image": ["11", 0], **ADVANCED}}})
    plain = graph(**{"12": {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 0.0,
        "start_percent": 0.0, "end_percent": 1.0}}})
    expected = latent(session, native)
    assert torch.equal(latent(session, packed), expected)
    assert (expected - latent(session, plain)).abs().max() > 1e-4


def test_pack_controls_stack_on_built_in_ones_and_sample_like_them(session):
    # Built-in control at 0.8 on both prompts, then the pack's objects at 0.5 on the positive: a chain of two.
    first = {"class_type": "ControlNetApplyAdvanced", "inputs": {
        "positive": ["6", 0], "negative": ["7", 0], "control_net": ["10", 0], "image": ["11", 0], **ADVANCED}}
    pack = graph(**{"13": first,
                    "14": {"class_type": "FixtureStackControlNet", "inputs": {
                        "conditioning": ["13", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 0.5}}})
    # ComfyUI's deprecated ControlNetApply stacks the same way, but also lends its control to the negative
    # prompt; give both graphs the same negative (the built-in control only) to compare them.
    pack["3"]["inputs"].update(positive=["14", 0], negative=["13", 1])
    native = graph(**{"13": first,
                      "14": {"class_type": "ControlNetApply", "inputs": {
                          "conditioning": ["13", 0], "control_net": ["10", 0], "image": ["11", 0], "strength": 0.5}}})
    native["3"]["inputs"].update(positive=["14", 0], negative=["13", 1])
    assert torch.equal(latent(session, pack), latent(session, native))
