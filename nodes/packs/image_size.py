"""Image-size nodes with ComfyUI's names, inputs and rounding: reading, choosing and changing sizes.

ResizeImageMaskNode is ComfyUI's V3 node with a dynamic combo: `resize_type` picks a way to
resize and brings its own inputs, named "resize_type.<input>" as in API-format workflows
("resize_type.width", "resize_type.megapixels"...). It takes an IMAGE [B, H, W, C] or a MASK
[B, H, W] and gives the same kind back.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from torch import Tensor

from sigmagraph.engine import Combo, Float, Int, Socket, node

from ..resize import CROP_METHODS, IMAGE_METHODS, resize
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

MEGAPIXEL = 1024 * 1024  # ComfyUI's megapixel
IMAGE_OR_MASK = "IMAGE,MASK"
ASPECT_RATIOS = {"1:1 (Square)": (1, 1), "3:2 (Photo)": (3, 2), "4:3 (Standard)": (4, 3),
                 "16:9 (Widescreen)": (16, 9), "21:9 (Ultrawide)": (21, 9), "2:3 (Portrait Photo)": (2, 3),
                 "3:4 (Portrait Standard)": (3, 4), "9:16 (Portrait Widescreen)": (9, 16)}
Size = tuple[int, int]  # width, height


@node(returns=[("INT", "width"), ("INT", "height"), ("INT", "batch_size")], category="image",
      display_name="Get Image Size")
def GetImageSize(image=Socket("IMAGE")):
    """The width, height and batch size of the image."""
    return image.shape[2], image.shape[1], image.shape[0]


@node(returns=[("INT", "width"), ("INT", "height")], category="utils", display_name="Resolution Selector")
def ResolutionSelector(aspect_ratio=Combo(list(ASPECT_RATIOS), default="1:1 (Square)"),
                       megapixels: float = Float(1.0, min=0.1, max=16.0, step=0.1),
                       multiple: int = Int(8, min=8, max=128, step=4)):
    """A width and height of this aspect ratio and about this many megapixels, each rounded to a multiple."""
    w_ratio, h_ratio = ASPECT_RATIOS[aspect_ratio]
    scale = math.sqrt(megapixels * MEGAPIXEL / (w_ratio * h_ratio))
    return round(w_ratio * scale / multiple) * multiple, round(h_ratio * scale / multiple) * multiple


def _resize(pixels: Tensor, size: Size, method: str, crop: str = "disabled") -> Tensor:
    """An IMAGE [B, H, W, C] or MASK [B, H, W] resized to (width, height)."""
    is_image = pixels.ndim == 4
    batch = pixels.movedim(-1, 1) if is_image else pixels.unsqueeze(1)
    out = resize(batch, size[0], size[1], method, crop)
    return out.movedim(1, -1) if is_image else out.squeeze(1)


def _size(pixels: Tensor) -> Size:
    return pixels.shape[2] if pixels.ndim == 4 else pixels.shape[-1], pixels.shape[1]


def total_pixels_size(size: Size, pixels: float, steps: int = 1) -> Size:
    """The size of the same aspect ratio with about `pixels` pixels, each side rounded to a multiple of `steps`."""
    scale = math.sqrt(pixels / (size[0] * size[1]))
    return round(size[0] * scale / steps) * steps, round(size[1] * scale / steps) * steps


@node(returns=["IMAGE"], category="image/upscaling", display_name="Scale Image to Total Pixels")
def ImageScaleToTotalPixels(image=Socket("IMAGE"), upscale_method=Combo(IMAGE_METHODS),
                            megapixels: float = Float(1.0, min=0.01, max=16.0, step=0.01),
                            resolution_steps: int = Int(1, min=1, max=256)):
    """Resizes to about `megapixels` (of 1024 x 1024 pixels), keeping the aspect ratio; sides are multiples of steps."""
    return _resize(image, total_pixels_size(_size(image), megapixels * MEGAPIXEL, resolution_steps), upscale_method)


def dimensions_size(size: Size, width: int, height: int) -> Size:
    """(width, height), where a 0 side follows the aspect ratio (ComfyUI's "scale dimensions")."""
    if width == 0:
        return max(1, round(size[0] * height / size[1])), height
    if height == 0:
        return width, max(1, round(size[1] * width / size[0]))
    return width, height


def edge_size(size: Size, length: int, longer: bool) -> Size:
    """The size whose longer (or shorter) side is `length`, keeping the aspect ratio."""
    width, height = size
    if width == height:
        return length, length
    if (height > width) == longer:
        return round(width / height * length), length
    return length, round(height / width * length)


def _scale_dimensions(pixels: Tensor, width: int, height: int, method: str, crop: str = "disabled") -> Tensor:
    if width == 0 and height == 0:
        return pixels
    return _resize(pixels, dimensions_size(_size(pixels), width, height), method, crop)


def scale_to_multiple_cover(pixels: Tensor, multiple: int, method: str) -> Tensor:
    """Scales up just enough to cover the size rounded down to a multiple, then crops the centre to it."""
    width, height = _size(pixels)
    target_w, target_h = width // multiple * multiple, height // multiple * multiple
    if multiple <= 1 or target_w == 0 or target_h == 0 or (target_w, target_h) == (width, height):
        return pixels
    if target_w / width >= target_h / height:
        scaled = (target_w, max(target_h, math.ceil(height * target_w / width)))
    else:
        scaled = (max(target_w, math.ceil(width * target_h / height)), target_h)
    out = _resize(pixels, scaled, method)
    x, y = (scaled[0] - target_w) // 2, (scaled[1] - target_h) // 2
    return out[:, y:y + target_h, x:x + target_w]


RESIZE_TYPES: dict[str, Callable[[Tensor, dict[str, Any], str], Tensor]] = {
    "scale dimensions": lambda p, o, m: _scale_dimensions(p, o["resize_type.width"], o["resize_type.height"], m,
                                                          o["resize_type.crop"]),
    "scale by multiplier": lambda p, o, m: _resize(
        p, (round(_size(p)[0] * o["resize_type.multiplier"]), round(_size(p)[1] * o["resize_type.multiplier"])), m),
    "scale longer dimension": lambda p, o, m: _resize(p, edge_size(_size(p), o["resize_type.longer_size"], True), m),
    "scale shorter dimension": lambda p, o, m: _resize(p, edge_size(_size(p), o["resize_type.shorter_size"], False), m),
    "scale width": lambda p, o, m: _scale_dimensions(p, o["resize_type.width"], 0, m),
    "scale height": lambda p, o, m: _scale_dimensions(p, 0, o["resize_type.height"], m),
    "scale total pixels": lambda p, o, m: _resize(
        p, total_pixels_size(_size(p), int(o["resize_type.megapixels"] * MEGAPIXEL)), m),
    "match size": lambda p, o, m: _resize(p, _size(o["resize_type.match"]), m, o["resize_type.crop"]),
    "scale to multiple": lambda p, o, m: scale_to_multiple_cover(p, o["resize_type.multiple"], m),
}
RESIZE_INPUTS = {  # the inputs each resize type brings, in the order of the canvas widgets
    "scale dimensions": ("resize_type.width", "resize_type.height", "resize_type.crop"),
    "scale by multiplier": ("resize_type.multiplier",),
    "scale longer dimension": ("resize_type.longer_size",),
    "scale shorter dimension": ("resize_type.shorter_size",),
    "scale width": ("resize_type.width",),
    "scale height": ("resize_type.height",),
    "scale total pixels": ("resize_type.megapixels",),
    "match size": ("resize_type.match", "resize_type.crop"),
    "scale to multiple": ("resize_type.multiple",),
}
SIDE = dict(min=0, max=MAX_RESOLUTION, step=1)


@node(returns=[(IMAGE_OR_MASK, "resized")], category="transform", display_name="Resize Image/Mask",
      description="Resize an image or mask using various scaling methods.",
      inputs=[Combo(list(RESIZE_TYPES), name="resize_type", dynamic=RESIZE_INPUTS),
              Int(512, name="resize_type.width", **SIDE), Int(512, name="resize_type.height", **SIDE),
              Combo(CROP_METHODS, default="center", name="resize_type.crop"),
              Float(1.0, name="resize_type.multiplier", min=0.01, max=8.0, step=0.01),
              Int(512, name="resize_type.longer_size", **SIDE), Int(512, name="resize_type.shorter_size", **SIDE),
              Float(1.0, name="resize_type.megapixels", min=0.01, max=16.0, step=0.01),
              Socket(IMAGE_OR_MASK, name="resize_type.match"),
              Int(8, name="resize_type.multiple", min=1, max=MAX_RESOLUTION, step=1),
              Combo(IMAGE_METHODS, default="area", name="scale_method")])
def ResizeImageMaskNode(input=Socket(IMAGE_OR_MASK), **options: Any):
    """Resizes an image or mask: to a size, by a factor, by one side, to a pixel count, a multiple or another's size."""
    return RESIZE_TYPES[options["resize_type"]](input, options, options["scale_method"])
