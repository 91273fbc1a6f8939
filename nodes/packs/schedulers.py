"""SIGMAS nodes: schedules, and the operations on them, with ComfyUI's names and inputs."""

from __future__ import annotations

from pathlib import Path

import torch

from sigmagraph.engine import Combo, Float, Int, Socket, node

from ..sampling import schedules
from ..sampling.schedule_fit import register_saved_schedules
from ..sampling.schedules import SCHEDULES
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

CATEGORY = "sampling/custom_sampling/schedulers"
SIGMA_MAX = Float(14.614642, min=0.0, max=5000.0, step=0.01, round=False)
SIGMA_MIN = Float(0.0291675, min=0.0, max=5000.0, step=0.01, round=False)
STEPS = Int(20, min=1, max=10000)
DENOISE = Float(1.0, min=0.0, max=1.0, step=0.01)


def scheduler_names(config=None) -> list[str]:
    """Every schedule in the public mapping, custom ones and those saved in models/schedules included."""
    if config is not None:
        register_saved_schedules(Path(config.models_dir) / "schedules")
    return list(SCHEDULES)


@node(returns=["SIGMAS"], category=CATEGORY)
def BasicScheduler(model=Socket("MODEL"), scheduler=Combo(scheduler_names, default="normal"), steps: int = STEPS,
                   denoise: float = DENOISE):
    """The sigmas of a named schedule for the model, with img2img `denoise`."""
    return schedules.scheduled_sigmas(model.model_sampling, scheduler, steps, denoise)


@node(returns=["SIGMAS"], category=CATEGORY)
def KarrasScheduler(steps: int = STEPS, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN,
                    rho: float = Float(7.0, min=0.0, max=100.0, step=0.01, round=False)):
    """Karras et al. (2022): steps spaced uniformly in sigma^(1/rho)."""
    return schedules.karras_sigmas(steps, sigma_min, sigma_max, rho)


@node(returns=["SIGMAS"], category=CATEGORY)
def ExponentialScheduler(steps: int = STEPS, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN):
    """Steps spaced uniformly in log(sigma)."""
    return schedules.exponential_sigmas(steps, sigma_min, sigma_max)


@node(returns=["SIGMAS"], category=CATEGORY)
def PolyexponentialScheduler(steps: int = STEPS, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN,
                             rho: float = Float(1.0, min=0.0, max=100.0, step=0.01, round=False)):
    """log(sigma) following a polynomial of degree rho in the step."""
    return schedules.polyexponential_sigmas(steps, sigma_min, sigma_max, rho)


@node(returns=["SIGMAS"], category=CATEGORY)
def VPScheduler(steps: int = STEPS, beta_d: float = Float(19.9, min=0.0, max=5000.0, step=0.01, round=False),
                beta_min: float = Float(0.1, min=0.0, max=5000.0, step=0.01, round=False),
                eps_s: float = Float(0.001, min=0.0, max=1.0, step=0.0001, round=False)):
    """The variance-preserving SDE's continuous noise levels (Song et al. 2021)."""
    return schedules.vp_sigmas(steps, beta_d, beta_min, eps_s)


@node(returns=["SIGMAS"], category=CATEGORY)
def BetaSamplingScheduler(model=Socket("MODEL"), steps: int = STEPS,
                          alpha: float = Float(0.6, min=0.0, max=50.0, step=0.01, round=False),
                          beta: float = Float(0.6, min=0.0, max=50.0, step=0.01, round=False)):
    """Timesteps at the quantiles of a Beta(alpha, beta) distribution (Lee et al. 2024)."""
    return schedules.beta_sigmas(model.model_sampling, steps, alpha, beta)


@node(returns=["SIGMAS"], category=CATEGORY)
def SDTurboScheduler(model=Socket("MODEL"), steps: int = Int(1, min=1, max=10), denoise: float = DENOISE):
    """SD-Turbo's timesteps 999, 899, ... (adversarial diffusion distillation)."""
    return schedules.sd_turbo_sigmas(model.model_sampling, steps, denoise)


@node(returns=["SIGMAS"], category=CATEGORY)
def AlignYourStepsScheduler(model_type=Combo(["SD1", "SDXL", "SVD"], default="SD1"), steps: int = Int(10, min=1,
                            max=10000), denoise: float = DENOISE):
    """Align Your Steps (Sabour et al. 2024): optimized noise levels, interpolated to any step count."""
    return schedules.align_your_steps_sigmas(model_type, steps, denoise)


@node(returns=[("SIGMAS", "high_sigmas"), ("SIGMAS", "low_sigmas")], category="sampling/custom_sampling/sigmas")
def SplitSigmas(sigmas=Socket("SIGMAS"), step: int = Int(0, min=0, max=10000)):
    """Splits at a step: the first part ends where the second starts (they share that sigma)."""
    return sigmas[: step + 1], sigmas[step:]


@node(returns=[("SIGMAS", "high_sigmas"), ("SIGMAS", "low_sigmas")], category="sampling/custom_sampling/sigmas")
def SplitSigmasDenoise(sigmas=Socket("SIGMAS"), denoise: float = DENOISE):
    """Splits so that the second part holds round(steps * denoise) steps."""
    steps = max(len(sigmas) - 1, 0)
    split = steps - round(steps * denoise)
    return sigmas[: split + 1], sigmas[split:]


@node(returns=["SIGMAS"], category="sampling/custom_sampling/sigmas")
def FlipSigmas(sigmas=Socket("SIGMAS")):
    """Reverses the schedule (for inversion); a leading 0 becomes 1e-4 so the first step is defined."""
    if len(sigmas) == 0:
        return sigmas
    flipped = torch.flip(sigmas, dims=(0,)).clone()
    if flipped[0] == 0:
        flipped[0] = 0.0001
    return flipped
