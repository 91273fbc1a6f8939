"""MASK nodes that build masks in the graph (ComfyUI's names and inputs): a solid mask, and pasting one mask onto another.

A MASK is [B, H, W] in 0..1; 1 marks the region to repaint. A rectangle to inpaint is
SolidMask(0) of the image's size with SolidMask(1) of the rectangle's size added at (x, y).
"""

from __future__ import annotations

import torch

from sigmagraph.engine import Combo, Float, Int, Socket, node

from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

# How MaskComposite combines the pasted mask with what lies beneath it; the logical ones round both to 0/1.
OPERATIONS = {
    "multiply": lambda below, above: below * above,
    "add": lambda below, above: below + above,
    "subtract": lambda below, above: below - above,
    "and": lambda below, above: (below.round().bool() & above.round().bool()).float(),
    "or": lambda below, above: (below.round().bool() | above.round().bool()).float(),
    "xor": lambda below, above: (below.round().bool() ^ above.round().bool()).float(),
}


@node(returns=["MASK"], category="mask", display_name="SolidMask")
def SolidMask(value: float = Float(1.0, min=0.0, max=1.0, step=0.01),
              width: int = Int(512, min=1, max=MAX_RESOLUTION, step=1),
              height: int = Int(512, min=1, max=MAX_RESOLUTION, step=1)):
    """A mask of one value everywhere."""
    return torch.full((1, height, width), value, dtype=torch.float32)


@node(returns=["MASK"], category="mask", display_name="MaskComposite")
def MaskComposite(destination=Socket("MASK"), source=Socket("MASK"),
                  x: int = Int(0, min=0, max=MAX_RESOLUTION, step=1), y: int = Int(0, min=0, max=MAX_RESOLUTION, step=1),
                  operation=Combo(list(OPERATIONS), default="multiply")):
    """`source` pasted onto `destination` with its top-left corner at (x, y), combined by `operation`, clamped to 0..1.

    The part of the source beyond the destination's edges is dropped; batches broadcast.
    """
    destination, source = destination.reshape(-1, *destination.shape[-2:]), source.reshape(-1, *source.shape[-2:])
    batch = torch.broadcast_shapes(destination.shape[:1], source.shape[:1])
    output = destination.expand(*batch, -1, -1).clone()
    height = max(0, min(source.shape[-2], output.shape[-2] - y))
    width = max(0, min(source.shape[-1], output.shape[-1] - x))
    region = output[:, y:y + height, x:x + width]
    output[:, y:y + height, x:x + width] = OPERATIONS[operation](region, source[:, :height, :width].to(region))
    return output.clamp(0.0, 1.0)
