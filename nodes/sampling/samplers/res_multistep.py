"""RES multistep and gradient estimation: two-step samplers that reuse the previous model output.

`res_multistep*` is the second-order multistep exponential integrator of Zhang et al., "Improved
order analysis and design of exponential integrator for diffusion models sampling" (arXiv:2308.02157;
the Refined Exponential Solver, RES), in data prediction and lambda = -log sigma: the previous
and current x0 estimates are interpolated linearly in lambda and the linear part of the ODE is
integrated exactly,

    x_next = D + e^-h (x - D) + w (D_prev - D),  w = integral over the step of e^(l - lambda_next) L_prev(l) dl,

which, unlike DPM-Solver++(2M)'s 1/(2r) shortcut, satisfies the second-order conditions exactly
(w = h phi_2(-h) / c_2 in the paper's notation). With eta > 0 each step lands on sigma_down and
adds noise of std sigma_up (k-diffusion's ancestral split); the previous estimate's node is then
placed one previous deterministic sub-step (lambda(sigma_down) - lambda) behind the current
lambda. The first step and any step to sigma = 0 are first order (DDIM).

The CFG++ variants (Chung et al. 2024, arXiv:2406.08070) take every noise direction and history
term from the unconditional estimate U. Their first step is CFG++'s Euler step D + e^-h (x - U);
the multistep steps are ComfyUI's, which shift x by the guidance D - U before the step, so that
x_next = U + e^-h (x - U) + e^-h (D - U) + w (U_prev - U): the guidance enters scaled by e^-h.

`gradient_estimation` (Permenter & Yuan 2024, "Interpreting and Improving Diffusion Models from
an Optimization Perspective", arXiv:2306.04848, ICML) steps along d_bar = ge_gamma d_i + (1 - ge_gamma)
d_{i-1}: an extrapolated gradient, first order as an ODE solver for ge_gamma != 3/2, and the
denoised estimate at sigma = 0.

Ancestral noise comes from `noise_sampler`, by default the seeded per-step Gaussian noise of
`common.noise_sampler_or_default`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .common import (AncestralStep, Callback, Denoiser, Predictor, Sampler, ancestral_loop, bind_predictor,
                     first_order_step, lam_of, notify, steps, to_d)
from .quadrature import interpolant_weights
from ..noise import NoiseSampler


def _res_multistep_step() -> AncestralStep:
    """RES' second-order step to sigma_down, remembering the previous U; first order at first and to sigma = 0."""
    previous = None  # (lag of the previous estimate's node behind the next lambda, its U)

    def step(predict: Predictor, x: Tensor, sigma: Tensor, sigma_down: Tensor, denoised: Tensor,
             renoise_from: Tensor) -> Tensor:
        nonlocal previous
        x_next = first_order_step(x, sigma, sigma_down, denoised, renoise_from)
        if sigma_down > 0:
            lam, lam_down = lam_of(float(sigma)), lam_of(float(sigma_down))
            if previous is not None:
                lag, renoise_prev = previous
                w = interpolant_weights([lam, lam - lag], lam, lam_down, weight=lambda l: np.exp(l - lam_down))[1]
                # ComfyUI's CFG++ multistep step shifts x by D - U first, keeping only e^-h of that guidance.
                guidance = (1 - sigma_down / sigma) * (denoised - renoise_from)
                x_next = x_next + w * (renoise_prev - renoise_from) - guidance
            previous = (lam_down - lam, renoise_from)
        return x_next

    return step


@torch.no_grad()
def res_multistep(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, disable: bool | None = None, s_noise: float = 1.0,
                  noise_sampler: NoiseSampler | None = None) -> Tensor:
    """RES second-order multistep exponential integrator (Zhang et al. 2023, arXiv:2308.02157). Second order; NFE N."""
    return ancestral_loop(_res_multistep_step(), model, x, sigmas, extra_args, callback, disable, 0.0, s_noise,
                          noise_sampler)


@torch.no_grad()
def res_multistep_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                         callback: Callback | None = None, disable: bool | None = None, s_noise: float = 1.0,
                         noise_sampler: NoiseSampler | None = None) -> Tensor:
    """RES multistep with CFG++ (Chung et al. 2024): guided target, unconditional noise and history. NFE N."""
    return ancestral_loop(_res_multistep_step(), model, x, sigmas, extra_args, callback, disable, 0.0, s_noise,
                          noise_sampler, cfg_pp=True)


@torch.no_grad()
def res_multistep_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                            callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                            s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """RES multistep to sigma_down plus fresh noise of std sigma_up (eta = 0: res_multistep). NFE N."""
    return ancestral_loop(_res_multistep_step(), model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler)


@torch.no_grad()
def res_multistep_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                                   callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                                   s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Ancestral RES multistep with CFG++ (Chung et al. 2024). NFE N."""
    return ancestral_loop(_res_multistep_step(), model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, cfg_pp=True)


def _gradient_estimation(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                         callback: Callback | None, disable: bool | None, ge_gamma: float, cfg_pp: bool) -> Tensor:
    """Euler along U's slope plus (ge_gamma - 1) (d_i - d_{i-1}) dt; the denoised estimate at sigma = 0."""
    predict = bind_predictor(model, x, extra_args, cfg_pp)
    d_prev = None
    for i in steps(len(sigmas) - 1, disable):
        denoised, renoise_from = predict(x, sigmas[i])
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        d = to_d(x, sigmas[i], renoise_from)
        x_next = first_order_step(x, sigmas[i], sigmas[i + 1], denoised, renoise_from)
        if d_prev is not None and sigmas[i + 1] > 0:
            x_next = x_next + (ge_gamma - 1) * (d - d_prev) * (sigmas[i + 1] - sigmas[i])
        x, d_prev = x_next, d
    return x


@torch.no_grad()
def gradient_estimation(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                        callback: Callback | None = None, disable: bool | None = None,
                        ge_gamma: float = 2.0) -> Tensor:
    """Gradient estimation (Permenter & Yuan 2024): d_bar = gamma d_i + (1 - gamma) d_{i-1}. First order; NFE N."""
    return _gradient_estimation(model, x, sigmas, extra_args, callback, disable, ge_gamma, cfg_pp=False)


@torch.no_grad()
def gradient_estimation_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                               callback: Callback | None = None, disable: bool | None = None,
                               ge_gamma: float = 2.0) -> Tensor:
    """Gradient estimation with CFG++: slopes from the unconditional x0, target the guided one. NFE N."""
    return _gradient_estimation(model, x, sigmas, extra_args, callback, disable, ge_gamma, cfg_pp=True)


SAMPLERS: dict[str, Sampler] = {
    "res_multistep": res_multistep,
    "res_multistep_cfg_pp": res_multistep_cfg_pp,
    "res_multistep_ancestral": res_multistep_ancestral,
    "res_multistep_ancestral_cfg_pp": res_multistep_ancestral_cfg_pp,
    "gradient_estimation": gradient_estimation,
    "gradient_estimation_cfg_pp": gradient_estimation_cfg_pp,
}
