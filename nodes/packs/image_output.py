"""Output nodes that write images: SaveImage and SaveImageAdvanced (output folder), PreviewImage and
ImageCompare (temp folder), SaveImageWebsocket (to the client, no file).

PNGs carry the run's workflow in tEXt chunks `prompt` (API format) and one chunk per
`extra_pnginfo` key (`workflow`, the UI format), like ComfyUI, so they can be dropped back onto
the canvas or run with `sigmagraph run image.png`. Names never overwrite an existing file.
"""

from __future__ import annotations

import json
import secrets
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sigmagraph.engine import Combo, Hidden, NodeOutput, RunContext, Socket, String, node
from sigmagraph.engine.paths import next_output_path

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type: grey, RGB, RGBA


def image_to_pil(image: torch.Tensor) -> Image.Image:
    """A [H, W, C] float image in 0..1 to 8-bit, truncating as ComfyUI does (not rounding)."""
    array = np.clip(255.0 * image.detach().float().cpu().numpy(), 0, 255).astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def png_texts(prompt: dict | None, extra_pnginfo: dict | None) -> dict[str, str]:
    """The workflow's tEXt chunks: `prompt` and one per extra_pnginfo key, as JSON."""
    texts = {} if prompt is None else {"prompt": json.dumps(prompt)}
    return texts | {key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()}


def png_metadata(prompt: dict | None, extra_pnginfo: dict | None) -> PngInfo:
    """tEXt chunks: `prompt` and one per extra_pnginfo key."""
    info = PngInfo()
    for key, text in png_texts(prompt, extra_pnginfo).items():
        info.add_text(key, text)
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


@node(returns=[("IMAGE", "images")], category="image", output_node=True, display_name="Save Image")
def SaveImage(images=Socket("IMAGE"), filename_prefix: str = String("ComfyUI", tooltip="may include subfolders"),
              prompt=Hidden.PROMPT, extra_pnginfo=Hidden.EXTRA_PNGINFO, ctx=Hidden.CONTEXT):
    """Saves images as PNG files in the output folder, with the workflow embedded; passes them on."""
    folder = ctx.config.output_dir
    return NodeOutput((images,), ui={"images": save_images(images, folder, filename_prefix, "output",
                                                           png_metadata(prompt, extra_pnginfo))})


def preview_images(images: torch.Tensor, ctx: RunContext, name: str, metadata: PngInfo) -> list[dict[str, Any]]:
    """Writes images to the temporary folder as `<name>_temp_<random>_00001_.png`...; returns their UI entries."""
    return save_images(images, ctx.config.temp_dir, f"{name}_temp_{secrets.token_hex(3)}", "temp", metadata)


@node(returns=[("IMAGE", "images")], category="image", output_node=True, display_name="Preview Image")
def PreviewImage(images=Socket("IMAGE"), prompt=Hidden.PROMPT, extra_pnginfo=Hidden.EXTRA_PNGINFO,
                 ctx: RunContext = Hidden.CONTEXT):
    """Shows images without keeping them (they are written to the temporary folder); passes them on."""
    return NodeOutput((images,), ui={"images": preview_images(images, ctx, "ComfyUI",
                                                              png_metadata(prompt, extra_pnginfo))})


@node(category="api node/image/save", output_node=True, always_run=True)
def SaveImageWebsocket(images=Socket("IMAGE"), ctx: RunContext = Hidden.CONTEXT):
    """Sends each image to the client that queued the prompt as a binary PNG frame, writing no file.

    The node of ComfyUI's websocket image example: a client collects the binary frames that arrive
    while this node is executing, each one image (bytes 8 onwards are the PNG).
    """
    for index, image in enumerate(images):
        ctx.send_image(image)
        ctx.progress(index + 1, len(images))


@node(category="image", output_node=True, display_name="Image Compare")
def ImageCompare(image_a=Socket("IMAGE", optional=True), image_b=Socket("IMAGE", optional=True),
                 ctx: RunContext = Hidden.CONTEXT):
    """Compares two images side by side with a slider (previews a_images and b_images, without metadata).

    ComfyUI's `compare_view` input is the canvas widget holding the slider; it carries no value here.
    """
    def preview(images: torch.Tensor | None, name: str) -> list[dict[str, Any]]:
        return [] if images is None or len(images) == 0 else preview_images(images, ctx, name, PngInfo())

    return NodeOutput(ui={"a_images": preview(image_a, "comfy.compare.a"),
                          "b_images": preview(image_b, "comfy.compare.b")})


def png16_bytes(pixels: np.ndarray, texts: dict[str, str]) -> bytes:
    """A 16-bit PNG (grey, RGB or RGBA) of [H, W, C] uint16 pixels, with tEXt chunks (PIL writes no 16-bit RGB)."""
    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)  # PNG samples are big-endian
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()  # filter type 0 on every row
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, PNG_COLOR_TYPES[channels], 0, 0, 0))]
    chunks += [(b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1", "replace"))
               for key, text in texts.items()]
    chunks += [(b"IDAT", zlib.compress(raw, 4)), (b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(struct.pack(">I", len(data)) + kind + data
                                    + struct.pack(">I", zlib.crc32(kind + data)) for kind, data in chunks)


def save_png16(images: torch.Tensor, folder: Path, prefix: str, texts: dict[str, str]) -> list[dict[str, Any]]:
    """Writes each image as a new 16-bit PNG (values truncated to 0..65535, as ComfyUI); returns the UI entries."""
    saved = []
    for image in images:
        path = next_output_path(folder, prefix, "png")
        pixels = (image.detach().float().cpu() * 65535.0).clamp(0, 65535).to(torch.int32).numpy().astype(np.uint16)
        path.write_bytes(png16_bytes(pixels.reshape(*pixels.shape[:2], -1), texts))
        subfolder = path.parent.relative_to(folder.resolve()).as_posix()
        saved.append({"filename": path.name, "subfolder": "" if subfolder == "." else subfolder, "type": "output"})
    return saved


@node(returns=[("IMAGE", "images")], category="image", output_node=True, display_name="Save Image (Advanced)",
      description="Saves the input images to your ComfyUI output directory.",
      inputs=[Combo(["png"], name="format", dynamic={"png": ("format.bit_depth", "format.input_color_space")},
                    tooltip="The file format in which to save the image."),
              Combo(["8-bit", "16-bit"], default="8-bit", name="format.bit_depth"),
              Combo(["sRGB"], default="sRGB", name="format.input_color_space")])
def SaveImageAdvanced(images=Socket("IMAGE", tooltip="The images to save."),
                      filename_prefix: str = String("ComfyUI", tooltip="may include subfolders"),
                      prompt=Hidden.PROMPT, extra_pnginfo=Hidden.EXTRA_PNGINFO, ctx: RunContext = Hidden.CONTEXT,
                      **options: str):
    """Saves images as 8- or 16-bit PNG files in the output folder, with the workflow embedded; passes them on.

    PNG pixels are written as given (sRGB). ComfyUI's EXR and AVIF formats are not available here.
    """
    folder = ctx.config.output_dir
    if options["format.bit_depth"] == "16-bit":
        saved = save_png16(images, folder, filename_prefix, png_texts(prompt, extra_pnginfo))
    else:
        saved = save_images(images, folder, filename_prefix, "output", png_metadata(prompt, extra_pnginfo))
    return NodeOutput((images,), ui={"images": saved})
