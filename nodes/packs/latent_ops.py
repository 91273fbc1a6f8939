"""LATENT arithmetic with ComfyUI's names (its comfy_extras.nodes_latent): add, subtract, scale, interpolate,
concatenate, cut, batch, and the seed behaviour of a batch.

A second latent of another size is resized (bilinear, centre crop) to the first, and repeated to its
batch size where the operation is element-wise, as ComfyUI does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sigmagraph.engine import Combo, Float, Int, Socket, node

from ..resize import resize
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

AXES = {"x": -1, "y": -2, "t": -3}  # concatenation and cut axes: width, height, time (video latents)


def repeat_to_batch(samples: Tensor, batch: int, dim: int = 0) -> Tensor:
    """`batch` entries along `dim`: the first ones, repeated cyclically when there are fewer (ComfyUI's
    repeat_to_batch_size)."""
    if samples.shape[dim] < batch:
        repeats = [1] * samples.ndim
        repeats[dim] = -(-batch // samples.shape[dim])
        samples = samples.repeat(repeats)
    return samples.narrow(dim, 0, batch) if samples.shape[dim] > batch else samples


def shaped_like(reference: Tensor, samples: Tensor, repeat_batch: bool = True) -> Tensor:
    """`samples` resized to the reference's spatial size and, by default, repeated to its batch."""
    if samples.shape[1:] != reference.shape[1:]:
        samples = resize(samples, reference.shape[-1], reference.shape[-2], "bilinear", "center")
    return repeat_to_batch(samples, reference.shape[0]) if repeat_batch else samples


def _with_samples(latent: dict[str, Any], samples: Tensor) -> dict[str, Any]:
    return {**latent, "samples": samples}


@node(returns=["LATENT"], category="latent/advanced")
def LatentAdd(samples1=Socket("LATENT"), samples2=Socket("LATENT")):
    """The element-wise sum of two latents."""
    s1 = samples1["samples"]
    return _with_samples(samples1, s1 + shaped_like(s1, samples2["samples"]))


@node(returns=["LATENT"], category="latent/advanced")
def LatentSubtract(samples1=Socket("LATENT"), samples2=Socket("LATENT")):
    """The first latent minus the second."""
    s1 = samples1["samples"]
    return _with_samples(samples1, s1 - shaped_like(s1, samples2["samples"]))


@node(returns=["LATENT"], category="latent/advanced")
def LatentMultiply(samples=Socket("LATENT"), multiplier: float = Float(1.0, min=-10.0, max=10.0, step=0.01)):
    """The latent scaled by a number."""
    return _with_samples(samples, samples["samples"] * multiplier)


@node(returns=["LATENT"], category="latent/advanced")
def LatentInterpolate(samples1=Socket("LATENT"), samples2=Socket("LATENT"),
                      ratio: float = Float(1.0, min=0.0, max=1.0, step=0.01)):
    """Blends directions and magnitudes separately (per pixel, over channels): ratio 1 gives samples1."""
    s1 = samples1["samples"]
    s2 = shaped_like(s1, samples2["samples"])
    m1, m2 = torch.linalg.vector_norm(s1, dim=1), torch.linalg.vector_norm(s2, dim=1)
    # Norms over channels broadcast against the last axes, exactly as ComfyUI divides [B,C,H,W] by [B,H,W].
    mixed = torch.nan_to_num(s1 / m1) * ratio + torch.nan_to_num(s2 / m2) * (1.0 - ratio)
    direction = torch.nan_to_num(mixed / torch.linalg.vector_norm(mixed, dim=1))
    return _with_samples(samples1, direction * (m1 * ratio + m2 * (1.0 - ratio)))


@node(returns=["LATENT"], category="latent/advanced")
def LatentConcat(samples1=Socket("LATENT"), samples2=Socket("LATENT"),
                 dim=Combo(["x", "-x", "y", "-y", "t", "-t"])):
    """Two latents side by side along width, height or time; a leading minus puts samples2 first."""
    s1 = samples1["samples"]
    s2 = repeat_to_batch(samples2["samples"], s1.shape[0])
    pair = (s2, s1) if dim.startswith("-") else (s1, s2)
    return _with_samples(samples1, torch.cat(pair, dim=AXES[dim[-1]]))


@node(returns=["LATENT"], category="latent/advanced")
def LatentCut(samples=Socket("LATENT"), dim=Combo(["x", "y", "t"]),
              index: int = Int(0, min=-MAX_RESOLUTION, max=MAX_RESOLUTION),
              amount: int = Int(1, min=1, max=MAX_RESOLUTION)):
    """A slice of the latent along width, height or time; a negative index counts from the end."""
    s = samples["samples"]
    axis = s.ndim + AXES[dim]
    size = s.shape[axis]
    if index >= 0:
        index = min(index, size - 1)
        amount = min(size - index, amount)
    else:
        index = max(index, -size)
        amount = min(-index, amount)
    return _with_samples(samples, torch.narrow(s, axis, index, amount))


@node(returns=["LATENT"], category="latent/batch")
def LatentBatch(samples1=Socket("LATENT"), samples2=Socket("LATENT")):
    """One batch of both latents (samples2 resized to samples1), keeping each image's batch index."""
    s1 = samples1["samples"]
    s2 = shaped_like(s1, samples2["samples"], repeat_batch=False)
    indices = (samples1.get("batch_index", list(range(s1.shape[0])))
               + samples2.get("batch_index", list(range(s2.shape[0]))))
    return {**samples1, "samples": torch.cat((s1, s2)), "batch_index": indices}


@node(returns=["LATENT"], category="latent/advanced")
def LatentBatchSeedBehavior(samples=Socket("LATENT"), seed_behavior=Combo(["random", "fixed"], default="fixed")):
    """"fixed": every image of the batch gets the first one's noise; "random": each its own."""
    out = dict(samples)
    if seed_behavior == "random":
        out.pop("batch_index", None)
    else:
        out["batch_index"] = [out.get("batch_index", [0])[0]] * samples["samples"].shape[0]
    return out
