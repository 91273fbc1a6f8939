"""Output nodes that write images: SaveImage (output folder) and PreviewImage (temp folder).

PNGs carry the run's workflow in tEXt chunks `prompt` (API format) and one chunk per
`extra_pnginfo` key (`workflow`, the UI format), like ComfyUI, so they can be dropped back onto
the canvas or run with `sigmagraph run image.png`. Names never overwrite an existing file.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sigmagraph.engine import Hidden, NodeOutput, RunContext, Socket, String, node
from sigmagraph.engine.paths import next_output_path

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack


def image_to_pil(image: torch.Tensor) -> Image.Image:
    """A [H, W, C] float image in 0..1 to 8-bit, truncating as ComfyUI does (not rounding)."""
    array = np.clip(255.0 * image.detach().float().cpu().numpy(), 0, 255).astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def png_metadata(prompt: dict | None, extra_pnginfo: dict | None) -> PngInfo:
    """tEXt chunks: `prompt` and one per extra_pnginfo key."""
    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def save_images(images: torch.Tensor, folder: Path, prefix: str, kind: str, metadata: PngInfo) -> list[dict[str, Any]]:
    """Writes each image as a new PNG; returns ComfyUI's [{filename, subfolder, type}] list."""
    saved = []
    for image in images:
        path = next_output_path(folder, prefix, "png")
        image_to_pil(image).save(path, pnginfo=metadata, compress_level=4)
        subfolder = path.parent.relative_to(folder.resolve()).as_posix()
        saved.append({"filename": path.name, "subfolder": "" if subfolder == "." else subfolder, "type": kind})
    return saved


@node(category="image", output_node=True, display_name="Save Image")
def SaveImage(images=Socket("IMAGE"), filename_prefix: str = String("ComfyUI", tooltip="may include subfolders"),
              prompt=Hidden.PROMPT, extra_pnginfo=Hidden.EXTRA_PNGINFO, ctx=Hidden.CONTEXT):
    """Saves images as PNG files in the output folder, with the workflow embedded."""
    folder = ctx.config.output_dir
    return NodeOutput(ui={"images": save_images(images, folder, filename_prefix, "output",
                                                png_metadata(prompt, extra_pnginfo))})


@node(category="image", output_node=True, display_name="Preview Image")
def PreviewImage(images=Socket("IMAGE"), prompt=Hidden.PROMPT, extra_pnginfo=Hidden.EXTRA_PNGINFO,
                 ctx: RunContext = Hidden.CONTEXT):
    """Shows images without keeping them: they are written to the temporary folder."""
    prefix = "ComfyUI_temp_" + secrets.token_hex(3)
    return NodeOutput(ui={"images": save_images(images, ctx.config.temp_dir, prefix, "temp",
                                                png_metadata(prompt, extra_pnginfo))})
