"""Nodes that change how a model's output is read: prediction type and noise-level table."""

from __future__ import annotations

from sigmagraph.engine import Boolean, Combo, Float, Socket, node

from ..sampling import model_sampling as ms
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingDiscrete(model=Socket("MODEL"), sampling=Combo(["eps", "v_prediction", "lcm", "x0"], default="eps"),
                          zsnr: bool = Boolean(False)):
    """Reads the model as a 1000-step SD-schedule model of this prediction type (zsnr: zero terminal SNR)."""
    return model.with_model_sampling(ms.discrete_model_sampling(sampling, zsnr=zsnr))


@node(returns=["MODEL"], category="advanced/model")
def ModelSamplingSD3(model=Socket("MODEL"), shift: float = Float(3.0, min=0.0, max=100.0, step=0.01)):
    """Reads the model as a rectified-flow model with the SD3 timestep shift."""
    return model.with_model_sampling(ms.flow_model_sampling(shift=shift, multiplier=1000.0))
