"""SEEDS (Gonzalez et al. 2023, "SEEDS: Exponential SDE Solvers for Fast High-Quality Sampling from
Diffusion Models", arXiv:2305.14267, NeurIPS): stochastic explicit exponential derivative-free
Runge-Kutta solvers, VP data prediction in lambda = -log sigma, as ComfyUI ships them.

With eta the SDE family x_t = (sigma_t / sigma_s) e^(-eta h) x_s + (1 - e^(-(1 + eta) h)) x0 +
sigma_t sqrt(1 - e^(-2 eta h)) z (eta = 0: the probability-flow ODE; eta = 1: the reverse SDE)
keeps the marginals of the diffusion for every eta. SEEDS integrates its linear part and noise
exactly and its x0 term with a Runge-Kutta tableau whose stages sit at fractions r of the step
in lambda. The noise of the stages is one Brownian path: each stage's noise is the previous
one decayed to its time plus fresh noise for the new sub-interval, so the final noise has the
exact variance sigma_t^2 (1 - e^(-2 eta h)).

With eta = 0, seeds_2 is DPM-Solver++(2S) (Lu et al. 2022, arXiv:2211.01095, Algorithm 1) and
seeds_3 the third-order singlestep exponential Runge-Kutta with stages at 1/3 and 2/3; their
orders are 2 and 3. Rectified-flow models use a different lambda in ComfyUI; these samplers
receive only sigma and assume the sigma space of eps / v / x0 models.

NFE for N = len(sigmas) - 1 steps on a schedule ending in 0: seeds_2 2N - 1, seeds_3 3N - 2 (the
step to sigma = 0 is the denoised estimate; 2N and 3N when sigmas[-1] > 0). Noise comes from
`noise_sampler`, by default the seeded per-step Gaussian noise of
`common.noise_sampler_or_default`, as in ComfyUI.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, noise_sampler_or_default, notify, steps
from .quadrature import phi
from ..noise import NoiseSampler


class _StageNoise:
    """One step's Brownian noise, extended stage by stage (the scaled noise term at each stage)."""

    def __init__(self, noise_sampler: NoiseSampler, sigma: Tensor, h: float, eta: float, s_noise: float):
        self.noise_sampler, self.sigma, self.h, self.eta, self.s_noise = noise_sampler, sigma, h, eta, s_noise
        self.inject = eta > 0 and s_noise > 0
        self.fraction, self.noise = 0.0, 0.0

    def at(self, fraction: float, sigma: Tensor) -> Tensor | float:
        """The noise term added at `fraction` of the step, where the noise level is `sigma`."""
        if not self.inject:
            return 0.0
        decay = (self.fraction - fraction) * self.h * self.eta
        fresh = self.noise_sampler(self.sigma, sigma)
        self.noise = self.noise * math.exp(decay) + math.sqrt(-math.expm1(2 * decay)) * fresh
        self.fraction, self.sigma = fraction, sigma
        return self.noise * sigma * self.s_noise


def _h_phi(k: int, z: float) -> float:
    """z phi_k(z): the integral of the linear part's kernel against polynomial x0 terms."""
    return z * phi(k, z)


@torch.no_grad()
def seeds_2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
            s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, r: float = 0.5) -> Tensor:
    """SEEDS-2 (Gonzalez et al. 2023): two stages, the second at fraction r of the step. NFE 2N - 1."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    s_in = x.new_ones([x.shape[0]])
    for i in steps(len(sigmas) - 1, disable):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        notify(callback, i, x, sigma, sigma, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = math.log(float(sigma) / float(sigma_next))
        h_eta = h * (1 + eta)
        noise = _StageNoise(noise_sampler, sigma, h, eta, s_noise)
        sigma_1 = sigma * math.exp(-r * h)
        x_1 = (sigma_1 / sigma) * math.exp(-r * h * eta) * x - _h_phi(1, -r * h_eta) * denoised
        denoised_1 = model(x_1 + noise.at(r, sigma_1), sigma_1 * s_in, **extra_args)
        x0 = torch.lerp(denoised, denoised_1, 1 / (2 * r))
        x = (sigma_next / sigma) * math.exp(-h * eta) * x - _h_phi(1, -h_eta) * x0 + noise.at(1.0, sigma_next)
    return x


@torch.no_grad()
def seeds_3(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
            s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, r_1: float = 1 / 3,
            r_2: float = 2 / 3) -> Tensor:
    """SEEDS-3 (Gonzalez et al. 2023): three stages, at fractions r_1 and r_2 of the step. NFE 3N - 2."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    s_in = x.new_ones([x.shape[0]])
    for i in steps(len(sigmas) - 1, disable):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        notify(callback, i, x, sigma, sigma, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        h = math.log(float(sigma) / float(sigma_next))
        h_eta = h * (1 + eta)
        noise = _StageNoise(noise_sampler, sigma, h, eta, s_noise)
        sigma_1, sigma_2 = sigma * math.exp(-r_1 * h), sigma * math.exp(-r_2 * h)
        x_1 = (sigma_1 / sigma) * math.exp(-r_1 * h * eta) * x - _h_phi(1, -r_1 * h_eta) * denoised
        denoised_1 = model(x_1 + noise.at(r_1, sigma_1), sigma_1 * s_in, **extra_args)
        a_2 = r_2 / r_1 * _h_phi(2, -r_2 * h_eta)
        a_1 = _h_phi(1, -r_2 * h_eta) - a_2
        x_2 = (sigma_2 / sigma) * math.exp(-r_2 * h * eta) * x - (a_1 * denoised + a_2 * denoised_1)
        denoised_2 = model(x_2 + noise.at(r_2, sigma_2), sigma_2 * s_in, **extra_args)
        b_2 = _h_phi(2, -h_eta) / r_2
        b_1 = _h_phi(1, -h_eta) - b_2
        x = ((sigma_next / sigma) * math.exp(-h * eta) * x - (b_1 * denoised + b_2 * denoised_2)
             + noise.at(1.0, sigma_next))
    return x


SAMPLERS: dict[str, Sampler] = {"seeds_2": seeds_2, "seeds_3": seeds_3}
