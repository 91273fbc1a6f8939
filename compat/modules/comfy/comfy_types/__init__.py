"""ComfyUI's `comfy.comfy_types`: the node typing names and the UNet wrapper protocols."""

from __future__ import annotations

from typing import Callable, Optional, Protocol, TypedDict

import torch

from .node_typing import IO, CheckLazyMixin, ComfyNodeABC, FileLocator, InputTypeDict


class UnetApplyFunction(Protocol):
    """The signature of a model's apply_model(x, t, **kwargs)."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor, **kwargs: object) -> torch.Tensor: ...


class UnetApplyConds(TypedDict):
    c_concat: Optional[torch.Tensor]
    c_crossattn: Optional[torch.Tensor]
    control: Optional[torch.Tensor]
    transformer_options: Optional[dict]


class UnetParams(TypedDict):
    input: torch.Tensor  # [B, C, H, W]
    timestep: torch.Tensor  # [B]
    c: UnetApplyConds
    cond_or_uncond: list[int]  # per batch chunk: 0 conditional, 1 unconditional


UnetWrapperFunction = Callable[[UnetApplyFunction, UnetParams], torch.Tensor]

__all__ = ["IO", "CheckLazyMixin", "ComfyNodeABC", "FileLocator", "InputTypeDict", "UnetApplyConds",
           "UnetApplyFunction", "UnetParams", "UnetWrapperFunction"]
