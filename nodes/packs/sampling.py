"""Sampling nodes with ComfyUI's names, inputs, defaults and ranges.

KSampler and KSamplerAdvanced are compositions of the custom-sampling pieces (NOISE, GUIDER,
SAMPLER, SIGMAS), all ending in `Guider.sample`.
"""

from __future__ import annotations

from typing import Any

import torch

from sigmagraph.engine import Boolean, Combo, Float, Hidden, Int, RunContext, Socket, node

from .. import guiders
from ..guiders import Guider, SamplerChoice, SeededNoise
from ..sampling.samplers import SAMPLERS
from ..sampling.schedules import scheduled_sigmas
from .schedulers import scheduler_names
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

SEED = Int(0, min=0, max=2**64 - 1, control_after_generate=True)
CFG = Float(8.0, min=0.0, max=100.0, step=0.1, round=0.01)
STEPS = Int(20, min=1, max=10000)


def sampler_names(config=None) -> list[str]:
    """Every sampler in the public mapping, custom ones included."""
    return list(SAMPLERS)


def _sample(ctx: RunContext, guider: Guider, noise: SeededNoise, sampler: SamplerChoice, sigmas: torch.Tensor,
            latent: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the guider; ctx.progress sends progress events with previews and raises the interrupt."""
    with torch.inference_mode():
        return guider.sample(noise, latent, sampler, sigmas, ctx.progress)


@node(returns=["LATENT"], category="sampling")
def KSampler(model=Socket("MODEL"), seed: int = SEED, steps: int = STEPS, cfg: float = CFG,
             sampler_name=Combo(sampler_names, default="euler"), scheduler=Combo(scheduler_names, default="normal"),
             positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"), latent_image=Socket("LATENT"),
             denoise: float = Float(1.0, min=0.0, max=1.0, step=0.01), ctx=Hidden.CONTEXT):
    """Denoises a latent: seed, steps, CFG scale, sampler and schedule in one node."""
    sampler = SamplerChoice(sampler_name)
    sigmas = scheduled_sigmas(model.model_sampling, scheduler, steps, denoise, sampler.discard_penultimate_sigma)
    return _sample(ctx, Guider(model, positive, negative, cfg), SeededNoise(seed), sampler, sigmas, latent_image)[0]


@node(returns=["LATENT"], category="sampling")
def KSamplerAdvanced(model=Socket("MODEL"), add_noise=Combo(["enable", "disable"], default="enable"),
                     noise_seed: int = SEED, steps: int = STEPS, cfg: float = CFG,
                     sampler_name=Combo(sampler_names, default="euler"),
                     scheduler=Combo(scheduler_names, default="normal"), positive=Socket("CONDITIONING"),
                     negative=Socket("CONDITIONING"), latent_image=Socket("LATENT"),
                     start_at_step: int = Int(0, min=0, max=10000), end_at_step: int = Int(10000, min=0, max=10000),
                     return_with_leftover_noise=Combo(["disable", "enable"], default="disable"), ctx=Hidden.CONTEXT):
    """KSampler over a part of the schedule: steps start_at_step..end_at_step, optionally keeping the noise.

    For base -> refiner chains: the first stage returns with leftover noise, the second adds none.
    """
    sampler = SamplerChoice(sampler_name)
    sigmas = scheduled_sigmas(model.model_sampling, scheduler, steps, 1.0, sampler.discard_penultimate_sigma)
    if end_at_step < len(sigmas) - 1:
        sigmas = sigmas[: end_at_step + 1].clone()
        if return_with_leftover_noise != "enable":
            sigmas[-1] = 0
    if start_at_step >= len(sigmas) - 1:
        return latent_image  # nothing left to sample, as in ComfyUI
    sigmas = sigmas[start_at_step:]
    noise = SeededNoise(noise_seed, enabled=add_noise == "enable")
    return _sample(ctx, Guider(model, positive, negative, cfg), noise, sampler, sigmas, latent_image)[0]


@node(returns=[("LATENT", "output"), ("LATENT", "denoised_output")], category="sampling/custom_sampling")
def SamplerCustom(model=Socket("MODEL"), add_noise: bool = Boolean(True), noise_seed: int = SEED, cfg: float = CFG,
                  positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"), sampler=Socket("SAMPLER"),
                  sigmas=Socket("SIGMAS"), latent_image=Socket("LATENT"), ctx=Hidden.CONTEXT):
    """Samples with a given SAMPLER and SIGMAS; also returns the last denoised estimate."""
    guider = Guider(model, positive, negative, cfg)
    return _sample(ctx, guider, SeededNoise(noise_seed, enabled=add_noise), sampler, sigmas, latent_image)


@node(returns=[("LATENT", "output"), ("LATENT", "denoised_output")], category="sampling/custom_sampling")
def SamplerCustomAdvanced(noise=Socket("NOISE"), guider=Socket("GUIDER"), sampler=Socket("SAMPLER"),
                          sigmas=Socket("SIGMAS"), latent_image=Socket("LATENT"), ctx=Hidden.CONTEXT):
    """Samples from its four parts: noise, guider, sampler and sigmas."""
    return _sample(ctx, guider, noise, sampler, sigmas, latent_image)


@node(returns=["GUIDER"], category="sampling/custom_sampling/guiders")
def CFGGuider(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
              cfg: float = CFG):
    """Classifier-free guidance: uncond + cfg * (cond - uncond), both in one batched call."""
    return Guider(model, positive, negative, cfg)


@node(returns=["GUIDER"], category="sampling/custom_sampling/guiders")
def BasicGuider(model=Socket("MODEL"), conditioning=Socket("CONDITIONING")):
    """The conditioned model alone (no negative, no guidance): for guidance-distilled models."""
    return Guider(model, conditioning)


@node(returns=["GUIDER"], category="_for_testing")
def PerpNegGuider(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                  empty_conditioning=Socket("CONDITIONING"), cfg: float = CFG,
                  neg_scale: float = Float(1.0, min=0.0, max=100.0, step=0.01)):
    """Perp-Neg guidance: the negative prompt counts only where it is orthogonal to the positive one."""
    return guiders.PerpNegGuider(model, positive, negative, cfg, empty_conditioning, neg_scale)


@node(returns=["NOISE"], category="sampling/custom_sampling/noise")
def RandomNoise(noise_seed: int = SEED):
    """The seeded initial noise (the same numbers as ComfyUI for the same seed)."""
    return SeededNoise(noise_seed)


@node(returns=["NOISE"], category="sampling/custom_sampling/noise")
def DisableNoise():
    """No initial noise: for continuing from a latent that already holds its noise."""
    return SeededNoise(0, enabled=False)


@node(returns=["SAMPLER"], category="sampling/custom_sampling/samplers")
def KSamplerSelect(sampler_name=Combo(sampler_names, default="euler")):
    """A sampler by name, with its default parameters."""
    return SamplerChoice(sampler_name)


ETA = Float(1.0, min=0.0, max=100.0, step=0.01, round=False)
S_NOISE = Float(1.0, min=0.0, max=100.0, step=0.01, round=False)
NOISE_DEVICE = Combo(["gpu", "cpu"], default="gpu",
                     tooltip="ignored: Brownian noise is always drawn on the CPU, so results are portable")
SAMPLER_CATEGORY = "sampling/custom_sampling/samplers"


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerEulerAncestral(eta: float = ETA, s_noise: float = S_NOISE):
    """Euler ancestral: eta scales the noise added back each step."""
    return SamplerChoice("euler_ancestral", {"eta": eta, "s_noise": s_noise})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerEulerAncestralCFGPP(eta: float = Float(1.0, min=0.0, max=1.0, step=0.01, round=False),
                               s_noise: float = Float(1.0, min=0.0, max=10.0, step=0.01, round=False)):
    """Euler ancestral with CFG++ (use a low cfg, about 1-2)."""
    return SamplerChoice("euler_ancestral_cfg_pp", {"eta": eta, "s_noise": s_noise})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerEulerChurn(s_churn: float = Float(0.0, min=0.0, max=100.0, step=0.01, round=False),
                      s_tmin: float = Float(0.0, min=0.0, max=1000.0, step=0.01, round=False),
                      s_tmax: float = Float(1000.0, min=0.0, max=1000.0, step=0.01, round=False),
                      s_noise: float = S_NOISE, solver=Combo(["euler", "heun", "dpm_2"], default="heun")):
    """Euler, Heun or DPM2 with Karras et al.'s churn (Algorithm 2): noise added inside [s_tmin, s_tmax]."""
    return SamplerChoice(solver, {"s_churn": s_churn, "s_tmin": s_tmin, "s_tmax": s_tmax, "s_noise": s_noise})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerLMS(order: int = Int(4, min=1, max=100)):
    """Linear multistep of a given order."""
    return SamplerChoice("lms", {"order": order})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDDIM(eta: float = Float(0.0, min=0.0, max=1.0, step=0.01, round=False)):
    """The real DDIM (Song et al. 2021): eta 0 deterministic, eta 1 as stochastic as DDPM."""
    return SamplerChoice("ddim", {"eta": eta})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDPMPP_2S_Ancestral(eta: float = ETA, s_noise: float = S_NOISE):
    """DPM-Solver++(2S) ancestral."""
    return SamplerChoice("dpmpp_2s_ancestral", {"eta": eta, "s_noise": s_noise})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDPMPP_SDE(eta: float = ETA, s_noise: float = S_NOISE,
                     r: float = Float(0.5, min=0.0, max=100.0, step=0.01, round=False), noise_device=NOISE_DEVICE):
    """DPM-Solver++ SDE with Brownian-tree noise; r places the intermediate stage."""
    return SamplerChoice("dpmpp_sde", {"eta": eta, "s_noise": s_noise, "r": r})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDPMPP_2M_SDE(solver_type=Combo(["midpoint", "heun"], default="midpoint"), eta: float = ETA,
                        s_noise: float = S_NOISE, noise_device=NOISE_DEVICE):
    """DPM-Solver++(2M) SDE with Brownian-tree noise."""
    return SamplerChoice("dpmpp_2m_sde", {"eta": eta, "s_noise": s_noise, "solver_type": solver_type})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDPMPP_3M_SDE(eta: float = ETA, s_noise: float = S_NOISE, noise_device=NOISE_DEVICE):
    """DPM-Solver++(3M) SDE with Brownian-tree noise."""
    return SamplerChoice("dpmpp_3m_sde", {"eta": eta, "s_noise": s_noise})


@node(returns=["SAMPLER"], category=SAMPLER_CATEGORY)
def SamplerDPMAdaptative(order: int = Int(3, min=2, max=3),
                         rtol: float = Float(0.05, min=0.0, max=100.0, step=0.01, round=False),
                         atol: float = Float(0.0078, min=0.0, max=100.0, step=0.01, round=False),
                         h_init: float = Float(0.05, min=0.0, max=100.0, step=0.01, round=False),
                         pcoeff: float = Float(0.0, min=0.0, max=100.0, step=0.01, round=False),
                         icoeff: float = Float(1.0, min=0.0, max=100.0, step=0.01, round=False),
                         dcoeff: float = Float(0.0, min=0.0, max=100.0, step=0.01, round=False),
                         accept_safety: float = Float(0.81, min=0.0, max=100.0, step=0.01, round=False),
                         eta: float = Float(0.0, min=0.0, max=100.0, step=0.01, round=False),
                         s_noise: float = S_NOISE):
    """DPM-Solver adaptive: step sizes chosen by an embedded error estimate and a PID controller."""
    return SamplerChoice("dpm_adaptive", {"order": order, "rtol": rtol, "atol": atol, "h_init": h_init,
                                          "pcoeff": pcoeff, "icoeff": icoeff, "dcoeff": dcoeff,
                                          "accept_safety": accept_safety, "eta": eta, "s_noise": s_noise})
