"""Per-batch values shaped to broadcast against a batch of latents."""

from __future__ import annotations

from torch import Tensor


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Appends trailing singleton dimensions so a per-batch value broadcasts against x."""
    return v.reshape(*v.shape, *([1] * (ndim - v.ndim)))


def per_batch(value: Tensor | float, x: Tensor) -> Tensor | float:
    """A per-batch [B] (or scalar) coefficient shaped to broadcast against x; scalars pass through."""
    if not isinstance(value, Tensor) or value.ndim == 0:
        return value
    return append_dims(value, x.ndim)
