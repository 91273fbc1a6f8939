"""ComfyUI's `comfy_extras.nodes_mask`: SolidMask, MaskComposite, and `composite`, the paste used by its image nodes."""

import torch
import torch.nn.functional as F

from comfy.utils import repeat_to_batch_size
from sigmagraph.compat import core_nodes as _core_nodes

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())


def composite(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, mask: torch.Tensor | None = None,
              multiplier: int = 8, resize_source: bool = False) -> torch.Tensor:
    """Pastes source [B, C, h, w] onto destination [B, C, H, W] in place, its corner at (x, y) / multiplier.

    x and y are in pixels; `multiplier` is the pixels per element (8 for latents, 1 for images).
    The mask (any [..., h', w'], resized to the source) blends source over destination; the
    source is repeated to the destination's batch, and whatever falls outside is cut off.
    """
    source = source.to(destination.device)
    if resize_source:
        source = F.interpolate(source, size=destination.shape[-2:], mode="bilinear")
    source = repeat_to_batch_size(source, destination.shape[0])
    if mask is None:
        mask = torch.ones_like(source)
    else:
        mask = F.interpolate(mask.to(destination.device).reshape(-1, 1, *mask.shape[-2:]).float(),
                             size=source.shape[-2:], mode="bilinear")
        mask = repeat_to_batch_size(mask, source.shape[0])
    left, top = x // multiplier, y // multiplier
    # The part of the source over the destination: [src_top:src_bottom, src_left:src_right].
    src_top, src_left = max(0, -top), max(0, -left)
    src_bottom = min(source.shape[-2], destination.shape[-2] - top)
    src_right = min(source.shape[-1], destination.shape[-1] - left)
    if src_bottom <= src_top or src_right <= src_left:
        return destination
    region = (..., slice(top + src_top, top + src_bottom), slice(left + src_left, left + src_right))
    visible = (..., slice(src_top, src_bottom), slice(src_left, src_right))
    blend = mask[visible]
    destination[region] = blend * source[visible] + (1.0 - blend) * destination[region]
    return destination
