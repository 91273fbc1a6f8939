"""Our MMDiT (Stability's layout) against diffusers' SD3Transformer2DModel with identical random weights (fp32, CPU).

The weights start in diffusers' model (seeded random init, its own sin-cos position grid) and
reach ours through `diffusers_to_original`, loaded strictly: the comparison checks the layout
mapping as well as the numbers. Error metric: max |ours - diffusers| / max |diffusers|.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from diffusers import SD3Transformer2DModel
from torch import Tensor

from diffusers_layout import relative_error
from sigmagraph.nodes.models.mmdit import (SD3_MEDIUM, SD35_LARGE, SD35_MEDIUM, MMDiT, MMDiTConfig,
                                           diffusers_to_original, original_to_diffusers)
from sigmagraph.nodes.models.module_init import empty_module, init_random_

TOLERANCE = 1e-5
# Small models on shared cores run many times faster on one thread (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

# diffusers' transformer/config.json of the released models.
RELEASED = {
    "sd3-medium": (SD3_MEDIUM, dict(
        num_layers=24, attention_head_dim=64, num_attention_heads=24, caption_projection_dim=1536,
        joint_attention_dim=4096, pooled_projection_dim=2048, pos_embed_max_size=192)),
    "sd3.5-medium": (SD35_MEDIUM, dict(
        num_layers=24, attention_head_dim=64, num_attention_heads=24, caption_projection_dim=1536,
        joint_attention_dim=4096, pooled_projection_dim=2048, pos_embed_max_size=384, qk_norm="rms_norm",
        dual_attention_layers=tuple(range(13)))),
    "sd3.5-large": (SD35_LARGE, dict(
        num_layers=38, attention_head_dim=64, num_attention_heads=38, caption_projection_dim=2432,
        joint_attention_dim=4096, pooled_projection_dim=2048, pos_embed_max_size=192, qk_norm="rms_norm")),
}

# Each release's structure (qk norm, dual attention, real context and pooled widths, 64-wide heads)
# at two or three blocks of width 128; a 24-patch position grid, so every latent takes a crop.
SMALL = dict(hidden_size=128, num_heads=2, pos_embed_max_size=24)
SMALL_SD3 = replace(SD3_MEDIUM, depth=2, **SMALL)
SMALL_SD35_LARGE = replace(SD35_LARGE, depth=2, **SMALL)
SMALL_SD35_MEDIUM = replace(SD35_MEDIUM, depth=3, x_block_self_attn_layers=(0, 1), **SMALL)


def diffusers_config(config: MMDiTConfig) -> dict:
    """diffusers' SD3Transformer2DModel arguments for the same architecture."""
    return dict(patch_size=config.patch_size, in_channels=config.in_channels, out_channels=config.out_channels,
                num_layers=config.depth, attention_head_dim=config.hidden_size // config.num_heads,
                num_attention_heads=config.num_heads, caption_projection_dim=config.hidden_size,
                joint_attention_dim=config.context_dim, pooled_projection_dim=config.pooled_dim,
                pos_embed_max_size=config.pos_embed_max_size, dual_attention_layers=config.x_block_self_attn_layers,
                qk_norm="rms_norm" if config.qk_norm else None)


def random_pair(config: MMDiTConfig, seed: int = 0) -> tuple[MMDiT, SD3Transformer2DModel]:
    """diffusers' model with seeded random weights, and ours loaded (strictly) from its state dict."""
    theirs = init_random_(SD3Transformer2DModel(**diffusers_config(config)), seed).eval()
    ours = empty_module(MMDiT, config)
    ours.load_state_dict(diffusers_to_original(theirs.state_dict(), config), strict=True)
    return ours.eval(), theirs


def random_inputs(batch: int, height: int, width: int, tokens: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded latents [B, 16, H, W], context [B, tokens, 4096] and pooled CLIP outputs [B, 2048]."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 16, height, width, generator=generator),
            torch.randn(batch, tokens, 4096, generator=generator), torch.randn(batch, 2048, generator=generator))


@pytest.mark.parametrize("config, size", [(SMALL_SD3, (32, 32)), (SMALL_SD35_LARGE, (32, 24)),
                                          (SMALL_SD35_MEDIUM, (24, 32))],
                         ids=["sd3", "sd3.5-large-qk-norm", "sd3.5-medium-dual-attention"])
@torch.no_grad()
def test_outputs_match_diffusers(config: MMDiTConfig, size: tuple[int, int]) -> None:
    ours, theirs = random_pair(config)
    x, context, pooled = random_inputs(2, *size, tokens=77, seed=1)
    timesteps = torch.tensor([999.0, 281.25])  # sigma·1000, what both models take
    reference = theirs(x, encoder_hidden_states=context, pooled_projections=pooled, timestep=timesteps).sample
    out = ours(x, timesteps, context, pooled)
    assert out.shape == x.shape
    error = relative_error(out, reference)
    print(f"relative error {error:.1e}")
    assert error < TOLERANCE


@torch.no_grad()
def test_odd_latents_are_padded_circularly_and_cropped_back() -> None:
    # ComfyUI's behaviour for sizes that are not multiples of the patch: circular padding of the
    # bottom and right edges, then the output cropped to the input's size.
    ours, _ = random_pair(SMALL_SD3)
    x, context, pooled = random_inputs(1, 15, 13, tokens=5, seed=2)
    timesteps = torch.tensor([500.0])
    padded = ours(F.pad(x, (0, 1, 0, 1), mode="circular"), timesteps, context, pooled)
    assert torch.equal(ours(x, timesteps, context, pooled), padded[..., :15, :13])


def test_layout_conversion_round_trips_every_tensor() -> None:
    # SD3.5 Medium's structure has every kind of tensor: split qkv, q/k norms, a second attention,
    # a pre_only last context stream with swapped adaLN halves, and the final layer's.
    theirs = init_random_(SD3Transformer2DModel(**diffusers_config(SMALL_SD35_MEDIUM)), seed=3).state_dict()
    original = diffusers_to_original(theirs, SMALL_SD35_MEDIUM)
    with torch.device("meta"):
        assert original.keys() == MMDiT(SMALL_SD35_MEDIUM).state_dict().keys()
    back = original_to_diffusers(original, SMALL_SD35_MEDIUM)
    assert back.keys() == theirs.keys()
    assert all(torch.equal(back[key], theirs[key]) for key in theirs)
    again = diffusers_to_original(back, SMALL_SD35_MEDIUM)
    assert again.keys() == original.keys()
    assert all(torch.equal(again[key], original[key]) for key in original)
    # The last context stream's adaLN holds (shift, scale); diffusers' (scale, shift).
    last = f"joint_blocks.{SMALL_SD35_MEDIUM.depth - 1}.context_block.adaLN_modulation.1.bias"
    assert torch.equal(original[last], theirs[f"transformer_blocks.{SMALL_SD35_MEDIUM.depth - 1}"
                                              ".norm1_context.linear.bias"].roll(128))


def test_conversion_refuses_a_state_dict_of_another_structure() -> None:
    theirs = init_random_(SD3Transformer2DModel(**diffusers_config(SMALL_SD35_MEDIUM)), seed=4).state_dict()
    with pytest.raises(ValueError, match="attn2"):
        diffusers_to_original(theirs, replace(SMALL_SD35_MEDIUM, x_block_self_attn_layers=()))


@pytest.mark.parametrize("name", list(RELEASED))
def test_presets_have_the_released_layout(name: str) -> None:
    config, released = RELEASED[name]
    assert (config.depth, config.num_heads, config.hidden_size // config.num_heads) == (
        released["num_layers"], released["num_attention_heads"], released["attention_head_dim"])
    with torch.device("meta"):
        ours = MMDiT(config).state_dict()
        theirs = SD3Transformer2DModel(**released).state_dict()
    converted = original_to_diffusers(ours, config)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in theirs.items()}
