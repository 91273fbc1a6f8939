"""A node pack for the browser tests: an image source that sends sampling-style previews, and an
editor extension (extension/*.js, served through GET /extensions)."""

from __future__ import annotations

import time

import torch
from PIL import Image

from sigmagraph.engine import Combo, Float, Hidden, Int, node
from sigmagraph.nodes.packs.files import IMAGE_EXTENSIONS, input_files

WEB_DIRECTORY = "extension"


@node(returns=["IMAGE"], category="test")
def SolidImage(red: float = Float(0.9, min=0.0, max=1.0), steps: int = Int(4, min=1, max=50),
               ctx=Hidden.CONTEXT):
    """A 64×64 image of one colour, reached in `steps` steps that each report progress and a preview."""
    for i in range(steps):
        time.sleep(0.15)
        level = int(255 * red * (i + 1) / steps)
        ctx.progress(i + 1, steps, preview=Image.new("RGB", (64, 64), (level, 60, 120)))
    image = torch.empty(1, 64, 64, 3)
    image[..., 0], image[..., 1], image[..., 2] = red, 60 / 255, 120 / 255
    return image



@node(returns=["IMAGE"], category="test")
def PickedImage(image=Combo(input_files(IMAGE_EXTENSIONS), image_upload=True),
                strength: float = Float(1.0, min=0.0, max=1.0)):
    """An 8×8 image, red if its file's name starts so, else blue, dimmed by `strength`.

    Its combo lists the input folder with an upload button, as LoadImage's does (UI-format rules, model refresh).
    """
    pixels = torch.zeros(1, 8, 8, 3)
    pixels[..., 0 if image.startswith("red") else 2] = strength
    return pixels
