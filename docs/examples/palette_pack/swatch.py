# custom_nodes/palette_pack/swatch.py
import torch

from sigmagraph.engine import Int, Socket, node


@node(returns=["IMAGE"], category="palette")
def PaletteImage(palette=Socket("PALETTE"), size: int = Int(32, min=1, max=512)):
    """One square of each colour, side by side."""
    return palette[:, None, None, :].expand(-1, size, size, -1).movedim(0, 1).reshape(1, size, -1, 3)
