"""Resizing batches of images or latents [B, C, H, W] with ComfyUI's upscale methods and crop modes.

Methods: torch's "nearest-exact", "bilinear", "area", "bicubic"; "bislerp" (bilinear with
spherical interpolation of each pixel's channel vector, which keeps a latent's per-pixel norm
from collapsing between samples, as plain averaging of noisy vectors does); "lanczos" (PIL's
Lanczos filter on 8-bit images, so only for values in 0..1). "center" first crops the largest
centred region of the target's aspect ratio.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

IMAGE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
LATENT_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
CROP_METHODS = ["disabled", "center"]


def center_crop(samples: Tensor, width: int, height: int) -> Tensor:
    """The largest centred crop with the aspect ratio width:height."""
    old_height, old_width = samples.shape[-2:]
    old_aspect, new_aspect = old_width / old_height, width / height
    x = round((old_width - old_width * new_aspect / old_aspect) / 2) if old_aspect > new_aspect else 0
    y = round((old_height - old_height * old_aspect / new_aspect) / 2) if old_aspect < new_aspect else 0
    return samples[..., y:old_height - y, x:old_width - x]


def _slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of vectors a and b [N, C], linear of their norms (t [N, 1])."""
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    unit_a = torch.where(norm_a > 0, a / norm_a, torch.zeros_like(a))
    unit_b = torch.where(norm_b > 0, b / norm_b, torch.zeros_like(b))
    dot = (unit_a * unit_b).sum(-1, keepdim=True)
    omega = torch.acos(dot.clamp(-1.0, 1.0))
    sin_omega = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / sin_omega
    result = direction * (norm_a * (1 - t) + norm_b * t)
    # Parallel vectors: keep a; opposite ones have no unique great circle, so interpolate linearly.
    result = torch.where(dot > 1 - 1e-5, a, result)
    return torch.where(dot < 1e-5 - 1, a * (1 - t) + b * t, result)


def _bislerp_axis(samples: Tensor, size: int, axis: int) -> Tensor:
    """Slerp resampling along one axis (-1 width, -2 height), at bilinear (half-pixel) sample positions."""
    old = samples.shape[axis]
    position = ((torch.arange(size, dtype=torch.float32) + 0.5) * old / size - 0.5).clamp(0, old - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=old - 1)
    moved = samples.movedim(axis, -1).movedim(1, -1)  # [B, other, size, C]: channel vectors last
    channels = moved.shape[-1]
    a = moved[..., low, :].reshape(-1, channels)
    b = moved[..., high, :].reshape(-1, channels)
    t = (position - low).reshape(-1, 1).repeat(a.shape[0] // size, 1)
    out = _slerp(a, b, t).reshape(*moved.shape[:-2], size, channels)
    return out.movedim(-1, 1).movedim(-1, axis)


def bislerp(samples: Tensor, width: int, height: int) -> Tensor:
    """Resizes by slerp along the width, then along the height (float32 inside)."""
    out = _bislerp_axis(_bislerp_axis(samples.float(), width, -1), height, -2)
    return out.to(samples.dtype)


def lanczos(samples: Tensor, width: int, height: int) -> Tensor:
    """Resizes each image (values 0..1) with PIL's Lanczos filter, through 8 bits as ComfyUI does."""
    images = []
    for image in samples.movedim(1, -1).cpu().numpy():
        pixels = np.clip(255.0 * image, 0, 255).astype(np.uint8)
        resized = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).resize(
            (width, height), resample=Image.Resampling.LANCZOS)
        array = np.asarray(resized, dtype=np.float32) / 255.0
        images.append(torch.from_numpy(array.reshape(height, width, -1)))
    return torch.stack(images).movedim(-1, 1).to(samples.device, samples.dtype)


def resize(samples: Tensor, width: int, height: int, method: str, crop: str = "disabled") -> Tensor:
    """A batch [B, C, H, W] resized to height x width by an upscale method, after an optional centre crop."""
    if method not in IMAGE_METHODS + LATENT_METHODS:
        raise ValueError(f"unknown upscale method {method!r}: expected one of "
                         f"{', '.join(dict.fromkeys(IMAGE_METHODS + LATENT_METHODS))}")
    if crop not in CROP_METHODS:
        raise ValueError(f"unknown crop {crop!r}: expected one of {', '.join(CROP_METHODS)}")
    if crop == "center":
        samples = center_crop(samples, width, height)
    if method == "bislerp":
        return bislerp(samples, width, height)
    if method == "lanczos":
        return lanczos(samples, width, height)
    return F.interpolate(samples, size=(height, width), mode=method)
