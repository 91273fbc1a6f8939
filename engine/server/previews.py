"""What a node hands to `ctx.progress(preview=...)`, as a picture the server can send as a binary frame."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image


def preview_image(value: Any) -> Image.Image | None:
    """A PIL image from a preview: a PIL image as is, or the first picture of an RGB array in 0..1.

    The samplers send a torch tensor [B, H, W, 3] (or [H, W, 3]) of floats; it becomes 8-bit by
    truncation, as IMAGE values do when saved. Anything else is no preview (None).
    """
    if isinstance(value, Image.Image):
        return value
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().float().cpu().numpy()
    if not isinstance(value, np.ndarray) or value.ndim not in (3, 4) or value.shape[-1] != 3 or value.size == 0:
        return None
    picture = value[0] if value.ndim == 4 else value
    return Image.fromarray(np.clip(255.0 * picture.astype(np.float32), 0, 255).astype(np.uint8), "RGB")
