"""Our LDM UNet against diffusers' UNet2DConditionModel with identical random weights (fp32, CPU)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from diffusers import UNet2DConditionModel

from diffusers_layout import relative_error, twin, unet_to_diffusers
from sigmagraph.nodes.models.families import DEMO_UNET
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.unet import (SD1_UNET, SD2_UNET, SDXL_REFINER_UNET, SDXL_UNET, UNetConfig, UNetModel,
                                          label_vector)

TOLERANCE = 1e-4

# diffusers' configs of the released models (unet/config.json on the Hub). Its "attention_head_dim"
# is the number of heads per level.
DIFFUSERS_SD15 = dict(cross_attention_dim=768, attention_head_dim=8)
DIFFUSERS_SD21 = dict(cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
DIFFUSERS_SDXL = dict(
    block_out_channels=(320, 640, 1280), attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)
DIFFUSERS_SDXL_REFINER = dict(
    block_out_channels=(384, 768, 1536, 1536), attention_head_dim=(6, 12, 24, 24), transformer_layers_per_block=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=1280, use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2560)


def random_pair(config: UNetConfig, diffusers_config: dict, seed: int = 0) -> tuple[UNetModel, UNet2DConditionModel]:
    """Our UNet with seeded random weights, and its diffusers twin sharing the same tensors."""
    ours = init_random_(empty_module(UNetModel, config), seed).eval()
    theirs = twin(UNet2DConditionModel, unet_to_diffusers(ours.state_dict(), config.num_res_blocks),
                  **diffusers_config)
    return ours, theirs


@pytest.mark.parametrize("config, diffusers_config", [
    (SD1_UNET, DIFFUSERS_SD15), (SD2_UNET, DIFFUSERS_SD21),
    (SDXL_UNET, DIFFUSERS_SDXL), (SDXL_REFINER_UNET, DIFFUSERS_SDXL_REFINER)],
    ids=["sd1", "sd2", "sdxl", "sdxl-refiner"])
def test_full_size_presets_have_the_released_layout(config: UNetConfig, diffusers_config: dict) -> None:
    with torch.device("meta"):
        ours = UNetModel(config).state_dict()
        theirs = UNet2DConditionModel(**diffusers_config).state_dict()
    converted = unet_to_diffusers(ours, config.num_res_blocks)
    assert len(converted) == len(ours)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in theirs.items()}


@torch.no_grad()
def test_sd15_full_size_matches_diffusers() -> None:
    ours, theirs = random_pair(SD1_UNET, DIFFUSERS_SD15)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    context = torch.randn(1, 77, 768, generator=generator)
    timesteps = torch.tensor([421.0])
    reference = theirs(x, timesteps, encoder_hidden_states=context).sample
    assert relative_error(ours(x, timesteps, context), reference) < TOLERANCE


@torch.no_grad()
def test_sdxl_structure_matches_diffusers_with_size_conditioning() -> None:
    # Real SDXL hyperparameters (depths 0/2/10, 64-wide heads, context 2048, label vector 2816)
    # at a fifth of the width.
    diffusers_config = dict(DIFFUSERS_SDXL, block_out_channels=(64, 128, 256), attention_head_dim=(1, 2, 4))
    ours, theirs = random_pair(replace(SDXL_UNET, model_channels=64), diffusers_config)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 16, 12, generator=generator)
    context = torch.randn(2, 77, 2048, generator=generator)
    pooled = torch.randn(2, 1280, generator=generator)
    timesteps = torch.tensor([999.0, 3.0])
    sizes = (1024.0, 768.0, 0.0, 16.0, 1024.0, 768.0)  # original h, w; crop top, left; target h, w
    reference = theirs(x, timesteps, encoder_hidden_states=context, added_cond_kwargs=dict(
        text_embeds=pooled, time_ids=torch.tensor([sizes, sizes]))).sample
    y = label_vector(pooled, sizes)
    assert y.shape == (2, 2816)
    assert relative_error(ours(x, timesteps, context, y), reference) < TOLERANCE


@torch.no_grad()
def test_sd2_structure_matches_diffusers_on_an_odd_latent() -> None:
    # SD 2.x: linear projections, 64-wide heads, context 1024; 9x7 exercises the skip-size upsampling.
    diffusers_config = dict(DIFFUSERS_SD21, block_out_channels=(64, 128, 256, 256), attention_head_dim=(1, 2, 4, 4))
    ours, theirs = random_pair(replace(SD2_UNET, model_channels=64), diffusers_config)
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, 9, 7, generator=generator)
    context = torch.randn(1, 77, 1024, generator=generator)
    timesteps = torch.tensor(250.0)
    reference = theirs(x, timesteps, encoder_hidden_states=context).sample
    out = ours(x, timesteps, context)
    assert out.shape == x.shape
    assert relative_error(out, reference) < TOLERANCE


def test_sdxl_unet_demands_the_label_vector() -> None:
    model = init_random_(empty_module(UNetModel, replace(SDXL_UNET, model_channels=32, transformer_depth=(0, 1, 1),
                                                         transformer_depth_middle=1)), 0)
    with pytest.raises(ValueError, match="label vector"):
        model(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]), torch.zeros(1, 1, 2048))


def test_demo_family_structure_matches_diffusers_with_its_norm_groups() -> None:
    # The demo UNet: two levels, one ResBlock each, 32-wide heads, 8 GroupNorm groups (norm_num_groups).
    diffusers_config = dict(block_out_channels=(64, 64), layers_per_block=1, norm_num_groups=8,
                            down_block_types=("CrossAttnDownBlock2D",) * 2, up_block_types=("CrossAttnUpBlock2D",) * 2,
                            attention_head_dim=(2, 2), cross_attention_dim=64, use_linear_projection=True)
    ours, theirs = random_pair(DEMO_UNET, diffusers_config)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 8, 8, generator=generator)
    context = torch.randn(2, 77, 64, generator=generator)
    timesteps = torch.tensor([10.0, 900.0])
    reference = theirs(x, timesteps, encoder_hidden_states=context).sample
    assert relative_error(ours(x, timesteps, context), reference) < TOLERANCE
