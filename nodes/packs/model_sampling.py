"""Nodes that change how a model's output is read: prediction type and noise-level table (SD, SD3, Flux, AuraFlow)."""

from __future__ import annotations

import math

from sigmagraph.engine import Boolean, Combo, Float, Int, Socket, node

from ..models.families import FLUX_DEV_FAMILY
from ..sampling import model_sampling as ms
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

# Flux's resolution-dependent shift: mu grows linearly in the token count, from base_shift at 256
# tokens (256x256 pixels) to max_shift at 4096 (1024x1024), as ComfyUI and BFL's reference compute it.
FLUX_SHIFT_TOKENS = (256, 4096)


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingDiscrete(model=Socket("MODEL"), sampling=Combo(["eps", "v_prediction", "lcm", "x0"], default="eps"),
                          zsnr: bool = Boolean(False)):
    """Reads the model as a 1000-step SD-schedule model of this prediction type (zsnr: zero terminal SNR)."""
    return model.with_model_sampling(ms.discrete_model_sampling(sampling, zsnr=zsnr))


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingSD3(model=Socket("MODEL"), shift: float = Float(3.0, min=0.0, max=100.0, step=0.01)):
    """Reads the model as a rectified-flow model with the SD3 timestep shift."""
    return model.with_model_sampling(ms.flow_model_sampling(shift=shift, multiplier=1000.0))


def flux_mu(max_shift: float, base_shift: float, width: int, height: int) -> float:
    """The mu of Flux's time shift for an image of width x height pixels (16x16 pixels per token)."""
    low, high = FLUX_SHIFT_TOKENS
    slope = (max_shift - base_shift) / (high - low)
    return width * height / (8 * 8 * 2 * 2) * slope + base_shift - slope * low


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingFlux(model=Socket("MODEL"), max_shift: float = Float(1.15, min=0.0, max=100.0, step=0.01),
                      base_shift: float = Float(0.5, min=0.0, max=100.0, step=0.01),
                      width: int = Int(1024, min=16, max=MAX_RESOLUTION, step=8),
                      height: int = Int(1024, min=16, max=MAX_RESOLUTION, step=8)):
    """Reads the model as Flux reads time: t unscaled, shifted by e^mu for this image size."""
    mu = flux_mu(max_shift, base_shift, width, height)
    levels = FLUX_DEV_FAMILY.flow.table_size  # ComfyUI's ModelSamplingFlux table
    return model.with_model_sampling(ms.flow_model_sampling(shift=math.exp(mu), multiplier=1.0, table_size=levels))


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingAuraFlow(model=Socket("MODEL"), shift: float = Float(1.73, min=0.0, max=100.0, step=0.01)):
    """Reads the model as a rectified-flow model with timesteps in [0, 1] (AuraFlow's) and this shift."""
    return model.with_model_sampling(ms.flow_model_sampling(shift=shift, multiplier=1.0))
