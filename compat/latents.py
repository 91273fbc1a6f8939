"""ComfyUI's latent formats (comfy.latent_formats) and their conversion to and from Sigmagraph's LatentFormat.

SD15, SDXL, SD3 and Flux are Sigmagraph's own formats (nodes/models/families.py) in ComfyUI's
classes; a format of any other class converts through its scale, shift and preview factors.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sigmagraph.nodes.diffusion_model import LatentFormat as NativeFormat
from sigmagraph.nodes.models.families import FLUX_LATENT, SD3_LATENT, SD_LATENT, SDXL_LATENT


def _rows(factors: tuple[tuple[float, ...], ...] | None) -> list[list[float]] | None:
    return None if factors is None else [list(row) for row in factors]


class LatentFormat:
    """A latent space: channels, scale factor, and the latent -> RGB factors previews use."""

    scale_factor = 1.0
    shift_factor = 0.0
    latent_channels = 4
    latent_dimensions = 2
    latent_rgb_factors: list[list[float]] | None = None
    latent_rgb_factors_bias: list[float] | None = None
    taesd_decoder_name: str | None = None

    def process_in(self, latent: Tensor) -> Tensor:
        return (latent - self.shift_factor) * self.scale_factor

    def process_out(self, latent: Tensor) -> Tensor:
        return latent / self.scale_factor + self.shift_factor


def _fill(instance: LatentFormat, fmt: NativeFormat) -> LatentFormat:
    """`instance` with a Sigmagraph format's numbers (and the format itself, for the way back)."""
    instance.scale_factor, instance.shift_factor, instance.latent_channels = fmt.scale_factor, fmt.shift, fmt.channels
    instance.latent_rgb_factors = _rows(fmt.rgb_factors)
    instance.latent_rgb_factors_bias = None if fmt.rgb_bias == (0.0, 0.0, 0.0) else list(fmt.rgb_bias)
    instance._native = fmt
    return instance


class SD15(LatentFormat):
    """Stable Diffusion 1.x / 2.x latents (4 channels, scale 0.18215)."""

    def __init__(self, scale_factor: float = SD_LATENT.scale_factor):
        _fill(self, SD_LATENT)
        self.scale_factor = scale_factor
        self.taesd_decoder_name = "taesd_decoder"


class SDXL(LatentFormat):
    """SDXL latents (4 channels, scale 0.13025)."""

    scale_factor = SDXL_LATENT.scale_factor

    def __init__(self):
        _fill(self, SDXL_LATENT)
        self.taesd_decoder_name = "taesdxl_decoder"


class SD3(LatentFormat):
    """SD3 latents: 16 channels, shifted by 0.0609 then scaled by 1.5305."""

    latent_channels, scale_factor, shift_factor = 16, SD3_LATENT.scale_factor, SD3_LATENT.shift

    def __init__(self):
        _fill(self, SD3_LATENT)
        self.taesd_decoder_name = "taesd3_decoder"


class Flux(LatentFormat):
    """Flux latents: 16 channels, shifted by 0.1159 then scaled by 0.3611."""

    latent_channels, scale_factor, shift_factor = 16, FLUX_LATENT.scale_factor, FLUX_LATENT.shift

    def __init__(self):
        _fill(self, FLUX_LATENT)
        self.taesd_decoder_name = "taef1_decoder"


NATIVE_CLASSES: dict[NativeFormat, type[LatentFormat]] = {SD_LATENT: SD15, SDXL_LATENT: SDXL, SD3_LATENT: SD3,
                                                          FLUX_LATENT: Flux}


def comfy_latent_format(fmt: NativeFormat) -> LatentFormat:
    """The ComfyUI latent format of a Sigmagraph one (SD15, SDXL, or a LatentFormat with its numbers)."""
    cls = NATIVE_CLASSES.get(fmt)
    return cls() if cls is not None else _fill(LatentFormat(), fmt)


def native_latent_format(obj: Any) -> NativeFormat:
    """The Sigmagraph latent format of a ComfyUI one (a shift and a scale; other transforms have none)."""
    own = getattr(obj, "_native", None)
    if own is not None and own.scale_factor == obj.scale_factor and own.shift == obj.shift_factor:
        return own
    if type(obj).process_in is not LatentFormat.process_in or type(obj).process_out is not LatentFormat.process_out:
        raise ValueError(f"latent format {type(obj).__name__} transforms latents beyond a shift and a scale, "
                         f"which Sigmagraph's models do not support")
    factors = obj.latent_rgb_factors
    bias = obj.latent_rgb_factors_bias
    return NativeFormat(channels=obj.latent_channels, scale_factor=float(obj.scale_factor),
                        shift=float(getattr(obj, "shift_factor", 0.0) or 0.0),
                        rgb_factors=None if factors is None else tuple(tuple(map(float, row)) for row in factors),
                        rgb_bias=(0.0, 0.0, 0.0) if bias is None else tuple(float(v) for v in torch.as_tensor(bias)))
