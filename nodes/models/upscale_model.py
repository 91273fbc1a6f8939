"""The UPSCALE_MODEL value: an upscaling network (upscaler.py) on a managed device, applied to IMAGEs in tiles.

As ComfyUI's ImageUpscaleWithModel: the image goes through the network in tiles of 512 pixels
overlapping by 32 (halved on out-of-memory, down to 128), each tile's output clamped to 0..1 as
spandrel does; an alpha channel is not given to the network but resized bilinearly beside it.
Tiles are blended as the autoencoder's (vae.py's tiling, with one tile shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from .checkpoint import load_weights, open_checkpoint
from .manager import ModuleHandle, manager_for
from .module_init import meta_module
from .upscaler import architecture, read_upscaler
from .vae import average_of_tilings

TILE, OVERLAP = 512, 32  # ComfyUI's tile size and overlap, in input pixels
MIN_TILE = 128  # the smallest tile tried on out-of-memory before giving up

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class UpscaleModel:
    """An upscaling network: IMAGE [B, H, W, C] to [B, H·scale, W·scale, C], in 0..1."""

    network: ModuleHandle
    scale: int
    architecture: str  # "ESRGAN" or "Compact"
    in_channels: int
    out_channels: int

    def __call__(self, pixels: Tensor) -> Tensor:
        """One tile [B, C, h, w] in 0..1 through the network, clamped to 0..1, float32 on the compute device."""
        network = self.network.use()
        return network(pixels.to(self.network.device, self.network.dtype)).float().clamp_(0, 1)

    @torch.no_grad()
    def upscale(self, image: Tensor, progress: Progress | None = None, tile: int = TILE) -> Tensor:
        """ImageUpscaleWithModel: the image upscaled in tiles (smaller ones on out-of-memory); float32 on the CPU."""
        alpha = image[..., 3:] if image.shape[-1] == 4 else None
        pixels = image[..., :3].movedim(-1, 1).float()
        while True:
            try:
                out = average_of_tilings(self, pixels, [(tile, tile)], OVERLAP, self.scale, progress)
                break
            except torch.OutOfMemoryError:
                tile //= 2
                if tile < MIN_TILE:
                    raise
        out = out.clamp(0, 1).movedim(1, -1).cpu()
        if alpha is not None:
            alpha = F.interpolate(alpha.movedim(-1, 1).float(), size=out.shape[1:3], mode="bilinear")
            out = torch.cat([out, alpha.movedim(1, -1)], dim=-1)
        return out


def upscale_model_from_state_dict(state_dict: Mapping[str, Tensor], name: str, device: torch.device) -> UpscaleModel:
    """The UPSCALE_MODEL of a state dict (any layout upscaler.py reads), float32, computing on `device`."""
    factory, config, weights = read_upscaler(state_dict, name)
    module = meta_module(factory, config)
    load_weights(module, weights.items(), torch.float32, name)
    return UpscaleModel(ModuleHandle(manager_for(device).register(module)), config.scale, architecture(state_dict),
                        config.in_channels, config.out_channels)


def load_upscale_model(path: Path, name: str, device: torch.device) -> UpscaleModel:
    """UpscaleModelLoader: the upscale model of a .pth/.safetensors file."""
    with open_checkpoint(path, name) as checkpoint:
        return upscale_model_from_state_dict(dict(checkpoint.items()), name, device)
