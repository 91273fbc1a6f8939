"""IMAGE nodes: loading images and masks from the input folder, resizing, inverting, batching (ComfyUI's names).

An IMAGE is [B, H, W, 3] in 0..1, a MASK [B, H, W] in 0..1 (1 = the masked region: for an image
with transparency, its transparent part).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence
from torch import Tensor

from sigmagraph.engine import Combo, Float, Hidden, Int, RunContext, Socket, node

from ..resize import CROP_METHODS, IMAGE_METHODS, resize
from .files import IMAGE_EXTENSIONS, input_file_fingerprint, input_files, input_path
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

EMPTY_MASK_SIZE = 64  # the mask of an image without alpha: zeros of this size, as ComfyUI
SINGLE_FRAME_FORMATS = {"MPO"}  # multi-picture JPEGs: the extra frames are previews, not a batch
# BatchImagesNode's grown inputs images.image0 ... (ComfyUI shows two; templates may link only the first)
MAX_BATCH_IMAGES = 50


def _readable(frame: Image.Image) -> Image.Image:
    """The frame upright (EXIF orientation), with 32-bit integer pixels brought to the 8-bit range."""
    frame = ImageOps.exif_transpose(frame)
    return frame.point(lambda value: value * (1 / 255)) if frame.mode == "I" else frame


def _channel(frame: Image.Image, band: str) -> Tensor:
    return torch.from_numpy(np.asarray(frame.getchannel(band), dtype=np.float32) / 255.0)


def load_image(path: Path) -> tuple[Tensor, Tensor]:
    """(IMAGE, MASK) of an image file: every frame of the first frame's size, mask = 1 - alpha."""
    images, masks = [], []
    with Image.open(path) as file:
        frames = [file] if file.format in SINGLE_FRAME_FORMATS else ImageSequence.Iterator(file)
        for frame in frames:
            frame = _readable(frame)
            rgb = frame.convert("RGB")
            if images and rgb.size != (images[0].shape[1], images[0].shape[0]):
                continue
            images.append(torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0))
            if "A" in frame.getbands():
                masks.append(1.0 - _channel(frame, "A"))
            elif frame.mode == "P" and "transparency" in frame.info:
                masks.append(1.0 - _channel(frame.convert("RGBA"), "A"))
            else:
                masks.append(torch.zeros(EMPTY_MASK_SIZE, EMPTY_MASK_SIZE))
    return torch.stack(images), torch.stack(masks)


@node(returns=["IMAGE", "MASK"], category="image", display_name="Load Image", fingerprint=input_file_fingerprint("image"))
def LoadImage(image=Combo(input_files(IMAGE_EXTENSIONS), files_in="input", image_upload=True),
              ctx: RunContext = Hidden.CONTEXT):
    """Loads an image from the input folder; its mask is where it is transparent (1 - alpha)."""
    return load_image(input_path(ctx.config, image))


@node(returns=["MASK"], category="mask", display_name="Load Image (as Mask)", fingerprint=input_file_fingerprint("image"))
def LoadImageMask(image=Combo(input_files(IMAGE_EXTENSIONS), files_in="input", image_upload=True),
                  channel=Combo(["alpha", "red", "green", "blue"], default="alpha"), ctx: RunContext = Hidden.CONTEXT):
    """One channel of an image as a mask (alpha is inverted: transparent = 1)."""
    with Image.open(input_path(ctx.config, image)) as file:
        frame = _readable(file)
        if frame.getbands() != ("R", "G", "B", "A"):
            frame = frame.convert("RGBA")
        band = channel[0].upper()
        mask = _channel(frame, band)
    return (1.0 - mask if band == "A" else mask)[None]


@node(returns=["IMAGE"], category="image/upscaling", display_name="Upscale Image")
def ImageScale(image=Socket("IMAGE"), upscale_method=Combo(IMAGE_METHODS, default="nearest-exact"),
               width: int = Int(512, min=0, max=MAX_RESOLUTION, step=1),
               height: int = Int(512, min=0, max=MAX_RESOLUTION, step=1), crop=Combo(CROP_METHODS, default="disabled")):
    """Resizes images (0 for one side keeps the aspect ratio; both 0: unchanged)."""
    if width == 0 and height == 0:
        return image
    old_height, old_width = image.shape[1:3]
    if width == 0:
        width = max(1, round(old_width * height / old_height))
    elif height == 0:
        height = max(1, round(old_height * width / old_width))
    return resize(image.movedim(-1, 1), width, height, upscale_method, crop).movedim(1, -1)


@node(returns=["IMAGE"], category="image/upscaling", display_name="Upscale Image By")
def ImageScaleBy(image=Socket("IMAGE"), upscale_method=Combo(IMAGE_METHODS, default="nearest-exact"),
                 scale_by: float = Float(1.0, min=0.01, max=8.0, step=0.01)):
    """Resizes images by a factor."""
    height, width = round(image.shape[1] * scale_by), round(image.shape[2] * scale_by)
    return resize(image.movedim(-1, 1), width, height, upscale_method).movedim(1, -1)


@node(returns=["IMAGE"], category="image", display_name="Invert Image")
def ImageInvert(image=Socket("IMAGE")):
    """1 - image."""
    return 1.0 - image


def batch_images(images: list[Tensor]) -> Tensor:
    """Images joined into one batch: alpha (1) added where others have it, sizes resized to the first's.

    The resize is bilinear with a centre crop, as ComfyUI's BatchImagesNode does.
    """
    channels = max(image.shape[-1] for image in images)
    height, width = images[0].shape[1:3]
    batch = []
    for image in images:
        if image.shape[-1] < channels:
            image = torch.nn.functional.pad(image, (0, channels - image.shape[-1]), value=1.0)
        if image.shape[1:3] != (height, width):
            image = resize(image.movedim(-1, 1), width, height, "bilinear", "center").movedim(1, -1)
        batch.append(image)
    return torch.cat(batch)


@node(returns=["IMAGE"], category="image", display_name="Batch Images (two)")
def ImageBatch(image1=Socket("IMAGE"), image2=Socket("IMAGE")):
    """Two images in one batch; image2 is resized to image1's size (bilinear, centre crop)."""
    return batch_images([image1, image2])


@node(returns=["IMAGE"], category="image", display_name="Batch Images",
      inputs=[Socket("IMAGE", name=f"images.image{i}", optional=i > 0) for i in range(MAX_BATCH_IMAGES)])
def BatchImagesNode(**images: Tensor):
    """Joins up to 50 images into one batch (inputs images.image0, images.image1, ...), at the first image's size."""
    return batch_images([images[name] for name in sorted(images, key=lambda name: int(name.rsplit("image", 1)[1]))])
