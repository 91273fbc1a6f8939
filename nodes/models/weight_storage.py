"""fp8 weight storage: a network's linear weights kept in float8 and up-cast layer by layer for compute.

A float8 weight takes one byte per parameter, a quarter of float32: Flux dev's 12 B parameters fit
in 12 GB. The compute stays in the compute dtype (float32 on the CPU, float16/bfloat16 on CUDA):
each linear layer casts its weight at the call, so only one layer's weight exists in the compute
dtype at a time. Which weights: every nn.Linear's (the transformer blocks hold nearly all the
parameters); embeddings, norms and biases keep the compute dtype, as ComfyUI keeps them.

Files may store float8 weights themselves (ComfyUI's "fp8" checkpoints), and then stay in fp8
unless a dtype is asked for. Scaled-fp8 files (ComfyUI's `*_fp8_scaled`) store each weight
divided by a per-tensor `scale_weight` beside it (and mark the network with a `scaled_fp8` key):
the weight is w_fp8 * scale_weight. Their `scale_input` tensors serve fp8 matrix products on GPUs
that have them; computing with up-cast weights, the inputs need no scaling and they are dropped.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import Checkpoint

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALE_WEIGHT = "scale_weight"
# Keys of scaled-fp8 files that hold no weight of ours: the file's marker and the fp8-matmul input scales.
SCALED_FP8_MARKER = "scaled_fp8"
INPUT_SCALE = "scale_input"


class UpcastLinear(nn.Linear):
    """A Linear whose weight is stored in another dtype (times `scale_weight`, if any) and cast at each call."""

    scale_weight: Tensor | None

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight.to(x.dtype)
        if self.scale_weight is not None:
            weight = weight * self.scale_weight.to(x.dtype)
        return F.linear(x, weight, None if self.bias is None else self.bias.to(x.dtype))


def stored_fp8_dtype(checkpoint: Checkpoint, prefix: str, module: nn.Module) -> torch.dtype | None:
    """The float8 dtype of the file's linear weights under `prefix`, or None when they are not float8."""
    for name, layer in module.named_modules():
        if isinstance(layer, nn.Linear) and prefix + name + ".weight" in checkpoint:
            dtype = checkpoint.view(prefix + name + ".weight").dtype
            return dtype if dtype in FP8_DTYPES else None
    return None


def is_scaled_fp8(checkpoint: Checkpoint, prefix: str) -> bool:
    """Whether the network under `prefix` is stored as scaled fp8 (ComfyUI's `scaled_fp8` marker key)."""
    return prefix + SCALED_FP8_MARKER in checkpoint


def upcast_linears(module: nn.Module, checkpoint: Checkpoint, prefix: str,
                   storage: torch.dtype) -> dict[str, torch.dtype]:
    """Makes every Linear of a meta-built module an UpcastLinear; the storage dtype of each linear weight by name.

    A layer whose file holds a `scale_weight` gets a buffer of its shape, filled when the weights load.
    """
    dtypes = {}
    for name, layer in module.named_modules():
        if not isinstance(layer, nn.Linear):
            continue
        layer.__class__ = UpcastLinear
        scale = f"{prefix}{name}.{SCALE_WEIGHT}"
        layer.register_buffer(SCALE_WEIGHT, torch.empty(checkpoint.shape(scale), device="meta")
                              if scale in checkpoint else None)
        dtypes[f"{name}.weight"] = storage
        if scale in checkpoint:
            dtypes[f"{name}.{SCALE_WEIGHT}"] = torch.float32
    return dtypes


def without_fp8_extras(tensors: Iterable[tuple[str, Tensor]]) -> Iterator[tuple[str, Tensor]]:
    """The (name, tensor) pairs of a network less the scaled-fp8 marker and input scales."""
    for name, tensor in tensors:
        if name != SCALED_FP8_MARKER and not name.endswith("." + INPUT_SCALE):
            yield name, tensor
