"""Building model modules without paying for their random initialisation, and seeded random weights.

A full-size SD UNet has ~860M parameters; torch's default initialisation of them costs seconds and
a second of memory traffic that is thrown away as soon as a checkpoint is loaded. So models are
built on the meta device (no storage, no init) and then given uninitialised storage:

    unet = empty_module(UNetModel, SD1_UNET, device="cpu", dtype=torch.float32)
    unet.load_state_dict(state_dict)          # copies and casts tensor by tensor, strict by default
    init_random_(unet, seed=0)                # or: seeded random weights, for tests and training

A loader that already holds tensors of the right dtype and device can skip the allocation too:
build under `torch.device("meta")` and call `load_state_dict(state_dict, assign=True)`.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


def empty_module(factory: Callable[..., M], *args: Any, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, **kwargs: Any) -> M:
    """`factory(*args, **kwargs)` built on the meta device, then given uninitialised storage on `device`."""
    with torch.device("meta"):
        module = factory(*args, **kwargs)
    return module.to(dtype=dtype).to_empty(device=device)


@torch.no_grad()
def init_random_(module: M, seed: int) -> M:
    """Fills every parameter from a CPU generator seeded with `seed`, in place; returns the module.

    Matrices and kernels get N(0, 1/fan_in), so activations keep their scale through the network;
    one-dimensional weights (norm scales) get 1 + N(0, 0.1²) and biases N(0, 0.1²). Nothing is
    zero-initialised, so every parameter takes part in a comparison test. Values depend only on
    the seed and the parameter order, never on the device or the global RNG.
    """
    generator = torch.Generator("cpu").manual_seed(seed)
    for name, parameter in module.named_parameters():
        if parameter.ndim >= 2:
            mean, std = 0.0, parameter[0].numel() ** -0.5
        elif name.endswith("weight"):
            mean, std = 1.0, 0.1
        else:
            mean, std = 0.0, 0.1
        if parameter.device.type == "cpu" and parameter.dtype == torch.float32:
            parameter.normal_(mean, std, generator=generator)  # in place: no temporary the size of the model
        else:
            parameter.copy_(torch.empty(parameter.shape).normal_(mean, std, generator=generator))
    return module
