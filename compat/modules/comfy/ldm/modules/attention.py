"""ComfyUI's `comfy.ldm.modules.attention`: multi-head attention functions with its calling convention.

q, k, v are [B, N, heads * dim_head] (or [B, heads, N, dim_head] with skip_reshape), the result
[B, N, heads * dim_head] (or [B, heads, N, dim_head] with skip_output_reshape). A 2-D mask is one
[N_q, N_k] for the batch, a 3-D one [B, N_q, N_k]; boolean masks keep True, float masks are added.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _heads_first(q: Tensor, k: Tensor, v: Tensor, heads: int, skip_reshape: bool) -> tuple[Tensor, Tensor, Tensor]:
    if skip_reshape:
        return q, k, v
    batch, dim_head = q.shape[0], q.shape[-1] // heads
    return tuple(t.reshape(batch, -1, heads, dim_head).transpose(1, 2) for t in (q, k, v))


def _heads_last(out: Tensor, skip_output_reshape: bool) -> Tensor:
    if skip_output_reshape:
        return out
    batch, heads, tokens, dim_head = out.shape
    return out.transpose(1, 2).reshape(batch, tokens, heads * dim_head)


def _mask(mask: Tensor | None) -> Tensor | None:
    if mask is None:
        return None
    return mask.unsqueeze(0).unsqueeze(0) if mask.ndim == 2 else mask.unsqueeze(1) if mask.ndim == 3 else mask


def attention_pytorch(q: Tensor, k: Tensor, v: Tensor, heads: int, mask: Tensor | None = None,
                      attn_precision: torch.dtype | None = None, skip_reshape: bool = False,
                      skip_output_reshape: bool = False, **kwargs: Any) -> Tensor:
    """Attention through torch's scaled_dot_product_attention."""
    q, k, v = _heads_first(q, k, v, heads, skip_reshape)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=_mask(mask))
    return _heads_last(out, skip_output_reshape)


def attention_basic(q: Tensor, k: Tensor, v: Tensor, heads: int, mask: Tensor | None = None,
                    attn_precision: torch.dtype | None = None, skip_reshape: bool = False,
                    skip_output_reshape: bool = False, **kwargs: Any) -> Tensor:
    """Attention written out: softmax(q kᵀ / √d) v, the scores in float32 (or attn_precision)."""
    q, k, v = _heads_first(q, k, v, heads, skip_reshape)
    precision = attn_precision or torch.float32
    scores = (q.to(precision) @ k.to(precision).transpose(-1, -2)) / math.sqrt(q.shape[-1])
    mask = _mask(mask)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    out = scores.softmax(dim=-1).to(v.dtype) @ v
    return _heads_last(out, skip_output_reshape)


def wrap_attn(func: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Lets `transformer_options["optimized_attention_override"](func, *args, **kwargs)` replace the call, once."""
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        if "_inside_attn_wrapper" in kwargs:
            return func(*args, **kwargs)
        override = (kwargs.get("transformer_options") or {}).get("optimized_attention_override")
        kwargs["_inside_attn_wrapper"] = True
        return override(func, *args, **kwargs) if override is not None else func(*args, **kwargs)
    return wrapper


optimized_attention = wrap_attn(attention_pytorch)
optimized_attention_masked = optimized_attention


def optimized_attention_for_device(device: Any = None, mask: bool = False, small_input: bool = False) -> Callable:
    """The attention function for a device: scaled_dot_product_attention everywhere here."""
    return attention_pytorch
