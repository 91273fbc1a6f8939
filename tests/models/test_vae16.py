"""The 16-channel KL-f8 autoencoder of SD3 and Flux: our AutoencoderKL against diffusers' (fp32, CPU).

SD3's and Flux's autoencoders (diffusers: latent_channels=16, use_quant_conv=False,
use_post_quant_conv=False) are SD's KL-f8 with 16 latent channels and without the 1x1
quant_conv / post_quant_conv: their files hold no such tensors. Error metric:
max |ours - diffusers| / max |diffusers|.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from diffusers import AutoencoderKL as DiffusersAutoencoderKL

from diffusers_layout import relative_error, twin, vae_to_diffusers
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL, VAEConfig

TOLERANCE = 1e-5
# Small models on shared cores run many times faster on one thread (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

# The released structure (four levels, two ResnetBlocks each, 32 groups) at a quarter of the width.
DIFFUSERS_SMALL = dict(block_out_channels=(32, 64, 128, 128), layers_per_block=2, latent_channels=16,
                       down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


def compare(config: VAEConfig, diffusers_config: dict) -> dict[str, float]:
    """Relative errors of our encode (posterior mode) and decode against diffusers' with the same weights."""
    ours = init_random_(empty_module(AutoencoderKL, config), seed=0).eval()
    theirs = twin(DiffusersAutoencoderKL, vae_to_diffusers(ours.state_dict(), len(config.ch_mult)),
                  **diffusers_config)
    generator = torch.Generator().manual_seed(1)
    pixels = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    latent = torch.randn(1, 16, 8, 8, generator=generator)
    with torch.no_grad():
        encoded = ours.encode(pixels)
        assert encoded.shape == (1, 16, 8, 8)
        errors = {"encode": relative_error(encoded, theirs.encode(pixels).latent_dist.mode()),
                  "decode": relative_error(ours.decode(latent), theirs.decode(latent).sample)}
    print({name: f"{error:.1e}" for name, error in errors.items()})
    return errors


def test_sixteen_latent_channels_match_diffusers() -> None:
    # Everything but the missing quant convs: 16 latent channels through the same encoder and decoder.
    errors = compare(replace(SD_VAE, ch=32, z_channels=16, embed_dim=16), DIFFUSERS_SMALL)
    assert max(errors.values()) < TOLERANCE


def test_sd3_flux_autoencoder_without_quant_convs_matches_diffusers() -> None:
    config = replace(SD_VAE, ch=32, z_channels=16, embed_dim=16, use_quant_conv=False)
    with torch.device("meta"):
        keys = AutoencoderKL(config).state_dict().keys()
    assert not any(key.startswith(("quant_conv.", "post_quant_conv.")) for key in keys)
    errors = compare(config, dict(DIFFUSERS_SMALL, use_quant_conv=False, use_post_quant_conv=False))
    assert max(errors.values()) < TOLERANCE
