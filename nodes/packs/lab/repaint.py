"""SamplerRePaint: RePaint's resampled inpainting (Lugmayr et al. 2022) as a SAMPLER for the custom-sampling nodes.

Give it a latent with a noise mask (SetLatentNoiseMask, VAEEncodeForInpaint, InpaintModelConditioning):
the masked region is generated, the rest re-noised from the source latent at every model call.
"""

from __future__ import annotations

from dataclasses import dataclass

from sigmagraph.engine import Float, Int, node

from ...guiders import SamplerChoice
from ...sampling.repaint import repaint
from ...sampling.samplers.common import Sampler
from ..types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack


@dataclass(frozen=True)
class RePaintSampler(SamplerChoice):
    """SAMPLER: the RePaint sampler, which is no entry of the sampler mapping (its schedule jumps back)."""

    name: str = "repaint"

    @property
    def function(self) -> Sampler:
        return repaint


@node(returns=["SAMPLER"], category="sampling/custom_sampling/samplers")
def SamplerRePaint(jump_length: int = Int(10, min=1, max=1000, tooltip="levels to jump back up each time"),
                   jump_n_sample: int = Int(10, min=1, max=100, tooltip="descents per jump point (1: no jumps)"),
                   s_noise: float = Float(1.0, min=0.0, max=100.0, step=0.01, round=False)):
    """RePaint: DDPM steps down the schedule, jumping back up `jump_length` levels `jump_n_sample - 1` times
    at every `jump_length`-th step, so the inpainted region agrees with the kept one (paper defaults 10, 10)."""
    return RePaintSampler(params={"jump_length": jump_length, "jump_n_sample": jump_n_sample, "s_noise": s_noise})
