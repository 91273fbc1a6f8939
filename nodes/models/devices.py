"""Which device computes and in which dtype weights are kept.

CUDA when available unless the caller names a device ("cpu"); float32 on the CPU (fp16 files are
upcast as they load: CPU kernels are slow or missing in half precision), float16 on CUDA; an
explicit dtype overrides. Autoencoders never run in float16: the SD decoder's activations
overflow it (black or NaN images), so they use bfloat16 where it is supported and float32 elsewhere.
"""

from __future__ import annotations

import torch

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OFFLOAD_DEVICE = torch.device("cpu")  # where weights rest when the compute device needs room


def compute_device(name: str = "auto") -> torch.device:
    """The device models run on: "auto" is CUDA when available, else the CPU; other names are torch's."""
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)


def parse_dtype(name: str) -> torch.dtype:
    """A dtype by its short name ("fp32", "fp16", "bf16")."""
    if name not in DTYPES:
        raise ValueError(f"unknown weight dtype {name!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[name]


def weight_dtype(device: torch.device, dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype of diffusion-model and text-encoder weights on `device`: `dtype` if given, else the device's."""
    if dtype is not None:
        return dtype
    return torch.float16 if device.type == "cuda" else torch.float32


def vae_dtype(device: torch.device, dtype: torch.dtype | None = None) -> torch.dtype:
    """The autoencoder's dtype: the weight dtype, except that float16 becomes bfloat16 or float32."""
    dtype = weight_dtype(device, dtype)
    if dtype != torch.float16:
        return dtype
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_ok else torch.float32
