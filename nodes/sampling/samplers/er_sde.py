"""ER-SDE-Solver (Cui et al. 2025, "Elucidating the Solution Space of Extended Reverse-Time SDE for
Diffusion Models", arXiv:2309.06169, WACV), VP data prediction.

The paper's time variable is sigma / alpha, which in the variance-exploding frame of these samplers
is sigma itself (not the log-SNR lambda of the exponential integrators). The extended reverse-time
SDE is a family indexed by a noise scale function phi of it: phi(s) = s is the probability-flow
ODE, phi(s) = s^2 the classic reverse SDE, and the default phi(s) = s (e^(s^0.3) + 10) the paper's
recommended "SDE_5". Its exact solution from sigma_s to sigma_t, with r = phi(sigma_t) / phi(sigma_s), is

    x_t = r x_s + phi(sigma_t) * integral over [sigma_t, sigma_s] of phi'(u) / phi(u)^2 x0(u) du
          + sqrt(sigma_t^2 - r^2 sigma_s^2) z.

Expanding x0(u) in a Taylor series around sigma_s and integrating by parts gives the stages:
(1 - r) x0 for stage 1, (dt + S phi(sigma_t)) x0' for stage 2, (dt^2 / 2 + S_u phi(sigma_t)) x0''
for stage 3, with dt = sigma_t - sigma_s, S = integral of 1 / phi, S_u = integral of (u - sigma_s)
/ phi over [sigma_t, sigma_s], and x0', x0'' backward divided differences of past model outputs
(the paper's ER-SDE-Solver-3). Because x0' is a backward divided difference, only first-order
accurate, stages 2 and 3 are both second-order methods in their deterministic part (phi(s) = s),
the third stage only lowering the error constant. S and S_u are integrated as ComfyUI does, by a
left Riemann sum of 200 points, so that the sampler gives ComfyUI's numbers (its error, relative
1/400 of those stages, is far below the sampler's own). On a flow model the time variable is
sigma / alpha = sigma / (1 - sigma), the state is rescaled by alpha_t / alpha_s and every x0 and
noise term scaled by alpha_t, from sigma 1 moved to `common.finite_snr_sigmas` (ComfyUI's form).

Noise comes from `noise_sampler`, by default the seeded per-step Gaussian noise of
`common.noise_sampler_or_default`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .common import (Callback, Denoiser, Sampler, add_noise, bind_denoiser, finite_snr_sigmas, frame_of,
                     noise_sampler_or_default, step_loop)
from .quadrature import riemann_sum
from ..noise import NoiseSampler

NoiseScaler = Callable[[Tensor], Tensor]
# ComfyUI's er_sde integrates S and S_u by a left Riemann sum of this many points.
INTEGRATION_POINTS = 200


def default_noise_scaler(sigma: Tensor) -> Tensor:
    """The paper's SDE_5 noise scale function phi(s) = s (e^(s^0.3) + 10)."""
    return sigma * ((sigma**0.3).exp() + 10.0)


@torch.no_grad()
def er_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
           callback: Callback | None = None, disable: bool | None = None, s_noise: float = 1.0,
           noise_sampler: NoiseSampler | None = None, noise_scaler: NoiseScaler | None = None,
           max_stage: int = 3) -> Tensor:
    """ER-SDE-Solver-3 (Cui et al. 2025): stage-`max_stage` Taylor solver of the extended reverse-time SDE.

    `noise_scaler` is phi (tensor -> tensor, default `default_noise_scaler`); phi(s) = s makes
    it a deterministic multistep ODE solver (first order with one stage, second with two or
    three). s_noise scales the injected noise (0 removes it, which for phi(s) != s leaves a drift
    that solves no diffusion ODE). The first steps warm up with stages 1, 2; the step to
    sigma = 0 is the denoised estimate. NFE N.
    """
    if not 1 <= max_stage <= 3:
        raise ValueError(f"max_stage must be 1, 2 or 3, got {max_stage}")
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    scaler = noise_scaler or default_noise_scaler
    frame, sigmas = frame_of(extra_args), finite_snr_sigmas(sigmas, extra_args)

    def phi(sigma: np.ndarray | float) -> np.ndarray:
        return scaler(torch.as_tensor(sigma, dtype=torch.float64)).numpy()

    def integral(f: Callable[[np.ndarray], np.ndarray], a: float, b: float) -> float:
        return float(riemann_sum(f, a, b, INTEGRATION_POINTS, endpoint=False))

    sigma = frame.scaled_sigma(sigmas.double()).tolist()  # the paper's time sigma / alpha
    alpha = frame.alpha(sigmas.double()).tolist()
    denoised_prev = derivative_prev = None

    def step(i: int, x: Tensor, denoised: Tensor) -> Tensor:
        nonlocal denoised_prev, derivative_prev
        sigma_s, sigma_t = sigma[i], sigma[i + 1]
        phi_t = float(phi(sigma_t))
        # Through q = (phi_t / s_t) / (phi_s / s_s), so that the ODE's phi(s) = s has exactly no noise.
        q = (phi_t / sigma_t) / (float(phi(sigma_s)) / sigma_s)
        r = q * sigma_t / sigma_s
        x0_term = (1 - r) * denoised
        stage = min(max_stage, i + 1)
        if stage >= 2:
            dt = sigma_t - sigma_s
            derivative = (denoised - denoised_prev) / (sigma_s - sigma[i - 1])
            s = integral(lambda u: 1 / phi(u), sigma_t, sigma_s)
            x0_term = x0_term + (dt + s * phi_t) * derivative
            if stage >= 3:
                second = (derivative - derivative_prev) / ((sigma_s - sigma[i - 2]) / 2)
                s_u = integral(lambda u: (u - sigma_s) / phi(u), sigma_t, sigma_s)
                x0_term = x0_term + (dt**2 / 2 + s_u * phi_t) * second
            derivative_prev = derivative
        x_next = alpha[i + 1] / alpha[i] * r * x + alpha[i + 1] * x0_term
        noise_std = s_noise * alpha[i + 1] * sigma_t * math.sqrt(max(1 - q**2, 0.0))  # alpha_t sqrt(s_t^2 - r^2 s_s^2)
        denoised_prev = denoised
        return add_noise(x_next, noise_sampler, sigmas[i], sigmas[i + 1], noise_std)

    return step_loop(step, bind_denoiser(model, x, extra_args), x, sigmas, callback, disable)


SAMPLERS: dict[str, Sampler] = {"er_sde": er_sde}
