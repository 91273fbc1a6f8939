"""ER-SDE-Solver (Cui et al. 2025, "Elucidating the Solution Space of Extended Reverse-Time SDE for
Diffusion Models", arXiv:2309.06169, WACV), VP data prediction, as ComfyUI ships it.

The extended reverse-time SDE is a family indexed by a noise scale function phi of lambda =
sigma / alpha (here just sigma): phi(l) = l is the probability-flow ODE, phi(l) = l^2 the
classic reverse SDE, and the default phi(l) = l (e^(l^0.3) + 10) the paper's recommended
"SDE_5". Its exact solution from lambda_s to lambda_t, with r = phi(lambda_t) / phi(lambda_s), is

    x_t = r x_s + phi(lambda_t) * integral over [lambda_t, lambda_s] of phi'(l) / phi(l)^2 x0(l) dl
          + sqrt(lambda_t^2 - r^2 lambda_s^2) z.

Expanding x0(l) in a Taylor series around lambda_s and integrating by parts gives the stages:
(1 - r) x0 for stage 1, (dt + S phi(lambda_t)) x0' for stage 2, (dt^2 / 2 + S_u phi(lambda_t)) x0''
for stage 3, with dt = lambda_t - lambda_s, S = integral of 1 / phi, S_u = integral of (l -
lambda_s) / phi over [lambda_t, lambda_s], and x0', x0'' backward divided differences of past
model outputs (the paper's ER-SDE-Solver-3). Because x0' is a backward divided difference, only
first-order accurate, stages 2 and 3 are both second-order methods in their deterministic part
(phi(l) = l), the third stage only lowering the error constant. ComfyUI and the paper's code take
S and S_u as 200- (100-) point Riemann sums, whose relative error is proportional to the step:
at fine steps that decays to first order; Gauss-Legendre quadrature here keeps second order.

Rectified-flow models use lambda = sigma / (1 - sigma) in ComfyUI; these samplers receive only
sigma, so they assume the variance-exploding sigma space of eps / v / x0 models.

NFE for N = len(sigmas) - 1 steps: N. Noise comes from `noise_sampler`, by default the seeded
per-step Gaussian noise of `common.noise_sampler_or_default`, as in ComfyUI.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, add_noise, noise_sampler_or_default, notify, steps
from .quadrature import integrate
from ..noise import NoiseSampler

NoiseScaler = Callable[[Tensor], Tensor]


def default_noise_scaler(lam: Tensor) -> Tensor:
    """The paper's SDE_5 noise scale function phi(l) = l (e^(l^0.3) + 10)."""
    return lam * ((lam**0.3).exp() + 10.0)


@torch.no_grad()
def er_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
           callback: Callback | None = None, disable: bool | None = None, s_noise: float = 1.0,
           noise_sampler: NoiseSampler | None = None, noise_scaler: NoiseScaler | None = None,
           max_stage: int = 3) -> Tensor:
    """ER-SDE-Solver-3 (Cui et al. 2025): stage-`max_stage` Taylor solver of the extended reverse-time SDE.

    `noise_scaler` is phi (tensor -> tensor, default `default_noise_scaler`); phi(l) = l makes
    it a deterministic multistep ODE solver (first order with one stage, second with two or
    three). s_noise scales the injected noise (0 removes it, which for phi != l leaves a drift
    that solves no diffusion ODE). The first steps warm up with stages 1, 2; the step to
    sigma = 0 is the denoised estimate. NFE N.
    """
    if not 1 <= max_stage <= 3:
        raise ValueError(f"max_stage must be 1, 2 or 3, got {max_stage}")
    extra_args = extra_args or {}
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    scaler = noise_scaler or default_noise_scaler

    def phi(lam: np.ndarray | float) -> np.ndarray:
        return scaler(torch.as_tensor(lam, dtype=torch.float64)).numpy()

    s_in = x.new_ones([x.shape[0]])
    lams = sigmas.double().tolist()
    denoised_prev = derivative_prev = None
    for i in steps(len(sigmas) - 1, disable):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        if lams[i + 1] == 0:
            x = denoised
            continue
        lam_s, lam_t = lams[i], lams[i + 1]
        phi_t = float(phi(lam_t))
        # Through q = (phi_t / l_t) / (phi_s / l_s), so that the ODE's phi(l) = l has exactly no noise.
        q = (phi_t / lam_t) / (float(phi(lam_s)) / lam_s)
        r = q * lam_t / lam_s
        x_next = r * x + (1 - r) * denoised
        stage = min(max_stage, i + 1)
        if stage >= 2:
            dt = lam_t - lam_s
            derivative = (denoised - denoised_prev) / (lam_s - lams[i - 1])
            s = float(integrate(lambda l: 1 / phi(l), lam_t, lam_s))
            x_next = x_next + (dt + s * phi_t) * derivative
            if stage >= 3:
                second = (derivative - derivative_prev) / ((lam_s - lams[i - 2]) / 2)
                s_u = float(integrate(lambda l: (l - lam_s) / phi(l), lam_t, lam_s))
                x_next = x_next + (dt**2 / 2 + s_u * phi_t) * second
            derivative_prev = derivative
        noise_std = s_noise * lam_t * math.sqrt(max(1 - q**2, 0.0))  # sqrt(l_t^2 - r^2 l_s^2)
        x = add_noise(x_next, noise_sampler, sigmas[i], sigmas[i + 1], noise_std)
        denoised_prev = denoised
    return x


SAMPLERS: dict[str, Sampler] = {"er_sde": er_sde}
