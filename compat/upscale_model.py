"""The UPSCALE_MODEL facade: spandrel's ImageModelDescriptor, which ComfyUI's upscale models are, over Sigmagraph's.

A pack receives `ImageModelDescriptor.of(model)`: `scale`, `input_channels`, `output_channels`,
`architecture`, the network as `model`, and a call on one tile [B, C, h, w] in 0..1 that returns
it upscaled, clamped to 0..1, on the compute device in the input's dtype (what ComfyUI's
ImageUpscaleWithModel and the packs that copy it do with `comfy.utils.tiled_scale`). The model
manager places the weights when the network runs, so `to`, `cpu`, `cuda`, `eval` return the
descriptor unchanged; the weights stay in float32 (`half`, `float` likewise). It is also what
old ComfyUI's `model_loading.load_state_dict` returned in place of the bare network: packs use
the same attributes and call on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from sigmagraph.nodes.models.upscale_model import UpscaleModel, upscale_model_from_state_dict
from sigmagraph.nodes.packs.loaders import placement

from . import state

PURPOSES = {True: "SR", False: "Restoration"}  # spandrel's purpose of a model that enlarges, or not


@dataclass(frozen=True)
class Architecture:
    """spandrel's architecture record: its id and display name."""

    id: str
    name: str


class ImageModelDescriptor:
    """spandrel's ImageModelDescriptor of a Sigmagraph UpscaleModel."""

    def __init__(self, source: UpscaleModel):
        self.source = source
        self.model = source.network.managed.module
        self.scale = source.scale
        self.input_channels = source.in_channels
        self.output_channels = source.out_channels
        self.architecture = Architecture(source.architecture, source.architecture)
        self.purpose = PURPOSES[source.scale > 1]
        self.tags: list[str] = []
        self.supports_half = self.supports_bfloat16 = True

    @classmethod
    def of(cls, source: UpscaleModel) -> "ImageModelDescriptor":
        """The descriptor a pack receives for a Sigmagraph UpscaleModel."""
        return cls(source)

    @property
    def device(self) -> torch.device:
        return self.source.network.device

    @property
    def dtype(self) -> torch.dtype:
        return self.source.network.dtype

    def __call__(self, image: Tensor) -> Tensor:
        """One tile [B, C, h, w] in 0..1, upscaled and clamped to 0..1, in the input's dtype."""
        return self.source(image).to(image.dtype)

    def _unchanged(self, *args: Any, **kwargs: Any) -> "ImageModelDescriptor":
        return self

    to = cpu = cuda = half = float = eval = train = _unchanged


def upscale_model_value(descriptor: ImageModelDescriptor) -> UpscaleModel:
    """The Sigmagraph UpscaleModel behind a descriptor."""
    return descriptor.source


def load_state_dict(state_dict: Mapping[str, Tensor], name: str = "upscale model state dict") -> ImageModelDescriptor:
    """The descriptor of an upscale model's state dict, computing on the active Config's device."""
    device, _ = placement(state.config())
    return ImageModelDescriptor(upscale_model_from_state_dict(state_dict, name, device))
