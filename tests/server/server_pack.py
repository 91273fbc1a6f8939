"""Test nodes for the server: an image maker with previews, and a node that tries to end the process."""

from __future__ import annotations

import time

from PIL import Image

from sigmagraph.engine import Hidden, Int, NodeOutput, Socket, SocketType, String, node
from sigmagraph.engine.paths import next_output_path

SOCKET_TYPES = [SocketType(name="NUMBER", color="#88cc88")]  # also in testing_pack; loads in either order


@node(category="test", output_node=True)
def Picture(value=Socket("NUMBER"), steps: int = Int(4, min=1, max=1000), delay_ms: int = Int(0, min=0, max=1000),
            prefix: str = String("picture"), ctx=Hidden.CONTEXT):
    """One preview per step, then a 16x16 PNG whose grey level is the value."""
    level = int(value) % 256
    for step in range(steps):
        time.sleep(delay_ms / 1000)
        ctx.progress(step + 1, steps, preview=Image.new("RGB", (64, 64), (level, step % 256, 0)))
    path = next_output_path(ctx.config.output_dir, prefix, "png")
    Image.new("RGB", (16, 16), (level, level, level)).save(path)
    return NodeOutput(ui={"images": [{"filename": path.name, "subfolder": "", "type": "output"}]})


@node(returns=["NUMBER"], category="test")
def Quit(x=Socket("NUMBER")):
    """Calls sys.exit(): the worker must survive it."""
    raise SystemExit(3)
