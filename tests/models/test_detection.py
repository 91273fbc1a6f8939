"""Family detection and size reading on full-size layouts, built from shapes alone (meta tensors, no weights)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor

from conftest import load_tool
from sigmagraph.nodes.models.checkpoint import Checkpoint
from sigmagraph.nodes.models.clip import VIT_BIGG14, VIT_H14, VIT_L14, CLIPTextModel
from sigmagraph.nodes.models.detection import (UnknownModel, detect, read_text_encoder_config, read_vae_config,
                                               text_encoder_family)
from sigmagraph.nodes.models.families import SDXL_REFINER, refiner_inputs, sdxl_inputs
from sigmagraph.nodes.models.unet import SD1_UNET, SD2_UNET, SDXL_REFINER_UNET, SDXL_UNET, UNetModel, label_vector
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL

V_BIAS = "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias"


class ShapeCheckpoint(Checkpoint):
    """A file of shapes only (meta tensors), with real values for the keys given in `values`."""

    def __init__(self, tensors: dict[str, Tensor], values: dict[str, Tensor] | None = None):
        super().__init__("shapes.safetensors", {})
        self.tensors, self.values = tensors, values or {}

    def keys(self) -> list[str]:
        return list(self.tensors)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.tensors[key].shape)

    def view(self, key: str) -> Tensor:
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.tensors


def meta_state(module_type, config, prefix: str = "") -> dict[str, Tensor]:
    with torch.device("meta"):
        return {prefix + key: value for key, value in module_type(config).state_dict().items()}


def unet_file(config, prefix: str = "model.diffusion_model.", bias_std: float = 0.01) -> ShapeCheckpoint:
    tensors = meta_state(UNetModel, config, prefix)
    bias = torch.randn(tensors[V_BIAS].shape[0], generator=torch.Generator().manual_seed(0)) * bias_std \
        if V_BIAS in tensors else None
    return ShapeCheckpoint(tensors, {V_BIAS: bias})


@pytest.mark.parametrize("config, bias_std, family", [
    (SD1_UNET, 0.01, "SD1.x"), (SD2_UNET, 0.01, "SD2.x"), (SD2_UNET, 0.2, "SD2.x-v"), (SDXL_UNET, 0.01, "SDXL"),
    (SDXL_REFINER_UNET, 0.01, "SDXL refiner")])
def test_each_family_is_detected_and_its_unet_read_back_exactly(config, bias_std, family):
    found, unet_config, prefix = detect(unet_file(config, bias_std=bias_std))
    assert (found.name, prefix) == (family, "model.diffusion_model.")
    assert unet_config == config
    prediction = "v_prediction" if family == "SD2.x-v" else "eps"
    assert found.prediction == prediction


def test_bare_unet_files_and_variants_with_other_sizes():
    found, config, prefix = detect(unet_file(SD1_UNET, prefix=""))
    assert (found.name, prefix) == ("SD1.x", "")
    # A distilled SDXL (fewer transformer blocks, as SSD-1B) is still SDXL, with its own depths.
    slim = replace(SDXL_UNET, transformer_depth=(0, 2, 4), transformer_depth_middle=0)
    found, config, _ = detect(unet_file(slim))
    assert found.name == "SDXL" and config == slim


def test_an_unknown_unet_is_described():
    with pytest.raises(UnknownModel, match=r"shapes.safetensors: not a model family .* in_channels 9, context_dim 768"):
        detect(unet_file(replace(SD1_UNET, in_channels=9)))


@pytest.mark.parametrize("config, openclip", [(VIT_L14, False), (VIT_H14, True), (VIT_BIGG14, True)])
def test_text_encoder_sizes_are_read_in_both_layouts(config, openclip):
    state = meta_state(CLIPTextModel, config)
    if openclip:
        state = load_tool().openclip_layout(state)
    read = read_text_encoder_config(ShapeCheckpoint(state), "", replace(VIT_L14, activation=config.activation))
    assert read == config


def test_autoencoder_sizes_are_read():
    small = replace(SD_VAE, ch=64, ch_mult=(1, 2, 2), num_res_blocks=1)
    for config in (SD_VAE, small):
        assert read_vae_config(ShapeCheckpoint(meta_state(AutoencoderKL, config, "vae.")), "vae.", SD_VAE) == config


def test_text_encoder_files_choose_their_family_by_width():
    assert text_encoder_family([768])[0].name == "SD1.x"
    assert text_encoder_family([1024])[0].name == "SD2.x-v"  # both SD2 families share the encoder
    family, slots = text_encoder_family([1280, 768])
    assert family.name == "SDXL" and [slot.name for slot in slots] == ["clip_g", "clip_l"]
    with pytest.raises(UnknownModel, match="no model family has text encoders 768 \\+ 768"):
        text_encoder_family([768, 768])


def test_sdxl_label_vectors_take_sizes_from_options_or_the_latent():
    cond, pooled = torch.randn(1, 77, 2048), torch.randn(1, 1280)
    inputs = sdxl_inputs(cond, {"pooled_output": pooled, "width": 832, "height": 1216, "crop_w": 8,
                                "target_width": 1024, "target_height": 1024, "latent_size": (64, 64)})
    assert torch.equal(inputs["y"], label_vector(pooled, (1216, 832, 0, 8, 1024, 1024)))
    defaults = sdxl_inputs(cond, {"pooled_output": pooled, "latent_size": (96, 128)})["y"]
    assert torch.equal(defaults, label_vector(pooled, (768, 1024, 0, 0, 768, 1024)))
    negative = refiner_inputs(cond[..., :1280], {"pooled_output": pooled, "prompt_type": "negative",
                                                  "latent_size": (128, 128)})["y"]
    assert negative.shape == (1, SDXL_REFINER.network.adm_in_channels)
    assert torch.equal(negative, label_vector(pooled, (1024, 1024, 0, 0, 2.5)))
    with pytest.raises(ValueError, match="needs the prompt's pooled_output"):
        sdxl_inputs(cond, {})
