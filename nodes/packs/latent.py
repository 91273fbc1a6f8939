"""LATENT nodes: empty latents and latent batch/size operations."""

from __future__ import annotations

import torch

from sigmagraph.engine import Int, node

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

SIZE = dict(min=16, max=16384, step=8)


@node(returns=["LATENT"], category="latent", display_name="Empty Latent Image")
def EmptyLatentImage(width: int = Int(512, **SIZE), height: int = Int(512, **SIZE),
                     batch_size: int = Int(1, min=1, max=4096)):
    """A batch of zero latents for a width x height image (4 channels, 1/8 of the size)."""
    return {"samples": torch.zeros([batch_size, 4, height // 8, width // 8])}
