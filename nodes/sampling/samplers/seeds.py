"""SEEDS (Gonzalez et al. 2023, "SEEDS: Exponential SDE Solvers for Fast High-Quality Sampling from
Diffusion Models", arXiv:2305.14267, NeurIPS): stochastic explicit exponential derivative-free
Runge-Kutta solvers, VP data prediction in lambda = -log sigma.

With eta the SDE family x_t = (sigma_t / sigma_s) e^(-eta h) x_s + (1 - e^(-(1 + eta) h)) x0 +
sigma_t sqrt(1 - e^(-2 eta h)) z (eta = 0: the probability-flow ODE; eta = 1: the reverse SDE)
keeps the marginals of the diffusion for every eta. SEEDS integrates its linear part and noise
exactly and its x0 term with a Runge-Kutta tableau whose stages sit at fractions r of the step
in lambda. The noise of the stages is one Brownian path: each stage's noise is the previous
one decayed to its time plus fresh noise for the new sub-interval, so the final noise has the
exact variance sigma_t^2 (1 - e^(-2 eta h)).

With eta = 0, seeds_2 is DPM-Solver++(2S) (Lu et al. 2022, arXiv:2211.01095, Algorithm 1) and
seeds_3 the third-order singlestep exponential Runge-Kutta with stages at 1/3 and 2/3; their
orders are 2 and 3. On a flow model they run, as in ComfyUI, in its half log-SNR log((1 - sigma) /
sigma) with every x0 term scaled by alpha = 1 - sigma, from sigma 1 moved to
`common.finite_snr_sigmas`. The step to sigma = 0 is the denoised estimate. Noise comes from `noise_sampler`, by
default the seeded per-step Gaussian noise of `common.noise_sampler_or_default`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .common import (Callback, Denoise, Denoiser, Frame, Sampler, bind_denoiser, finite_snr_sigmas, frame_of,
                     noise_sampler_or_default, step_loop)
from .quadrature import phi
from ..noise import NoiseSampler


class _ExponentialStep:
    """One step from sigma to sigma_next whose stages share the exact linear part and one Brownian path."""

    def __init__(self, frame: Frame, x: Tensor, sigma: Tensor, sigma_next: Tensor, eta: float, s_noise: float,
                 noise_sampler: NoiseSampler):
        self.frame, self.x, self.sigma, self.sigma_next, self.eta = frame, x, sigma, sigma_next, eta
        self.s_noise, self.noise_sampler = s_noise, noise_sampler
        self.lam = frame.half_log_snr(sigma)
        self.h = float(frame.half_log_snr(sigma_next) - self.lam)
        self.h_eta = self.h * (1 + eta)
        self.inject = eta > 0 and s_noise > 0
        self.noise_fraction, self.noise_sigma, self.noise = 0.0, sigma, 0.0

    def h_phi(self, k: int, fraction: float) -> float:
        """z phi_k(z) at z = -fraction h (1 + eta): the linear part's kernel integrated against polynomial x0 terms."""
        z = -fraction * self.h_eta
        return z * phi(k, z)

    def stage(self, fraction: float, x0_term: Tensor) -> tuple[Tensor, Tensor]:
        """(x, sigma) at `fraction` of the step in lambda, given the stage's x0 term."""
        sigma = self.frame.sigma_at(self.lam + fraction * self.h)
        return self._carry(fraction, sigma, x0_term), sigma

    def end(self, x0_term: Tensor) -> Tensor:
        """x at sigma_next, given the step's x0 term."""
        return self._carry(1.0, self.sigma_next, x0_term)

    def _carry(self, fraction: float, sigma: Tensor, x0_term: Tensor) -> Tensor:
        """The linear part solved exactly to sigma, minus alpha times the x0 term, plus the path's noise there."""
        decayed = (sigma / self.sigma) * math.exp(-fraction * self.h * self.eta) * self.x
        return decayed - self.frame.alpha(sigma) * x0_term + self._noise(fraction, sigma)

    def _noise(self, fraction: float, sigma: Tensor) -> Tensor | float:
        """The path's noise term at `fraction`: the previous one decayed there plus fresh noise for the sub-interval."""
        if not self.inject:
            return 0.0
        decay = (self.noise_fraction - fraction) * self.h * self.eta
        fresh = self.noise_sampler(self.noise_sigma, sigma)
        self.noise = self.noise * math.exp(decay) + math.sqrt(-math.expm1(2 * decay)) * fresh
        self.noise_fraction, self.noise_sigma = fraction, sigma
        return self.noise * sigma * self.s_noise


# (denoise, the step, D at its start) -> x at sigma_next
Stages = Callable[[Denoise, _ExponentialStep, Tensor], Tensor]


def _seeds(stages: Stages, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
           callback: Callback | None, disable: bool | None, eta: float, s_noise: float,
           noise_sampler: NoiseSampler | None) -> Tensor:
    """One exponential Runge-Kutta step per interval; the step to sigma = 0 is the denoised estimate."""
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    frame, sigmas = frame_of(extra_args), finite_snr_sigmas(sigmas, extra_args)

    def step(i: int, x: Tensor, denoised: Tensor) -> Tensor:
        exponential_step = _ExponentialStep(frame, x, sigmas[i], sigmas[i + 1], eta, s_noise, noise_sampler)
        return stages(denoise, exponential_step, denoised)

    return step_loop(step, denoise, x, sigmas, callback, disable)


@torch.no_grad()
def seeds_2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
            s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, r: float = 0.5) -> Tensor:
    """SEEDS-2 (Gonzalez et al. 2023): two stages, the second at fraction r of the step. NFE 2N - 1."""

    def stages(denoise: Denoise, step: _ExponentialStep, denoised: Tensor) -> Tensor:
        x_1, sigma_1 = step.stage(r, step.h_phi(1, r) * denoised)
        x0 = torch.lerp(denoised, denoise(x_1, sigma_1), 1 / (2 * r))
        return step.end(step.h_phi(1, 1.0) * x0)

    return _seeds(stages, model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler)


@torch.no_grad()
def seeds_3(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
            s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, r_1: float = 1 / 3,
            r_2: float = 2 / 3) -> Tensor:
    """SEEDS-3 (Gonzalez et al. 2023): three stages, at fractions r_1 and r_2 of the step. NFE 3N - 2."""

    def stages(denoise: Denoise, step: _ExponentialStep, denoised: Tensor) -> Tensor:
        x_1, sigma_1 = step.stage(r_1, step.h_phi(1, r_1) * denoised)
        denoised_1 = denoise(x_1, sigma_1)
        a_2 = r_2 / r_1 * step.h_phi(2, r_2)
        x_2, sigma_2 = step.stage(r_2, (step.h_phi(1, r_2) - a_2) * denoised + a_2 * denoised_1)
        denoised_2 = denoise(x_2, sigma_2)
        b_2 = step.h_phi(2, 1.0) / r_2
        return step.end((step.h_phi(1, 1.0) - b_2) * denoised + b_2 * denoised_2)

    return _seeds(stages, model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler)


SAMPLERS: dict[str, Sampler] = {"seeds_2": seeds_2, "seeds_3": seeds_3}
