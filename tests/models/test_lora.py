"""LoRA: exact weight deltas, bitwise unpatching, the key layouts of kohya and diffusers/PEFT, clear errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from conftest import small_model, small_sdxl_clip
from sigmagraph.nodes.models.checkpoint import CheckpointError, open_checkpoint
from sigmagraph.nodes.models.families import DEMO_FLOW, DEMO_FLOW_MMDIT, FLUX_DEV_FAMILY
from sigmagraph.nodes.models.flux import FLUX_DEV, Flux
from sigmagraph.nodes.models.flux import diffusers_to_original as flux_to_original
from sigmagraph.nodes.models.flux import original_to_diffusers as flux_to_diffusers
from sigmagraph.nodes.models.lora import read_lora
from sigmagraph.nodes.models.manager import ModelManager
from sigmagraph.nodes.models.mmdit import MMDiT
from sigmagraph.nodes.models.mmdit import diffusers_to_original as mmdit_to_original
from sigmagraph.nodes.models.mmdit import original_to_diffusers as mmdit_to_diffusers
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.runtime import DiffusionNetwork, apply_lora, diffusion_model

SMALL_FLUX = replace(FLUX_DEV, hidden_size=128, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=(8, 28, 28))
LINEAR = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"  # Linear(context 64 -> 32)
CONV = "input_blocks.1.0.in_layers.2"  # the first ResBlock's 3x3 Conv2d(32 -> 32)
LINEAR_NAMES = {  # one layer as each tool names it, with its (up, down) key suffixes
    "kohya, diffusers blocks": ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k",
                                ".lora_up.weight", ".lora_down.weight"),
    "kohya, original blocks": ("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k",
                               ".lora_up.weight", ".lora_down.weight"),
    "PEFT": ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", ".lora_B.weight", ".lora_A.weight"),
    "diffusers layers": ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
                         ".lora.up.weight", ".lora.down.weight"),
    "diffusers processors": ("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k",
                             "_lora.up.weight", "_lora.down.weight"),
}


def write_lora(path, layers: dict[str, tuple[str, str, torch.Tensor, torch.Tensor, float | None]]) -> None:
    tensors = {}
    for name, up_suffix, down_suffix, up, down, alpha in layers.values():
        tensors[name + up_suffix], tensors[name + down_suffix] = up, down
        if alpha is not None:
            tensors[name + ".alpha"] = torch.tensor(alpha)
    save_file(tensors, str(path))


def read(path):
    with open_checkpoint(path) as checkpoint:
        return read_lora(checkpoint)


@pytest.fixture
def factors():
    generator = torch.Generator().manual_seed(7)
    rank = 4
    return {
        "linear": (torch.randn(32, rank, generator=generator), torch.randn(rank, 64, generator=generator)),
        # LoCon: a 3x3 down convolution into the rank, a 1x1 up convolution out of it.
        "conv": (torch.randn(32, rank, 1, 1, generator=generator), torch.randn(rank, 32, 3, 3, generator=generator)),
    }


def test_a_lora_changes_outputs_by_exactly_its_scaled_low_rank_product(tmp_path, factors):
    model, unet, _ = small_model()
    alpha, strength = 2.0, 0.7
    (up, down), (conv_up, conv_down) = factors["linear"], factors["conv"]
    write_lora(tmp_path / "lora.safetensors", {
        "linear": (*LINEAR_NAMES["kohya, diffusers blocks"], up, down, alpha),
        "conv": ("lora_unet_down_blocks_0_resnets_0_conv1", ".lora_up.weight", ".lora_down.weight",
                 conv_up, conv_down, alpha)})
    patched, _ = apply_lora(read(tmp_path / "lora.safetensors"), "lora.safetensors", model, strength)
    scale = alpha / up.shape[1] * strength

    linear, conv = unet.get_submodule(LINEAR), unet.get_submodule(CONV)
    x, image = torch.randn(5, 64), torch.randn(2, 32, 6, 6)
    model.network.use()
    with torch.no_grad():
        base_linear, base_conv = linear(x), conv(image)
        patched.network.use()
        delta_linear, delta_conv = linear(x) - base_linear, conv(image) - base_conv
    torch.testing.assert_close(delta_linear, scale * x @ (up @ down).T, rtol=1e-4, atol=1e-4)
    conv_delta_weight = scale * torch.einsum("or,rikl->oikl", conv_up[:, :, 0, 0], conv_down)
    torch.testing.assert_close(delta_conv, F.conv2d(image, conv_delta_weight, padding=1), rtol=1e-4, atol=1e-4)


def test_unpatching_restores_every_weight_bitwise(tmp_path, factors):
    model, unet, _ = small_model()
    original = {name: value.clone() for name, value in unet.state_dict().items()}
    up, down = factors["linear"]
    write_lora(tmp_path / "a.safetensors", {"linear": (*LINEAR_NAMES["PEFT"], up, down, 1.0)})
    write_lora(tmp_path / "b.safetensors", {"linear": (*LINEAR_NAMES["kohya, original blocks"], up.flip(1).contiguous(),
                                                        down.flip(0).contiguous(), None)})
    first, _ = apply_lora(read(tmp_path / "a.safetensors"), "a", model, 0.9)
    both, _ = apply_lora(read(tmp_path / "b.safetensors"), "b", first, -1.3)

    for used in (first, both, model, both, first, model):
        used.network.use()
        changed = [name for name, value in unet.state_dict().items() if not torch.equal(value, original[name])]
        assert changed == ([] if used is model else [LINEAR + ".weight"])
    assert model.network.managed.backups == {}


@pytest.mark.parametrize("layout", list(LINEAR_NAMES))
def test_every_key_layout_targets_the_same_weight(tmp_path, factors, layout):
    model, _, _ = small_model()
    up, down = factors["linear"]
    write_lora(tmp_path / "lora.safetensors", {"linear": (*LINEAR_NAMES[layout], up, down, 4.0)})
    patched, _ = apply_lora(read(tmp_path / "lora.safetensors"), layout, model, 1.0)
    (patch,) = patched.network.patches
    assert list(patch.targets()) == [LINEAR + ".weight"]


def test_sdxl_text_encoder_layers_by_kohya_and_peft_names(tmp_path):
    clip = small_sdxl_clip()
    generator = torch.Generator().manual_seed(1)
    layers = {
        "l": ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", ".lora_up.weight", ".lora_down.weight",
              torch.randn(64, 2, generator=generator), torch.randn(2, 64, generator=generator), 1.0),
        "g": ("text_encoder_2.text_model.encoder.layers.1.mlp.fc1", ".lora_B.weight", ".lora_A.weight",
              torch.randn(256, 2, generator=generator), torch.randn(2, 128, generator=generator), None)}
    write_lora(tmp_path / "te.safetensors", layers)
    before = clip.encode("a red fox")[0][0]
    _, patched = apply_lora(read(tmp_path / "te.safetensors"), "te", clip=clip, strength_clip=1.0)
    targets = [list(patch.targets()) for part in patched.parts for patch in part.patches]
    assert targets == [["text_model.encoder.layers.0.self_attn.q_proj.weight"],
                       ["text_model.encoder.layers.1.mlp.fc1.weight"]]
    assert not torch.equal(patched.encode("a red fox")[0][0], before)
    assert torch.equal(clip.encode("a red fox")[0][0], before)


def test_a_lora_for_another_model_is_a_clear_error(tmp_path, factors):
    model, _, _ = small_model()
    up, down = factors["linear"]
    write_lora(tmp_path / "other.safetensors", {"x": ("lora_unet_single_blocks_0_linear1", ".lora_up.weight",
                                                       ".lora_down.weight", up, down, None)})
    with pytest.raises(CheckpointError, match="other.safetensors: none of its 1 layers fits this model"):
        apply_lora(read(tmp_path / "other.safetensors"), "other.safetensors", model, 1.0)
    write_lora(tmp_path / "wide.safetensors", {"x": (LINEAR_NAMES["PEFT"][0], ".lora_B.weight", ".lora_A.weight",
                                                      torch.zeros(32, 4), torch.zeros(4, 77), None)})
    with pytest.raises(CheckpointError, match="does not fit the model's .*attn2.to_k.weight"):
        apply_lora(read(tmp_path / "wide.safetensors"), "wide.safetensors", model, 1.0)
    save_file({"lora_unet_x.hada_w1_a": torch.zeros(1)}, str(tmp_path / "loha.safetensors"))
    with pytest.raises(CheckpointError, match="a LoHa file"):
        read(tmp_path / "loha.safetensors")


def small_transformer(family: str):
    """A MODEL of the flow demo's MMDiT or a two-block Flux, random weights, and its module."""
    manager = ModelManager(torch.device("cpu"))
    if family == "mmdit":
        config, declared = DEMO_FLOW_MMDIT, DEMO_FLOW
        module = init_random_(empty_module(MMDiT, config), 3)
    else:
        config, declared = SMALL_FLUX, FLUX_DEV_FAMILY
        module = init_random_(empty_module(Flux, config), 3)
    return diffusion_model(declared, DiffusionNetwork(manager.register(module))), module


# One Linear of each network, as ComfyUI saves LoRAs (diffusion_model.…) and as kohya's sd-scripts names them.
TRANSFORMER_LAYERS = {
    "mmdit": ("joint_blocks.1.x_block.attn.qkv", "joint_blocks.0.context_block.mlp.fc1"),
    "flux": ("double_blocks.0.img_attn.qkv", "single_blocks.1.linear1"),
}


@pytest.mark.parametrize("family", list(TRANSFORMER_LAYERS))
def test_mmdit_and_flux_layers_by_comfyui_and_kohya_names(tmp_path, family):
    model, module = small_transformer(family)
    original = {name: value.clone() for name, value in module.state_dict().items()}
    comfyui_layer, kohya_layer = TRANSFORMER_LAYERS[family]
    generator = torch.Generator().manual_seed(2)
    factors = {}
    for layer in (comfyui_layer, kohya_layer):
        out_features, in_features = module.get_submodule(layer).weight.shape
        factors[layer] = (torch.randn(out_features, 4, generator=generator),
                          torch.randn(4, in_features, generator=generator))
    write_lora(tmp_path / "lora.safetensors", {
        "comfyui": (f"diffusion_model.{comfyui_layer}", ".lora_B.weight", ".lora_A.weight", *factors[comfyui_layer],
                    8.0),
        "kohya": (f"lora_unet_{kohya_layer.replace('.', '_')}", ".lora_up.weight", ".lora_down.weight",
                  *factors[kohya_layer], None)})
    patched, _ = apply_lora(read(tmp_path / "lora.safetensors"), "lora.safetensors", model, 0.5)

    patched.network.use()
    weights = module.state_dict()
    for layer, scale in ((comfyui_layer, 0.5 * 8.0 / 4), (kohya_layer, 0.5)):
        up, down = factors[layer]
        torch.testing.assert_close(weights[f"{layer}.weight"], original[f"{layer}.weight"] + scale * up @ down)
    assert [name for name in weights if not torch.equal(weights[name], original[name])] == sorted(
        [f"{comfyui_layer}.weight", f"{kohya_layer}.weight"], key=list(weights).index)
    model.network.use()
    assert all(torch.equal(value, original[name]) for name, value in module.state_dict().items())


# Diffusers' names (PEFT keys) for parts of fused weights, a part of another size (Flux's proj_mlp in linear1),
# and adaLN projections stored with their halves swapped (norm_out; SD3's last context block).
DIFFUSERS_LAYERS = {
    "mmdit": ("transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_v",
              "transformer_blocks.2.attn.add_k_proj",
              "transformer_blocks.1.ff.net.0.proj", "transformer_blocks.3.norm1_context.linear", "norm_out.linear"),
    "flux": ("transformer_blocks.0.attn.to_q", "transformer_blocks.0.attn.to_v", "transformer_blocks.1.attn.add_k_proj",
             "single_transformer_blocks.1.proj_mlp", "single_transformer_blocks.1.attn.to_k", "norm_out.linear"),
}


@pytest.mark.parametrize("family", list(DIFFUSERS_LAYERS))
def test_a_diffusers_layout_lora_equals_patching_diffusers_weights(tmp_path, family):
    """Reference: the LoRA added to the model's weights in diffusers' layout, then converted as the model loader
    converts diffusers files (mmdit/flux.diffusers_to_original, checked against diffusers' own models)."""
    model, module = small_transformer(family)
    to_diffusers, to_original = {"mmdit": (mmdit_to_diffusers, mmdit_to_original),
                                 "flux": (flux_to_diffusers, flux_to_original)}[family]
    theirs = {name: value.clone() for name, value in to_diffusers(module.state_dict(), module.config).items()}
    generator = torch.Generator().manual_seed(4)
    lora, strength = {}, 0.8
    for i, name in enumerate(DIFFUSERS_LAYERS[family]):
        out_features, in_features = theirs[f"{name}.weight"].shape
        rank, alpha = 2 + i % 3, (None, 3.0)[i % 2]
        up = torch.randn(out_features, rank, generator=generator)
        down = torch.randn(rank, in_features, generator=generator)
        lora[name] = (f"transformer.{name}", ".lora_B.weight", ".lora_A.weight", up, down, alpha)
        theirs[f"{name}.weight"] += strength * (1.0 if alpha is None else alpha / rank) * up @ down
    write_lora(tmp_path / "diffusers.safetensors", lora)
    patched, _ = apply_lora(read(tmp_path / "diffusers.safetensors"), "diffusers.safetensors", model, strength)

    patched.network.use()
    expected = to_original(theirs, module.config)
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-5, msg=name)


def test_an_unknown_diffusers_layer_fits_nothing(tmp_path):
    model, _ = small_transformer("flux")
    write_lora(tmp_path / "other.safetensors", {"q": ("transformer.down_blocks.0.attn.to_q", ".lora_B.weight",
                                                      ".lora_A.weight", torch.zeros(128, 4), torch.zeros(4, 128), None)})
    with pytest.raises(CheckpointError, match="other.safetensors: none of its 1 layers fits this model"):
        apply_lora(read(tmp_path / "other.safetensors"), "other.safetensors", model, 1.0)


def test_a_diffusers_layer_of_another_width_is_a_clear_error(tmp_path):
    model, _ = small_transformer("flux")  # linear1 holds q, k, v (128 rows each) and proj_mlp (512 rows)
    layer = "transformer.single_transformer_blocks.0.proj_mlp"
    write_lora(tmp_path / "wide.safetensors", {"mlp": (layer, ".lora_B.weight", ".lora_A.weight", torch.zeros(256, 4),
                                                       torch.zeros(4, 128), None)})
    with pytest.raises(CheckpointError, match=f"wide.safetensors: layer {layer} has 256 outputs where the model's "
                                              "single_blocks.0.linear1.weight has 512"):
        apply_lora(read(tmp_path / "wide.safetensors"), "wide.safetensors", model, 1.0)
