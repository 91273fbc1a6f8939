"""VAE nodes: images to latents and back, whole or in tiles, and inpainting input (ComfyUI's names and inputs).

LATENTs hold the autoencoder's latents unscaled; the MODEL scales them for sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sigmagraph.engine import Hidden, Int, RunContext, Socket, node

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack


def _tile_overlap(tile_size: int, overlap: int) -> int:
    """ComfyUI's rule: the overlap is at most a quarter of the tile."""
    return min(overlap, tile_size // 4)


@node(returns=["IMAGE"], category="latent", display_name="VAE Decode")
def VAEDecode(samples=Socket("LATENT"), vae=Socket("VAE")):
    """Decodes latents into images."""
    return vae.decode(samples["samples"])


@node(returns=["LATENT"], category="latent", display_name="VAE Encode")
def VAEEncode(pixels=Socket("IMAGE"), vae=Socket("VAE")):
    """Encodes images into latents (centre-cropped to a multiple of 8 pixels)."""
    return {"samples": vae.encode(pixels)}


@node(returns=["IMAGE"], category="_for_testing", display_name="VAE Decode (Tiled)")
def VAEDecodeTiled(samples=Socket("LATENT"), vae=Socket("VAE"), tile_size: int = Int(512, min=64, max=4096, step=32),
                   overlap: int = Int(64, min=0, max=4096, step=32), ctx: RunContext = Hidden.CONTEXT):
    """Decodes in overlapping tiles (sizes in pixels): memory bounded by the tile, not the image."""
    return vae.decode_tiled(samples["samples"], tile_size, _tile_overlap(tile_size, overlap), ctx.progress)


@node(returns=["LATENT"], category="_for_testing", display_name="VAE Encode (Tiled)")
def VAEEncodeTiled(pixels=Socket("IMAGE"), vae=Socket("VAE"), tile_size: int = Int(512, min=64, max=4096, step=64),
                   overlap: int = Int(64, min=0, max=4096, step=32), ctx: RunContext = Hidden.CONTEXT):
    """Encodes in overlapping tiles (sizes in pixels): memory bounded by the tile, not the image."""
    return {"samples": vae.encode_tiled(pixels, tile_size, _tile_overlap(tile_size, overlap), ctx.progress)}


def inpaint_pixels(pixels: Tensor, mask: Tensor, grow_mask_by: int, multiple: int = 8) -> tuple[Tensor, Tensor]:
    """(pixels grey where the mask is, noise mask [B, 1, H, W] grown by `grow_mask_by` pixels).

    As ComfyUI: the image is centre-cropped to a multiple of 8, the mask resized to it
    (bilinear) and rounded; masked pixels become 0.5 grey so the encoder sees no trace of them;
    the noise mask is the rounded mask dilated by a grow_mask_by-wide square, so the repainted
    region's latent border blends in.
    """
    height, width = pixels.shape[1:3]
    crop_height, crop_width = height // multiple * multiple, width // multiple * multiple
    top, left = (height % multiple) // 2, (width % multiple) // 2
    mask = F.interpolate(mask.reshape(-1, 1, *mask.shape[-2:]).float(), size=(height, width), mode="bilinear")
    pixels = pixels[:, top:top + crop_height, left:left + crop_width, :3].clone()
    mask = mask[..., top:top + crop_height, left:left + crop_width].round()
    if grow_mask_by:
        kernel = torch.ones(1, 1, grow_mask_by, grow_mask_by)
        grown = F.conv2d(mask, kernel, padding=math.ceil((grow_mask_by - 1) / 2)).clamp(0, 1)
        mask_out = grown[..., :crop_height, :crop_width]
    else:
        mask_out = mask
    keep = (1.0 - mask).squeeze(1)[..., None]
    return (pixels - 0.5) * keep + 0.5, mask_out.round()


@node(returns=["LATENT"], category="latent/inpaint", display_name="VAE Encode (for Inpainting)")
def VAEEncodeForInpaint(pixels=Socket("IMAGE"), vae=Socket("VAE"), mask=Socket("MASK"),
                        grow_mask_by: int = Int(6, min=0, max=64, step=1)):
    """Encodes an image for inpainting: the masked area greyed out, and the mask as the latent's noise mask."""
    masked, noise_mask = inpaint_pixels(pixels, mask, grow_mask_by, vae.downscale)
    return {"samples": vae.encode(masked), "noise_mask": noise_mask}
