# custom_nodes/palette_pack/__init__.py
import torch

from sigmagraph.engine import Combo, Float, Hidden, Int, NodeOutput, Socket, SocketType, String, node

# A new socket type: the editor colours PALETTE sockets with it, and links check it.
SOCKET_TYPES = [SocketType(name="PALETTE", color="#e0a030", description="a list of RGB colours")]


@node(returns=["PALETTE"], category="palette")
def MakePalette(colors: str = String("ff0000, 00ff00, 0000ff", tooltip="hex colours, comma-separated")):
    """Parses hex colours into a [N, 3] tensor of values in 0..1."""
    hexes = [c.strip().lstrip("#") for c in colors.split(",") if c.strip()]
    if not hexes or any(len(h) != 6 for h in hexes):
        raise ValueError(f"colors must be 6-digit hex values like ff8800, got {colors!r}")
    return torch.tensor([[int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)] for h in hexes])


@node(returns=["IMAGE"], category="palette")
def PosterizeToPalette(images=Socket("IMAGE"), palette=Socket("PALETTE"),
                       strength: float = Float(1.0, min=0.0, max=1.0, step=0.05)):
    """Moves every pixel towards the nearest palette colour."""
    distances = torch.cdist(images.reshape(-1, 3), palette.to(images))
    nearest = palette.to(images)[distances.argmin(dim=1)].reshape(images.shape)
    return images + (nearest - images) * strength

from .blur import DescribeImage, RepeatedBlur
from . import midpoint, schedule
from .swatch import PaletteImage
WEB_DIRECTORY = "web"
