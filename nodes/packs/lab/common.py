"""What the lab's nodes share: their category, a guided run with progress and the interrupt, counted calls, RMS."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sigmagraph.engine import RunContext

from ...diffusion_model import DiffusionModel
from ...guiders import Guider, SamplerChoice, SeededNoise
from ...sampling.samplers.common import Callback

LATENT = dict[str, Any]
CATEGORY = "sampling/lab"


def guided_run(ctx: RunContext, guider: Guider, noise: SeededNoise, sampler: SamplerChoice, sigmas: Tensor,
               latent: LATENT, on_step: Callback | None = None) -> tuple[LATENT, LATENT]:
    """`Guider.sample` reporting to the node's context (progress, previews, interrupt); (output, denoised)."""
    with torch.inference_mode():
        return guider.sample(noise, latent, sampler, sigmas, ctx.progress, on_step)


def counting(model: DiffusionModel, calls: list[int]) -> DiffusionModel:
    """The model counting its network calls in calls[0] (through its model wrapper, kept if it has one)."""
    inner = model.model_wrapper

    def wrapper(apply, x, sigma, inputs, lists):
        calls[0] += 1
        return apply(x, sigma, **inputs) if inner is None else inner(apply, x, sigma, inputs, lists)

    return model.with_model_wrapper(wrapper)


def rms(a: Tensor, b: Tensor) -> float:
    """Root-mean-square difference (float64)."""
    return float((a.double() - b.double()).pow(2).mean().sqrt())
