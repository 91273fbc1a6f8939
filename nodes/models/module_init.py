"""Building model modules without paying for their random initialisation, and seeded random weights.

A full-size SD UNet has ~860M parameters; torch's default initialisation of them costs seconds and
a second of memory traffic that is thrown away as soon as a checkpoint is loaded. So models are
built on the meta device without running torch.nn.init (`meta_module`: no storage, no init) and
then given uninitialised storage:

    unet = empty_module(UNetModel, SD1_UNET, device="cpu", dtype=torch.float32)
    unet.load_state_dict(state_dict)          # copies and casts tensor by tensor, strict by default
    init_random_(unet, seed=0)                # or: seeded random weights, for tests and training

Checkpoint loading skips the allocation too: it builds with `meta_module` and assigns each
tensor, cast once, as the parameter (`checkpoint.load_weights`).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

M = TypeVar("M", bound=nn.Module)


class SkipInit(TorchFunctionMode):
    """Within it, torch.nn.init's functions leave their tensor as it is (thread-local, as torch's modes are).

    On the meta device an init computes nothing, but it is not free: nn.Embedding's `normal_` runs
    torch's reference implementation, whose first call imports torch._dynamo, a second or more.
    """

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def meta_module(factory: Callable[..., M], *args: Any, **kwargs: Any) -> M:
    """`factory(*args, **kwargs)` on the meta device, its parameters shapes only: no storage, no init."""
    with torch.device("meta"), SkipInit():
        return factory(*args, **kwargs)


def empty_module(factory: Callable[..., M], *args: Any, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, **kwargs: Any) -> M:
    """`factory(*args, **kwargs)` built on the meta device, then given uninitialised storage on `device`."""
    return meta_module(factory, *args, **kwargs).to(dtype=dtype).to_empty(device=device)


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
