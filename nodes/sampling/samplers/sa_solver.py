"""SA-Solver (Xue et al. 2023, "SA-Solver: Stochastic Adams Solver for Fast Sampling of Diffusion
Models", arXiv:2309.05019, NeurIPS): stochastic Adams predictor-corrector in data prediction and
lambda = -log sigma.

With stochasticity tau, the SDE family's exact solution from lambda_s to lambda_t is

    x_t = (sigma_t / sigma_s) e^(-tau^2 h) x_s + (1 + tau^2) * integral of e^((1 + tau^2)(l - lambda_t)) x0(l) dl
          + sigma_t sqrt(1 - e^(-2 tau^2 h)) z,

(tau = 0: the probability-flow ODE; tau = 1: the reverse SDE). The predictor (eq. 15) replaces
x0 by the Lagrange interpolant in lambda of the last `predictor_order` outputs; after the model
is called at the prediction, the corrector (eq. 18) re-solves the step with the interpolant that
also includes that new output (`corrector_order` points) and the same noise z. In PECE mode the
model is called again at the corrected point and that output replaces the predicted one.
With tau = 0 the method is of order corrector_order (predictor_order without a corrector), and
the order-2 predictor alone is RES multistep. Orders drop near the end of a schedule that reaches
sigma = 0, and the step to sigma = 0 is the denoised estimate; on a schedule that stops above 0
the result is the last prediction at sigmas[-1].

tau is a function of sigma (`tau_func`); by default, as in ComfyUI, tau = 1 between the model's
sigmas at 20% and 80% of the run (`percent_to_sigma` of extra_args["model_sampling"]; without one,
those of SD's scaled-linear 1000-step table), 0 (ODE) outside. On a flow model lambda is its half
log-SNR log((1 - sigma) / sigma) and the x0 terms are scaled by alpha = 1 - sigma, from sigma 1
moved to `common.finite_snr_sigmas` (ComfyUI's form). Noise comes from `noise_sampler`, by default
the seeded per-step Gaussian noise of `common.noise_sampler_or_default`.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .common import (Callback, Denoiser, Sampler, bind_denoiser, finite_snr_sigmas, frame_of, noise_sampler_or_default,
                     notify, steps)
from .quadrature import interpolant_weights
from ..noise import NoiseSampler

TauFunc = Callable[[float], float]

# The default SDE interval spans these fractions of the run (model_sampling.percent_to_sigma).
TAU_START_PERCENT, TAU_END_PERCENT = 0.2, 0.8
# Without a model_sampling, the interval of SD's scaled-linear schedule: the sigmas at timesteps 799.2 and 199.8.
SD_TAU_START_SIGMA = 5.092408
SD_TAU_END_SIGMA = 0.571189


def tau_interval(start_sigma: float, end_sigma: float, eta: float = 1.0) -> TauFunc:
    """SA-Solver's stochasticity: tau = eta for sigma in [end_sigma, start_sigma], 0 (an ODE step) elsewhere."""
    return lambda sigma: eta if eta > 0 and end_sigma <= sigma <= start_sigma else 0.0


def default_tau(extra_args: dict | None) -> TauFunc:
    """tau = 1 between the model's sigmas at 20% and 80% of the run, as ComfyUI's default."""
    model_sampling = (extra_args or {}).get("model_sampling")
    if model_sampling is None:
        return tau_interval(SD_TAU_START_SIGMA, SD_TAU_END_SIGMA)
    return tau_interval(model_sampling.percent_to_sigma(TAU_START_PERCENT),
                        model_sampling.percent_to_sigma(TAU_END_PERCENT))


def _adams_weights(lams: list[float], lam_s: float, lam_t: float, tau: float) -> list[float]:
    """b_j = (1 + tau^2) * integral over [lam_s, lam_t] of e^((1 + tau^2)(l - lam_t)) L_j(l), L_j through lams."""
    rate = 1 + tau**2
    return interpolant_weights(lams, lam_s, lam_t, weight=lambda l: rate * np.exp(rate * (l - lam_t)))


def _combine(weights: list[float], outputs: list[Tensor]) -> Tensor:
    return sum(w * d for w, d in zip(weights, outputs))


def _sa_solver(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, callback: Callback | None,
               disable: bool | None, tau_func: TauFunc | None, s_noise: float, noise_sampler: NoiseSampler | None,
               predictor_order: int, corrector_order: int, use_pece: bool) -> Tensor:
    """The SA-Solver loop: evaluate at the prediction, correct the last step, predict the next."""
    if not 1 <= predictor_order <= 6 or not 0 <= corrector_order <= 6:
        raise ValueError("SA-Solver orders: predictor 1-6, corrector 0-6")
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    tau_func = tau_func or default_tau(extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    frame, sigmas = frame_of(extra_args), finite_snr_sigmas(sigmas, extra_args)
    sigma = sigmas.double().tolist()
    alpha = frame.alpha(sigmas.double()).tolist()
    lams = frame.half_log_snr(sigmas.double()).tolist()
    n = len(sigmas) - 1
    lower_order_to_end = sigma[-1] == 0
    outputs: list[Tensor] = []  # model outputs at lams[i - len + 1 .. i]
    x_pred, tau, noise = x, 0.0, 0.0
    for i in steps(n, disable):
        denoised = denoise(x_pred, sigmas[i])
        notify(callback, i, x_pred, sigmas[i], sigmas[i], denoised)
        outputs = (outputs + [denoised])[-max(predictor_order, corrector_order):]
        p = min(predictor_order, len(outputs))
        c = 0 if i == 0 or (sigma[i + 1] == 0 and not use_pece) else min(corrector_order, len(outputs))
        if lower_order_to_end:
            p, c = min(p, n - 1 - i), min(c, n - i)
        if c == 0:
            x = x_pred
        else:
            weights = _adams_weights(lams[i - c + 1: i + 1], lams[i - 1], lams[i], tau)
            decay = sigma[i] / sigma[i - 1] * math.exp(-tau**2 * (lams[i] - lams[i - 1]))
            x = decay * x + alpha[i] * _combine(weights, outputs[-c:]) + noise  # the predictor's noise, reused
            if use_pece:
                denoised = denoise(x, sigmas[i])
                outputs[-1] = denoised
        if sigma[i + 1] == 0:
            x_pred = denoised
            continue
        tau = tau_func(sigma[i + 1])
        h = lams[i + 1] - lams[i]
        weights = _adams_weights(lams[i - p + 1: i + 1], lams[i], lams[i + 1], tau)
        noise_std = sigma[i + 1] * math.sqrt(-math.expm1(-2 * tau**2 * h)) * s_noise
        noise = noise_sampler(sigmas[i], sigmas[i + 1]) * noise_std if noise_std > 0 else 0.0
        decayed = sigma[i + 1] / sigma[i] * math.exp(-tau**2 * h) * x
        x_pred = decayed + alpha[i + 1] * _combine(weights, outputs[-p:]) + noise
    return x_pred  # the last prediction has no model call left to correct it


@torch.no_grad()
def sa_solver(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
              callback: Callback | None = None, disable: bool | None = None, tau_func: TauFunc | None = None,
              s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, predictor_order: int = 3,
              corrector_order: int = 4, use_pece: bool = False) -> Tensor:
    """SA-Solver (Xue et al. 2023, eqs. 15 and 18): stochastic Adams predictor-corrector, PEC mode by default. NFE N."""
    return _sa_solver(model, x, sigmas, extra_args, callback, disable, tau_func, s_noise, noise_sampler,
                      predictor_order, corrector_order, use_pece)


@torch.no_grad()
def sa_solver_pece(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, disable: bool | None = None, tau_func: TauFunc | None = None,
                   s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, predictor_order: int = 3,
                   corrector_order: int = 4) -> Tensor:
    """SA-Solver in PECE mode: the model is called again at each corrected point. NFE 2N - 1."""
    return _sa_solver(model, x, sigmas, extra_args, callback, disable, tau_func, s_noise, noise_sampler,
                      predictor_order, corrector_order, use_pece=True)


SAMPLERS: dict[str, Sampler] = {"sa_solver": sa_solver, "sa_solver_pece": sa_solver_pece}
