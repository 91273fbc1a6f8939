"""ComfyUI's `comfy.ldm.flux.math`: Flux's rotary embedding as 2x2 rotation matrices, and attention with it.

`rope(pos, dim, theta)` gives [..., N, dim/2, 2, 2] matrices ((cos, -sin), (sin, cos)) per position
and frequency; `apply_rope` rotates consecutive pairs of q and k channels by them. The same rotation
as Sigmagraph's Flux (nodes/models/flux.py), which keeps cos and sin apart.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from comfy.ldm.modules.attention import optimized_attention


def rope(pos: Tensor, dim: int, theta: float) -> Tensor:
    """Rotation matrices [B, N, dim/2, 2, 2] for positions [B, N]."""
    scale = torch.linspace(0, (dim - 2) / dim, steps=dim // 2, dtype=torch.float64, device=pos.device)
    omega = 1.0 / (theta ** scale)
    angles = torch.einsum("...n,d->...nd", pos.to(torch.float32), omega)
    matrices = torch.stack([angles.cos(), -angles.sin(), angles.sin(), angles.cos()], dim=-1)
    return matrices.reshape(*matrices.shape[:-1], 2, 2).to(torch.float32)


def apply_rope1(x: Tensor, freqs_cis: Tensor) -> Tensor:
    """x [..., N, D] with channel pairs (2i, 2i+1) rotated by freqs_cis [..., N, D/2, 2, 2]."""
    pairs = x.to(freqs_cis.dtype).reshape(*x.shape[:-1], -1, 1, 2)
    out = freqs_cis[..., 0] * pairs[..., 0] + freqs_cis[..., 1] * pairs[..., 1]
    return out.reshape(*x.shape).type_as(x)


def apply_rope(xq: Tensor, xk: Tensor, freqs_cis: Tensor) -> tuple[Tensor, Tensor]:
    return apply_rope1(xq, freqs_cis), apply_rope1(xk, freqs_cis)


def attention(q: Tensor, k: Tensor, v: Tensor, pe: Tensor | None, mask: Tensor | None = None,
              transformer_options: dict[str, Any] | None = None) -> Tensor:
    """Attention of [B, heads, N, D] q, k, v after RoPE; the result [B, N, heads * D]."""
    if pe is not None:
        q, k = apply_rope(q, k, pe)
    return optimized_attention(q, k, v, q.shape[1], skip_reshape=True, mask=mask,
                               transformer_options=transformer_options or {})
