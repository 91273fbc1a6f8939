"""ComfyUI's `comfy.taesd.taesd`: TAESD's layers (Bohan Ou's Tiny AutoEncoder for SD latents).

`Block` is a three-conv residual block; with `use_midblock_gn` (FLUX.2's TAEF2) a grouped-norm
1x1 branch is added to its input first. `Encoder`/`Decoder` build the f8 networks for a latent
channel count.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    """A 3x3 convolution keeping the size (strided when asked)."""
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """A soft clamp of the latents to about ±3."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """relu(conv(relu(conv(relu(conv(x))))) + skip(x)), the skip a 1x1 conv when the width changes."""

    def __init__(self, n_in: int, n_out: int, use_midblock_gn: bool = False):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if use_midblock_gn:
            wide = n_in * 4
            self.pool = nn.Sequential(nn.Conv2d(n_in, wide, 1, bias=False), nn.GroupNorm(4, wide), nn.ReLU(),
                                      nn.Conv2d(wide, n_in, 1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def Encoder(latent_channels: int = 4, use_midblock_gn: bool = False) -> nn.Sequential:  # noqa: N802 - ComfyUI's name
    """Image in 0..1 -> latents, three stride-2 stages."""
    deep = {"use_midblock_gn": use_midblock_gn}
    return nn.Sequential(
        conv(3, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64), Block(64, 64), Block(64, 64),
        conv(64, 64, stride=2, bias=False), Block(64, 64, **deep), Block(64, 64, **deep), Block(64, 64, **deep),
        conv(64, latent_channels),
    )


def Decoder(latent_channels: int = 4, use_midblock_gn: bool = False) -> nn.Sequential:  # noqa: N802 - ComfyUI's name
    """Latents -> image in 0..1, three 2x upsampling stages."""
    deep = {"use_midblock_gn": use_midblock_gn}
    return nn.Sequential(
        Clamp(), conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64, **deep), Block(64, 64, **deep), Block(64, 64, **deep),
        nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), conv(64, 3),
    )
