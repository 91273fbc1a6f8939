"""Our Flux (BFL's layout) against diffusers' FluxTransformer2DModel with identical random weights (fp32, CPU).

The weights start in diffusers' model (seeded random init) and reach ours through
`diffusers_to_original`, loaded strictly. diffusers' model takes packed 2x2 patches and explicit
position ids; the test packs them as diffusers' FluxPipeline does. Error metric:
max |ours - diffusers| / max |diffusers|.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from diffusers import FluxTransformer2DModel
from torch import Tensor

from diffusers_layout import relative_error
from sigmagraph.nodes.models.flux import (FLUX_DEV, FLUX_SCHNELL, Flux, FluxConfig, diffusers_to_original,
                                          original_to_diffusers)
from sigmagraph.nodes.models.module_init import empty_module, init_random_

TOLERANCE = 1e-5
# Small models on shared cores run many times faster on one thread (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

# diffusers' transformer/config.json of black-forest-labs/FLUX.1-dev and FLUX.1-schnell.
RELEASED_DEV = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                    num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                    guidance_embeds=True, axes_dims_rope=(16, 56, 56))
RELEASED = {"dev": (FLUX_DEV, RELEASED_DEV), "schnell": (FLUX_SCHNELL, dict(RELEASED_DEV, guidance_embeds=False))}

# Flux's structure (real input, context and pooled widths) with two blocks of each kind, width
# 128 in two heads, and the rotary axes in Flux's proportions (16:56:56 of the head width).
SMALL_DEV = replace(FLUX_DEV, hidden_size=128, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=(8, 28, 28))
SMALL_SCHNELL = replace(SMALL_DEV, guidance_embed=False)


def diffusers_config(config: FluxConfig) -> dict:
    """diffusers' FluxTransformer2DModel arguments for the same architecture."""
    return dict(patch_size=1, in_channels=config.in_channels, out_channels=config.out_channels,
                num_layers=config.depth, num_single_layers=config.depth_single_blocks,
                attention_head_dim=config.hidden_size // config.num_heads, num_attention_heads=config.num_heads,
                joint_attention_dim=config.context_dim, pooled_projection_dim=config.vec_in_dim,
                guidance_embeds=config.guidance_embed, axes_dims_rope=config.axes_dim)


def random_pair(config: FluxConfig, seed: int = 0) -> tuple[Flux, FluxTransformer2DModel]:
    """diffusers' model with seeded random weights, and ours loaded (strictly) from its state dict."""
    theirs = init_random_(FluxTransformer2DModel(**diffusers_config(config)), seed).eval()
    ours = empty_module(Flux, config)
    ours.load_state_dict(diffusers_to_original(theirs.state_dict(), config), strict=True)
    return ours.eval(), theirs


def random_inputs(batch: int, height: int, width: int, tokens: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded latents [B, 16, H, W], T5 context [B, tokens, 4096] and CLIP-L pooled output [B, 768]."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 16, height, width, generator=generator),
            torch.randn(batch, tokens, 4096, generator=generator), torch.randn(batch, 768, generator=generator))


def diffusers_forward(model: FluxTransformer2DModel, x: Tensor, timesteps: Tensor, context: Tensor, pooled: Tensor,
                      guidance: Tensor | None) -> Tensor:
    """diffusers' prediction for latents x [B, C, H, W], packed and unpacked as FluxPipeline does."""
    batch, channels, height, width = x.shape
    rows, cols = height // 2, width // 2
    packed = x.view(batch, channels, rows, 2, cols, 2).permute(0, 2, 4, 1, 3, 5).reshape(batch, rows * cols, -1)
    img_ids = torch.zeros(rows, cols, 3)
    img_ids[..., 1] = torch.arange(rows)[:, None]
    img_ids[..., 2] = torch.arange(cols)[None, :]
    out = model(packed, encoder_hidden_states=context, pooled_projections=pooled, timestep=timesteps,
                img_ids=img_ids.reshape(-1, 3), txt_ids=torch.zeros(context.shape[1], 3), guidance=guidance).sample
    return out.view(batch, rows, cols, channels, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(x.shape)


@pytest.mark.parametrize("config, guidance", [(SMALL_DEV, [3.5, 1.0]), (SMALL_SCHNELL, None)],
                         ids=["dev-with-guidance", "schnell"])
@torch.no_grad()
def test_outputs_match_diffusers(config: FluxConfig, guidance: list[float] | None) -> None:
    ours, theirs = random_pair(config)
    x, context, pooled = random_inputs(2, 32, 24, tokens=64, seed=1)  # not square: rows and columns must not swap
    timesteps = torch.tensor([0.9, 0.25])  # sigma in [0, 1], what both models take
    guidance = None if guidance is None else torch.tensor(guidance)
    reference = diffusers_forward(theirs, x, timesteps, context, pooled, guidance)
    out = ours(x, timesteps, context, pooled, guidance)
    assert out.shape == x.shape
    error = relative_error(out, reference)
    print(f"relative error {error:.1e}")
    assert error < TOLERANCE


@torch.no_grad()
def test_guidance_matters_to_dev_only_when_given() -> None:
    ours, _ = random_pair(SMALL_DEV)
    x, context, pooled = random_inputs(1, 8, 8, tokens=5, seed=2)
    timesteps = torch.tensor([0.5])
    unguided = ours(x, timesteps, context, pooled)
    assert not torch.equal(ours(x, timesteps, context, pooled, torch.tensor([3.5])), unguided)
    # Without a guidance value the embedding is skipped, as ComfyUI does: the output is that of
    # the same model with its guidance embedder removed.
    ours.guidance_in = None
    assert torch.equal(ours(x, timesteps, context, pooled, torch.tensor([3.5])), unguided)


@torch.no_grad()
def test_odd_latents_are_padded_circularly_and_cropped_back() -> None:
    ours, _ = random_pair(SMALL_SCHNELL)
    x, context, pooled = random_inputs(1, 15, 13, tokens=5, seed=3)
    timesteps = torch.tensor([0.5])
    padded = ours(F.pad(x, (0, 1, 0, 1), mode="circular"), timesteps, context, pooled)
    assert torch.equal(ours(x, timesteps, context, pooled), padded[..., :15, :13])


@pytest.mark.parametrize("config", [SMALL_DEV, SMALL_SCHNELL], ids=["dev", "schnell"])
def test_layout_conversion_round_trips_every_tensor(config: FluxConfig) -> None:
    theirs = init_random_(FluxTransformer2DModel(**diffusers_config(config)), seed=4).state_dict()
    original = diffusers_to_original(theirs, config)
    with torch.device("meta"):
        assert original.keys() == Flux(config).state_dict().keys()
    back = original_to_diffusers(original, config)
    assert back.keys() == theirs.keys()
    assert all(torch.equal(back[key], theirs[key]) for key in theirs)
    again = diffusers_to_original(back, config)
    assert again.keys() == original.keys()
    assert all(torch.equal(again[key], original[key]) for key in original)
    # linear1 is q, k, v and the MLP input; the final adaLN's halves are swapped.
    linear1 = original["single_blocks.0.linear1.weight"]
    assert torch.equal(linear1[3 * 128:], theirs["single_transformer_blocks.0.proj_mlp.weight"])
    assert torch.equal(original["final_layer.adaLN_modulation.1.bias"], theirs["norm_out.linear.bias"].roll(128))


def test_conversion_refuses_a_state_dict_of_another_structure() -> None:
    theirs = init_random_(FluxTransformer2DModel(**diffusers_config(SMALL_DEV)), seed=5).state_dict()
    with pytest.raises(ValueError, match="guidance_embedder"):
        diffusers_to_original(theirs, SMALL_SCHNELL)


@pytest.mark.parametrize("name", list(RELEASED))
def test_presets_have_the_released_layout(name: str) -> None:
    config, released = RELEASED[name]
    assert (config.num_heads, config.hidden_size // config.num_heads, config.axes_dim) == (
        released["num_attention_heads"], released["attention_head_dim"], released["axes_dims_rope"])
    with torch.device("meta"):
        ours = Flux(config).state_dict()
        theirs = FluxTransformer2DModel(**released).state_dict()
    converted = original_to_diffusers(ours, config)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in theirs.items()}
