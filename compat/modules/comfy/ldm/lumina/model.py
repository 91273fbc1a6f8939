"""ComfyUI's `comfy.ldm.lumina.model`: the SwiGLU feed-forward of Lumina-style DiTs (w2(silu(w1 x) * w3 x))."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class FeedForward(nn.Module):
    """SwiGLU whose hidden width is `hidden_dim` times the multiplier (if any), rounded up to `multiple_of`."""

    def __init__(self, dim: int, hidden_dim: int, multiple_of: int, ffn_dim_multiplier: float | None = None,
                 operation_settings: dict[str, Any] | None = None):
        super().__init__()
        settings = operation_settings or {}
        operations = settings.get("operations")
        linear = operations.Linear if operations is not None else nn.Linear
        factory = {"device": settings.get("device"), "dtype": settings.get("dtype")}
        if ffn_dim_multiplier is not None:
            hidden_dim = int(ffn_dim_multiplier * hidden_dim)
        hidden_dim = multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)
        self.w1 = linear(dim, hidden_dim, bias=False, **factory)
        self.w2 = linear(hidden_dim, dim, bias=False, **factory)
        self.w3 = linear(dim, hidden_dim, bias=False, **factory)

    def _forward_silu_gating(self, x1: Tensor, x3: Tensor) -> Tensor:
        return F.silu(x1) * x3

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(self._forward_silu_gating(self.w1(x), self.w3(x)))
