"""ComfyUI's `comfy_api.latest`: the V3 node API (`io`, `ui`, `ComfyExtension`) and the `ComfyAPI` helpers.

A V3 pack's module defines `async def comfy_entrypoint()` returning a ComfyExtension, whose
`get_node_list()` lists its `io.ComfyNode` classes; `sigmagraph.compat.v3` loads and runs them.
Not provided: `InputImpl`'s video classes (they need PyAV), node replacement, cache providers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, TypedDict

import torch

from comfy_api.internal import ComfyAPIBase, ProxiedSingleton
from comfy_api.internal.async_to_sync import create_sync_class
from sigmagraph.compat import state
from sigmagraph.engine.events import PREVIEW, PROGRESS
from sigmagraph.nodes.packs.image_output import image_to_pil

from . import _io as io
from . import _ui as ui
from ._util import VideoCodec, VideoComponents, VideoContainer


class ComfyAPI_latest(ComfyAPIBase):  # noqa: N801 - ComfyUI's name
    VERSION = "latest"
    STABLE = False

    class Execution(ProxiedSingleton):
        async def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                               preview_image: Any = None, ignore_size_limit: bool = False) -> None:
            """Reports progress (and optionally a preview: a PIL image or an IMAGE tensor) of the running node."""
            run = state.run_context()
            node_id = node_id or run.node_id
            if not node_id:
                raise ValueError("node_id must be provided if not in executing context")
            run.emit(PROGRESS, {"value": value, "max": max_value, "node": node_id, "prompt_id": run.prompt_id})
            if preview_image is not None:
                image = image_to_pil(preview_image.reshape(-1, *preview_image.shape[-3:])[0]) \
                    if isinstance(preview_image, torch.Tensor) else preview_image
                run.emit(PREVIEW, {"node": node_id, "prompt_id": run.prompt_id, "image": image})

    def __init__(self) -> None:
        self.execution = self.Execution()


class ComfyExtension(ABC):
    """What a V3 pack's `comfy_entrypoint()` returns: its nodes, and a hook run when it loads."""

    async def on_load(self) -> None:
        """Called once when the extension loads (set up what its nodes share)."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes this extension provides."""


class AudioInput(TypedDict):
    waveform: torch.Tensor  # [B, C, T]
    sample_rate: int


class LatentInput(TypedDict, total=False):
    samples: torch.Tensor  # [B, C, H, W], unscaled
    noise_mask: torch.Tensor
    batch_index: list[int]


class Input:
    """The value types nodes receive, for annotations."""

    Image = torch.Tensor  # [B, H, W, C] in 0..1
    Mask = torch.Tensor  # [B, H, W]
    Audio = AudioInput
    Latent = LatentInput


class InputImpl:
    """ComfyUI's video classes (VideoFromFile, VideoFromComponents) live here; they need PyAV, not provided."""


class Types:
    VideoCodec = VideoCodec
    VideoContainer = VideoContainer
    VideoComponents = VideoComponents


ComfyAPI = ComfyAPI_latest
ComfyAPISync = create_sync_class(ComfyAPI_latest)
IO, UI = io, ui

__all__ = ["ComfyAPI", "ComfyAPISync", "ComfyAPI_latest", "ComfyExtension", "IO", "Input", "InputImpl", "Types",
           "UI", "io", "ui"]
