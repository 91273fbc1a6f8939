"""ControlNet: our module against diffusers' ControlNetModel (and UNet2DConditionModel with its residuals),
the key layouts, and the conditioning semantics (strength, start/end percent, chains), as ComfyUI has them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor

from conftest import folders
from diffusers_layout import relative_error, twin, unet_key, unet_to_diffusers
from sigmagraph.engine import Session
from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT, FLOW_DEMO_CHECKPOINT
from sigmagraph.nodes.guiders import Guider, SamplerChoice, SeededNoise
from sigmagraph.nodes.models.checkpoint import CheckpointError
from sigmagraph.nodes.models.controlnet import ControlNet, ControlNetConfig, load_controlnet
from sigmagraph.nodes.models.loading import load_checkpoint
from sigmagraph.nodes.models.families import DEMO, DEMO_UNET, FAMILY_MARK_KEY, SD1
from sigmagraph.nodes.models.manager import ModelManager
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.runtime import DiffusionNetwork
from sigmagraph.nodes.models.unet import SD1_UNET, UNetModel, label_vector
from sigmagraph.nodes.packs.controlnet import ControlNetApply, ControlNetApplyAdvanced
from sigmagraph.nodes.sampling.control import ActiveControls, Control, resized_hint, with_uncond_controls
from sigmagraph.nodes.sampling.schedules import normal_sigmas

# Small models: one thread each (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-5
CPU = torch.device("cpu")

# Tiny diffusers configs with the families' signatures (context width, projections, label width).
TINY_SD1 = dict(block_out_channels=(32, 64, 64, 64), cross_attention_dim=768, attention_head_dim=8)
TINY_SDXL = dict(block_out_channels=(64, 128), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 cross_attention_dim=2048, attention_head_dim=(1, 2), use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
TINY_SD1_UNET = replace(SD1_UNET, model_channels=32, channel_mult=(1, 2, 2, 2))
SDXL_SIZES = (64.0, 64.0, 0.0, 0.0, 64.0, 64.0)


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter random (the zero convolutions too, or they would hide mistakes)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


def diffusers_controlnet(config: dict, seed: int = 0) -> ControlNetModel:
    torch.manual_seed(seed)
    return randomized(ControlNetModel(**config), seed)


def to_original(diffusers_state: dict[str, Tensor], ours: ControlNet) -> dict[str, Tensor]:
    """The diffusers tensors under our module's names, matched through the tests' own UNet key map."""
    hint_blocks = len(ours.input_hint_block) // 2 - 1
    special = {"input_hint_block.0": "controlnet_cond_embedding.conv_in",
               f"input_hint_block.{2 * hint_blocks + 2}": "controlnet_cond_embedding.conv_out",
               "middle_block_out.0": "controlnet_mid_block"}
    special |= {f"input_hint_block.{2 * i + 2}": f"controlnet_cond_embedding.blocks.{i}" for i in range(hint_blocks)}
    special |= {f"zero_convs.{i}.0": f"controlnet_down_blocks.{i}" for i in range(len(ours.zero_convs))}
    out = {}
    for key in ours.state_dict():
        module, param = key.rsplit(".", 1)
        source = f"{special[module]}.{param}" if module in special else unet_key(key, ours.config.num_res_blocks)
        out[key] = diffusers_state[source]
    return out


def save(path: Path, state: dict[str, Tensor], metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state.items()}, path, metadata=metadata)
    return path


def inputs(batch: int = 2, size: int = 8, context: int = 768, seed: int = 1) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, size, size, generator=generator),
            torch.rand(batch, 3, 8 * size, 8 * size, generator=generator),
            torch.tensor([15.0, 640.0][:batch]), torch.randn(batch, 7, context, generator=generator))


# ----------------------------------------------------------------------------------------------
# The network against diffusers


@pytest.mark.parametrize("layout", ["diffusers", "original", "control_model"])
@torch.no_grad()
def test_sd1_controlnet_matches_diffusers_in_every_layout(layout: str, tmp_path) -> None:
    theirs = diffusers_controlnet(TINY_SD1)
    state = theirs.state_dict()
    if layout != "diffusers":
        with torch.device("meta"):
            shaped = ControlNet(ControlNetConfig(TINY_SD1_UNET))
        state = to_original(state, shaped)
        if layout == "control_model":
            state = {f"control_model.{key}": value for key, value in state.items()}
    net = load_controlnet(save(tmp_path / "cn.safetensors", state), "cn.safetensors", CPU, torch.float32)
    assert net.family is SD1

    x, hint, t, context = inputs()
    ours = net(x, hint, t, context, None)
    down, middle = theirs(x, t, context, hint, return_dict=False)
    assert len(ours["output"]) == len(down) == 12
    for a, b in zip(ours["output"], down):
        assert relative_error(a, b) <= TOLERANCE
    assert relative_error(ours["middle"][0], middle) <= TOLERANCE


@torch.no_grad()
def test_sdxl_controlnet_matches_diffusers(tmp_path) -> None:
    theirs = diffusers_controlnet(TINY_SDXL)
    net = load_controlnet(save(tmp_path / "xl.safetensors", theirs.state_dict()), "xl.safetensors", CPU,
                          torch.float32)
    assert net.family.name == "SDXL"
    x, hint, t, context = inputs(context=2048)
    pooled = torch.randn(2, 1280)
    ours = net(x, hint, t, context, label_vector(pooled, SDXL_SIZES))
    down, middle = theirs(x, t, context, hint, added_cond_kwargs={
        "text_embeds": pooled, "time_ids": torch.tensor([SDXL_SIZES] * 2)}, return_dict=False)
    for a, b in zip(ours["output"] + ours["middle"], list(down) + [middle]):
        assert relative_error(a, b) <= TOLERANCE


@torch.no_grad()
def test_unet_with_control_matches_diffusers_unet_with_the_controlnet_residuals(tmp_path) -> None:
    config = TINY_SD1_UNET
    unet = init_random_(empty_module(UNetModel, config), 3).eval()
    their_unet = twin(UNet2DConditionModel, unet_to_diffusers(unet.state_dict(), config.num_res_blocks), **TINY_SD1)
    their_controlnet = diffusers_controlnet(TINY_SD1)
    net = load_controlnet(save(tmp_path / "cn.safetensors", their_controlnet.state_dict()), "cn.safetensors", CPU,
                          torch.float32)
    manager = ModelManager(CPU)
    network = DiffusionNetwork(manager.register(unet))
    x, hint, t, context = inputs()

    # Through the MODEL's network: the control input of one entry of batch 2, strength 0.7.
    ours = network(x, t, context, control=ActiveControls((Control(net, hint, 0.7),), batch=2))
    down, middle = their_controlnet(x, t, context, hint, conditioning_scale=0.7, return_dict=False)
    reference = their_unet(x, t, context, down_block_additional_residuals=down,
                           mid_block_additional_residual=middle).sample
    uncontrolled = their_unet(x, t, context).sample
    assert relative_error(ours, reference) <= TOLERANCE
    assert relative_error(uncontrolled, reference) > 1e-2  # the control does change the prediction


def test_a_file_of_another_kind_is_refused_by_name(tmp_path) -> None:
    path = save(tmp_path / "lora.safetensors", {"lora_controlnet": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="control-LoRA"):
        load_controlnet(path, "lora.safetensors", CPU)
    path = save(tmp_path / "other.safetensors", {"weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a ControlNet"):
        load_controlnet(path, "other.safetensors", CPU)


def test_a_diff_controlnet_adds_the_models_unet_weights(tmp_path) -> None:
    base = init_random_(empty_module(UNetModel, DEMO_UNET), 1).state_dict()
    state = demo_controlnet()[1]
    shared = state.keys() & base.keys()
    assert len(shared) > len(state) // 2  # the encoder half and the embeddings
    diff = {f"control_model.{k}": v - base[k] if k in shared else v for k, v in state.items()}
    path = save(tmp_path / "diff.safetensors", {**diff, "difference": torch.zeros(1)}, {FAMILY_MARK_KEY: DEMO.name})
    with pytest.raises(CheckpointError, match="DiffControlNetLoader"):
        load_controlnet(path, path.name, CPU)
    loaded = load_controlnet(path, path.name, CPU, torch.float32, base=base).managed.module.state_dict()
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value)


# ----------------------------------------------------------------------------------------------
# Conditioning: hint, strength, percent range, chains


def test_hint_is_broadcast_as_comfyui_does() -> None:
    def comfyui(tensor: Tensor, target: int, batched_number: int) -> Tensor:
        # comfy.controlnet.broadcast_image_to, step by step.
        if tensor.shape[0] == 1:
            return tensor
        per_batch = target // batched_number
        tensor = tensor[:per_batch]
        if per_batch > tensor.shape[0]:
            tensor = torch.cat([tensor] * (per_batch // tensor.shape[0]) + [tensor[:per_batch % tensor.shape[0]]])
        return tensor if tensor.shape[0] == target else torch.cat([tensor] * batched_number)

    for hint_batch, batch, entries in [(1, 2, 2), (2, 2, 2), (3, 2, 2), (2, 5, 2), (4, 3, 1)]:
        hint = torch.rand(hint_batch, 3, 16, 16)
        assert torch.equal(resized_hint(hint, (2, 2), batch, batch * entries), comfyui(hint, batch * entries, entries))
    # Resized to 8x the latent, centre-cropped to its aspect ratio first (a 2:1 latent keeps the middle rows).
    hint = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(resized_hint(hint, (1, 2), 1, 1), hint[:, :, 1:3].repeat_interleave(4, -1).repeat_interleave(4, -2))


def demo_controlnet(seed: int = 0) -> tuple[ControlNet, dict[str, Tensor]]:
    """A random ControlNet for the demo model (its UNet's encoder half), and its state in the original layout."""
    module = randomized(empty_module(ControlNet, ControlNetConfig(DEMO_UNET)), seed)
    return module, module.state_dict()


@pytest.fixture(scope="module")
def demo_setup(tmp_path_factory):
    """The demo MODEL, a random ControlNet for it, a prompt pair and a hint."""
    model, clip, _ = load_checkpoint(DEMO_CHECKPOINT, DEMO_CHECKPOINT.name, CPU, torch.float32)
    path = save(tmp_path_factory.mktemp("controlnet") / "demo_cn.safetensors", {f"control_model.{k}": v for k, v in demo_controlnet()[1].items()},
                {FAMILY_MARK_KEY: DEMO.name})
    net = load_controlnet(path, path.name, CPU, torch.float32)
    positive, negative = clip.encode("a red house"), clip.encode("blurry")
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(5))
    return model, net, positive, negative, hint


def sample(model, positive, negative, steps: int = 6, on_step=None) -> Tensor:
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    sigmas = normal_sigmas(model.model_sampling, steps)
    out, _ = Guider(model, positive, negative, 5.0).sample(SeededNoise(7), latent, SamplerChoice("euler"), sigmas,
                                                           on_step=on_step)
    return out["samples"]


@torch.no_grad()
def test_strength_zero_equals_no_control(demo_setup) -> None:
    model, net, positive, negative, hint = demo_setup
    plain = sample(model, positive, negative)
    # The node returns its inputs at strength 0, as ComfyUI's; a control of strength 0 adds exact zeros.
    assert ControlNetApplyAdvanced(positive, negative, net, hint, 0.0, 0.0, 1.0) == (positive, negative)
    control = Control(net, hint.movedim(-1, 1), 0.0)
    zero = [[[cond, {**options, "control": control}] for cond, options in conditioning]
            for conditioning in (positive, negative)]
    assert torch.equal(sample(model, *zero), plain)
    controlled = sample(model, *ControlNetApplyAdvanced(positive, negative, net, hint, 1.0, 0.0, 1.0))
    assert (controlled - plain).abs().max() > 1e-3


@torch.no_grad()
def test_start_and_end_percent_bound_the_steps_the_control_acts_in(demo_setup) -> None:
    model, net, positive, negative, hint = demo_setup
    steps = 8

    def denoised(conditioning) -> list[Tensor]:
        found: list[Tensor] = []
        sample(model, *conditioning, steps=steps, on_step=lambda info: found.append(info["denoised"].clone()))
        return found

    plain = denoised((positive, negative))
    # Acting from 50% on: every step before is the uncontrolled run's, the first after differs.
    late = denoised(ControlNetApplyAdvanced(positive, negative, net, hint, 1.0, 0.5, 1.0))
    sigmas = normal_sigmas(model.model_sampling, steps)
    start = model.model_sampling.percent_to_sigma(0.5)
    before = [i for i in range(steps) if float(sigmas[i]) > start]
    assert 0 < len(before) < steps
    for i in before:
        assert torch.equal(late[i], plain[i])
    assert (late[len(before)] - plain[len(before)]).abs().max() > 1e-4

    # One step at each sigma from the same x: the control acts exactly while end <= sigma <= start.
    positive_c, negative_c = ControlNetApplyAdvanced(positive, negative, net, hint, 1.0, 0.25, 0.75)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    ms = model.model_sampling
    high, low = ms.percent_to_sigma(0.25), ms.percent_to_sigma(0.75)
    inside = outside = 0
    for sigma in sigmas[:-1]:
        run = None
        controlled = Guider(model, positive_c, negative_c, 5.0).denoiser(x.shape, run)(x * sigma, sigma.reshape(1))
        uncontrolled = Guider(model, positive, negative, 5.0).denoiser(x.shape, run)(x * sigma, sigma.reshape(1))
        if low <= float(sigma) <= high:
            inside += 1
            assert (controlled - uncontrolled).abs().max() > 1e-4
        else:
            outside += 1
            assert torch.equal(controlled, uncontrolled)
    assert inside and outside


@torch.no_grad()
def test_chained_controls_sum_their_strength_scaled_residuals(demo_setup) -> None:
    model, net, positive, negative, hint = demo_setup
    once = ControlNetApplyAdvanced(positive, negative, net, hint, 0.6, 0.0, 1.0)
    twice = ControlNetApplyAdvanced(*once, net, hint, 0.4, 0.0, 1.0)
    assert twice[0][0][1]["control"] is twice[1][0][1]["control"]  # one control for cond and uncond: one batch
    assert twice[0][0][1]["control"].previous is once[0][0][1]["control"]
    single = ControlNetApplyAdvanced(positive, negative, net, hint, 1.0, 0.0, 1.0)
    # 0.6 r + 0.4 r = 1.0 r: the same prediction up to rounding.
    assert (sample(model, *twice, steps=3) - sample(model, *single, steps=3)).abs().max() < 1e-4


def test_the_old_apply_node_lends_its_control_to_the_negative_prompt() -> None:
    net, hint = object(), torch.zeros(1, 8, 8, 3)
    positive = [[torch.zeros(1, 1, 4), {}]]
    negative = [[torch.zeros(1, 1, 4), {"strength": 1.0}], [torch.zeros(1, 1, 4), {"area": (1, 1, 0, 0)}]]
    (applied,) = [ControlNetApply(positive, net, hint, 0.5)]
    lent = with_uncond_controls(applied, negative)
    assert lent[0][1]["control"] is applied[0][1]["control"] and lent[0][1]["strength"] == 1.0
    assert "control" not in lent[1][1] and "control" not in negative[0][1]  # areas keep theirs; inputs unchanged
    advanced, _ = ControlNetApplyAdvanced(positive, negative, net, hint, 0.5, 0.0, 1.0)
    assert with_uncond_controls(advanced, negative) == [list(entry) for entry in negative]


# ----------------------------------------------------------------------------------------------
# A workflow


def test_controlnet_workflow_on_the_demo_model(tmp_path) -> None:
    config = folders(tmp_path / "models", tmp_path)
    save(tmp_path / "models" / "controlnet" / "random_cn.safetensors", demo_controlnet()[1],
         {FAMILY_MARK_KEY: DEMO.name})
    config.input_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(config.input_dir / "edges.png")
    session = Session(config)

    def workflow(strength: float) -> dict:
        return {
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": DEMO_CHECKPOINT.name}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red house", "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
            "10": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "random_cn.safetensors"}},
            "11": {"class_type": "LoadImage", "inputs": {"image": "edges.png"}},
            "12": {"class_type": "ControlNetApplyAdvanced", "inputs": {
                "positive": ["6", 0], "negative": ["7", 0], "control_net": ["10", 0], "image": ["11", 0],
                "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "3": {"class_type": "KSampler", "inputs": {
                "model": ["4", 0], "seed": 1, "steps": 3, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal",
                "positive": ["12", 0], "negative": ["12", 1], "latent_image": ["5", 0], "denoise": 1.0}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "cn"}},
        }

    def image(strength: float) -> np.ndarray:
        result = session.run(workflow(strength))
        assert result.ok, result.error and result.error["exception_message"]
        entry = result.ui_outputs["9"]["images"][0]
        with Image.open(config.output_dir / entry["subfolder"] / entry["filename"]) as saved:
            return np.asarray(saved).astype(int)

    plain_workflow = workflow(1.0)
    plain_workflow["3"]["inputs"].update(positive=["6", 0], negative=["7", 0])
    result = session.run(plain_workflow)
    assert result.ok
    entry = result.ui_outputs["9"]["images"][0]
    with Image.open(config.output_dir / entry["subfolder"] / entry["filename"]) as saved:
        plain = np.asarray(saved).astype(int)
    assert np.array_equal(image(0.0), plain)
    assert np.abs(image(1.0) - plain).max() > 0
    # On a model without a UNet (the flow demo's MMDiT) the sampler says so, naming the network.
    on_flow = workflow(1.0)
    on_flow["4"]["inputs"]["ckpt_name"] = FLOW_DEMO_CHECKPOINT.name
    result = session.run(on_flow)
    assert not result.ok and result.error["node_id"] == "3"
    assert "MMDiT, which takes no ControlNet residuals" in result.error["exception_message"]
