"""Our KL-f8 autoencoder against diffusers' AutoencoderKL with identical random weights, and its tiling."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL as DiffusersAutoencoderKL

from diffusers_layout import relative_error, twin, vae_to_diffusers
from sigmagraph.nodes.models.families import DEMO_VAE, SD_LATENT, SDXL_LATENT
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.vae import (SD_VAE, AutoencoderKL, image_from_pixels, pixels_from_image, tile_starts,
                                         tiled_map)

TOLERANCE = 1e-4
DIFFUSERS_SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)


@pytest.fixture(scope="module")
def sd_pair() -> tuple[AutoencoderKL, DiffusersAutoencoderKL]:
    ours = init_random_(empty_module(AutoencoderKL, SD_VAE), seed=0).eval()
    theirs = twin(DiffusersAutoencoderKL, vae_to_diffusers(ours.state_dict(), len(SD_VAE.ch_mult)),
                  **DIFFUSERS_SD_VAE)
    return ours, theirs


@pytest.fixture(scope="module")
def small_vae() -> AutoencoderKL:
    """The KL-f8 structure at a quarter of the width, for the tiling tests."""
    return init_random_(empty_module(AutoencoderKL, replace(SD_VAE, ch=32)), seed=1).eval()


@torch.no_grad()
def test_encode_matches_diffusers_posterior_mode(sd_pair) -> None:
    ours, theirs = sd_pair
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    latent = ours.encode(pixels)
    assert latent.shape == (1, 4, 8, 8)
    assert relative_error(latent, theirs.encode(pixels).latent_dist.mode()) < TOLERANCE


@torch.no_grad()
def test_decode_matches_diffusers(sd_pair) -> None:
    ours, theirs = sd_pair
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    pixels = ours.decode(latent)
    assert pixels.shape == (1, 3, 64, 64)
    assert relative_error(pixels, theirs.decode(latent).sample) < TOLERANCE


def test_tile_starts_cover_with_full_tiles_and_overlap() -> None:
    assert tile_starts(10, 4, 1) == [0, 3, 6]
    assert tile_starts(10, 4, 2) == [0, 2, 4, 6]
    assert tile_starts(10, 16, 2) == [0]
    for size, tile, overlap in [(64, 16, 4), (37, 8, 3), (100, 30, 0)]:
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == size
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        tile_starts(10, 4, 4)


@pytest.mark.parametrize("tile", [(5, 5), (3, 12), (12, 3)])
def test_blending_reassembles_a_pixelwise_function_exactly(tile: tuple[int, int]) -> None:
    # For a function without spatial context every tile is right, so the blend must reproduce the
    # whole: this checks placement and weight normalisation at seams, corners and shifted last tiles.
    x = torch.randn(2, 4, 11, 14, generator=torch.Generator().manual_seed(3))

    def upscale(t):
        return F.interpolate(t.tanh(), scale_factor=8, mode="nearest")

    assert (tiled_map(upscale, x, tile, overlap=2, scale=8) - upscale(x)).abs().max() < 1e-6


def test_blending_is_exact_away_from_seams_for_a_local_function() -> None:
    # A 3x3 conv sees one latent pixel beyond itself, so a tile's output is wrong (zero padding) only
    # on its outermost row or column along an edge shared with a neighbour; everywhere else the
    # blend of correct tiles must be exact, and the wrong pixels are down-weighted by the ramps.
    conv = init_random_(torch.nn.Conv2d(4, 3, 3, padding=1), seed=4)
    x = torch.randn(1, 4, 30, 26, generator=torch.Generator().manual_seed(5))

    def local(t):
        return F.interpolate(conv(t), scale_factor=8, mode="nearest")

    with torch.no_grad():
        error = (tiled_map(local, x, (12, 12), overlap=4, scale=8) - local(x)).abs().amax(dim=(0, 1))
        scale = local(x).abs().max()
    near_seam = torch.zeros(30, 26, dtype=torch.bool)
    for axis, size in ((0, 30), (1, 26)):
        for start in tile_starts(size, 12, 4):
            for wrong, edge in ((start, start), (start + 11, start + 12)):
                if 0 < edge < size:
                    near_seam.select(axis, wrong).fill_(True)
    near_seam = near_seam.repeat_interleave(8, 0).repeat_interleave(8, 1)
    assert error[~near_seam].max() < 1e-6 * scale
    assert 0 < error[near_seam].max() < 0.5 * scale


@pytest.mark.parametrize("direction", ["decode", "encode"])
def test_tiles_bound_memory_and_report_progress(small_vae: AutoencoderKL, direction: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Activations grow with the area of what the model is given, never with the image: so the
    # bound is the largest tile the model ever sees (one batch item, at most tile_size² pixels).
    seen, reports = [], []
    model_call = getattr(small_vae, direction)

    def recording(t):
        seen.append(tuple(t.shape))
        return model_call(t)

    monkeypatch.setattr(small_vae, direction, recording)
    latent = torch.randn(2, 4, 12, 10)
    with torch.no_grad():
        if direction == "decode":
            out = small_vae.decode_tiled(latent, tile_size=64, overlap=16, progress=lambda *r: reports.append(r))
            assert out.shape == (2, 3, 96, 80)
            largest = 8 * 8
        else:
            pixels = torch.rand(2, 3, 96, 80) * 2 - 1
            out = small_vae.encode_tiled(pixels, tile_size=64, overlap=16, progress=lambda *r: reports.append(r))
            assert out.shape == (2, 4, 12, 10)
            largest = 64 * 64
    assert max(h * w for _, _, h, w in seen) <= largest
    assert all(batch == 1 for batch, *_ in seen)
    assert reports == [(i, len(seen)) for i in range(1, len(seen) + 1)]


@torch.no_grad()
def test_tiles_covering_the_input_give_the_whole_result(small_vae: AutoencoderKL) -> None:
    # 1024-pixel tiles: even the half-size ones (64x256 latent pixels) cover a 96x80 image.
    latent = torch.randn(1, 4, 12, 10, generator=torch.Generator().manual_seed(6))
    assert relative_error(small_vae.decode_tiled(latent, tile_size=1024), small_vae.decode(latent)) < 1e-6
    pixels = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(7)) * 2 - 1
    assert relative_error(small_vae.encode_tiled(pixels, tile_size=1024), small_vae.encode(pixels)) < 1e-6


# Tiling changes what the mid-block attention and the group norms see, so a tiled result is an
# approximation everywhere, not only near seams. With random weights and stationary random inputs
# the deviation measured is 4-7% (mean and max, relative to the whole result) for 256-pixel tiles
# with 64-pixel overlap on a 320x288 image; the tests allow 10%.
TILED_TOLERANCE = 0.1


def mean_relative_error(actual: torch.Tensor, reference: torch.Tensor) -> float:
    return ((actual - reference).abs().mean() / reference.abs().mean()).item()


@torch.no_grad()
def test_tiled_decode_agrees_with_whole_decode(small_vae: AutoencoderKL) -> None:
    latent = torch.randn(1, 4, 40, 36, generator=torch.Generator().manual_seed(6))
    whole = small_vae.decode(latent)
    tiled = small_vae.decode_tiled(latent, tile_size=256, overlap=64)
    assert tiled.shape == whole.shape
    assert relative_error(tiled, whole) < TILED_TOLERANCE
    assert mean_relative_error(tiled, whole) < TILED_TOLERANCE


@torch.no_grad()
def test_tiled_encode_agrees_with_whole_encode(small_vae: AutoencoderKL) -> None:
    pixels = torch.rand(1, 3, 324, 291, generator=torch.Generator().manual_seed(7)) * 2 - 1
    whole = small_vae.encode(pixels)
    assert whole.shape == (1, 4, 40, 36)  # centre-cropped to 320x288
    tiled = small_vae.encode_tiled(pixels, tile_size=256, overlap=64)
    assert tiled.shape == whole.shape
    assert relative_error(tiled, whole) < TILED_TOLERANCE
    assert mean_relative_error(tiled, whole) < TILED_TOLERANCE


def test_latent_and_image_conventions() -> None:
    latent = torch.randn(1, 4, 8, 8)
    # The latent scale lives in the MODEL's latent format alone: SD's 0.18215, SDXL's 0.13025.
    assert SD_LATENT.scale_factor == 0.18215 and SDXL_LATENT.scale_factor == 0.13025
    assert torch.allclose(SDXL_LATENT.process_in(latent), latent * 0.13025)
    assert torch.allclose(SD_LATENT.process_out(SD_LATENT.process_in(latent)), latent)
    image = torch.rand(2, 16, 24, 3)
    pixels = pixels_from_image(image)
    assert pixels.shape == (2, 3, 16, 24) and pixels.min() >= -1 and pixels.max() <= 1
    assert torch.allclose(image_from_pixels(pixels), image)
    assert image_from_pixels(torch.full((1, 3, 2, 2), 5.0)).max() == 1.0


@torch.no_grad()
def test_demo_family_autoencoder_matches_diffusers_with_its_norm_groups() -> None:
    ours = init_random_(empty_module(AutoencoderKL, DEMO_VAE), seed=3).eval()
    theirs = twin(DiffusersAutoencoderKL, vae_to_diffusers(ours.state_dict(), len(DEMO_VAE.ch_mult)),
                  block_out_channels=(32, 32, 64, 64), layers_per_block=1, latent_channels=4, norm_num_groups=8,
                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert relative_error(ours.encode(pixels), theirs.encode(pixels).latent_dist.mode()) < TOLERANCE
    latent = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(6))
    assert relative_error(ours.decode(latent), theirs.decode(latent).sample) < TOLERANCE
