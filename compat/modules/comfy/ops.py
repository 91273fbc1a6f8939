"""ComfyUI's `comfy.ops`: layer classes for model code that packs build or subclass.

`disable_weight_init`: torch's layers without their random initialisation (the weights are loaded
afterwards). `manual_cast`: the same layers computing in the input's dtype and device, their weights
cast per call, which is how ComfyUI runs fp8 or offloaded weights. `cast_to_input` and
`cast_bias_weight` are the casts themselves.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cast_to(weight: Tensor | None, dtype: torch.dtype | None = None, device: Any = None, non_blocking: bool = False,
            copy: bool = False) -> Tensor | None:
    """The tensor in this dtype and on this device (a copy when asked, even if nothing changes)."""
    if weight is None:
        return None
    out = weight.to(device=device, dtype=dtype, non_blocking=non_blocking)
    return out.clone() if copy and out is weight else out


def cast_to_input(weight: Tensor, input: Tensor, non_blocking: bool = False, copy: bool = True) -> Tensor:
    """The tensor in the input's dtype and on its device."""
    return cast_to(weight, input.dtype, input.device, non_blocking, copy)


def cast_bias_weight(s: nn.Module, input: Tensor | None = None, dtype: torch.dtype | None = None, device: Any = None,
                     bias_dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor | None]:
    """A layer's (weight, bias) in the input's (or the given) dtype and device."""
    if input is not None:
        dtype = dtype or input.dtype
        bias_dtype = bias_dtype or dtype
        device = device or input.device
    return cast_to(s.weight, dtype, device), cast_to(getattr(s, "bias", None), bias_dtype or dtype, device)


class CastWeightBiasOp:
    """Marks a layer that casts its weights per call when `comfy_cast_weights` is set."""

    comfy_cast_weights = False


class _Cast(CastWeightBiasOp):
    """A layer without random initialisation that casts its weights per call when comfy_cast_weights is set."""

    def reset_parameters(self) -> None:
        return None

    def weights_for(self, input: Tensor) -> tuple[Tensor, Tensor | None]:
        return cast_bias_weight(self, input) if self.comfy_cast_weights else (self.weight, self.bias)


class _Conv(_Cast):
    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, *self.weights_for(input))


class disable_weight_init:  # noqa: N801 - ComfyUI's name
    class Linear(_Cast, nn.Linear):
        def forward(self, input: Tensor) -> Tensor:
            return F.linear(input, *self.weights_for(input))

    class Conv1d(_Conv, nn.Conv1d):
        pass

    class Conv2d(_Conv, nn.Conv2d):
        pass

    class Conv3d(_Conv, nn.Conv3d):
        pass

    class GroupNorm(_Cast, nn.GroupNorm):
        def forward(self, input: Tensor) -> Tensor:
            weight, bias = self.weights_for(input) if self.affine else (None, None)
            return F.group_norm(input, self.num_groups, weight, bias, self.eps)

    class LayerNorm(_Cast, nn.LayerNorm):
        def forward(self, input: Tensor) -> Tensor:
            weight, bias = self.weights_for(input) if self.weight is not None else (None, None)
            return F.layer_norm(input, self.normalized_shape, weight, bias, self.eps)

    class RMSNorm(_Cast, nn.RMSNorm):
        def forward(self, input: Tensor) -> Tensor:
            weight = self.weights_for(input)[0] if self.weight is not None else None
            return F.rms_norm(input, self.normalized_shape, weight, self.eps)

    class ConvTranspose2d(_Cast, nn.ConvTranspose2d):
        def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
            padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size, 2,
                                           self.dilation)
            return F.conv_transpose2d(input, *self.weights_for(input), self.stride, self.padding, padding,
                                      self.groups, self.dilation)

    class Embedding(_Cast, nn.Embedding):
        def forward(self, input: Tensor, out_dtype: torch.dtype | None = None) -> Tensor:
            out = super().forward(input)
            return out if out_dtype is None else out.to(out_dtype)

    @classmethod
    def conv_nd(cls, dims: int, *args: Any, **kwargs: Any) -> nn.Module:
        """The Conv1d/2d/3d of this family of layers."""
        layers = {1: cls.Conv1d, 2: cls.Conv2d, 3: cls.Conv3d}
        if dims not in layers:
            raise ValueError(f"unsupported dimensions: {dims}")
        return layers[dims](*args, **kwargs)


LAYERS = ("Linear", "Conv1d", "Conv2d", "Conv3d", "GroupNorm", "LayerNorm", "RMSNorm", "ConvTranspose2d", "Embedding")


class manual_cast(disable_weight_init):  # noqa: N801 - ComfyUI's name
    """The layers of disable_weight_init, their weights cast to the input's dtype and device on every call."""


for _name in LAYERS:
    setattr(manual_cast, _name, type(_name, (getattr(disable_weight_init, _name),),
                                     {"comfy_cast_weights": True, "__qualname__": f"manual_cast.{_name}"}))


def pick_operations(weight_dtype: torch.dtype | None, compute_dtype: torch.dtype | None, *args: Any,
                    **kwargs: Any) -> type:
    """manual_cast when the weights are stored in another dtype than the one computed in, else disable_weight_init."""
    if compute_dtype is None or weight_dtype == compute_dtype:
        return disable_weight_init
    return manual_cast
