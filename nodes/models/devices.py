"""Which device computes and in which dtype weights are kept.

CUDA when available unless the configuration says "cpu"; float32 on the CPU (fp16 files are
upcast as they load: CPU kernels are slow or missing in half precision), float16 on CUDA;
`Config.dtype` ("fp32", "fp16", "bf16") overrides. Autoencoders never run in float16: the SD
decoder's activations overflow it (black or NaN images), so they use bfloat16 where it is
supported and float32 elsewhere.
"""

from __future__ import annotations

import torch

from sigmagraph.engine import Config

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
OFFLOAD_DEVICE = torch.device("cpu")  # where weights rest when the compute device needs room


def compute_device(config: Config) -> torch.device:
    """The device models run on."""
    if config.device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(config.device)


def parse_dtype(name: str) -> torch.dtype:
    """A dtype by its short name ("fp32", "fp16", "bf16")."""
    if name not in DTYPES:
        raise ValueError(f"unknown weight dtype {name!r}: expected one of {', '.join(DTYPES)}")
    return DTYPES[name]


def weight_dtype(config: Config, device: torch.device) -> torch.dtype:
    """The dtype of diffusion-model and text-encoder weights on `device`."""
    if config.dtype is not None:
        return parse_dtype(config.dtype)
    return torch.float16 if device.type == "cuda" else torch.float32


def vae_dtype(config: Config, device: torch.device) -> torch.dtype:
    """The autoencoder's dtype: the weight dtype, except that float16 becomes bfloat16 or float32."""
    dtype = weight_dtype(config, device)
    if dtype != torch.float16:
        return dtype
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_ok else torch.float32
