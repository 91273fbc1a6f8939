"""DPM-Solver (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model
Sampling in Around 10 Steps", arXiv:2206.00927): exponential integrators of the probability-flow
ODE in lambda = -log sigma (the half log-SNR of a variance-exploding model) with the noise
prediction eps = (x - x0) / sigma. Within a step the linear part of the ODE is integrated exactly
and eps is expanded in lambda, which is why these solvers stay accurate with ten-odd steps.

`dpm_fast` and `dpm_adaptive` take only the range of a schedule: they integrate from sigma_max =
sigmas[0] down to sigma_min = the last non-zero sigma and, like k-diffusion, return x there, not
the final denoised estimate; `dpm_fast` spends exactly n = len(sigmas) - 1 model calls.
`dpm_solver_2s` / `dpm_solver_3s` take one singlestep DPM-Solver-2 / -3 step per interval of the
given sigmas.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .common import (Callback, Denoise, Denoiser, Sampler, add_noise, ancestral_step, bind_denoiser, lam_of,
                     noise_sampler_or_default, notify, sigma_of, step_loop, steps, to_d)
from ..noise import NoiseSampler

# eps(x, lam): the model's noise prediction at sigma = exp(-lam)
EpsFn = Callable[[Tensor, Tensor], Tensor]


def eps_prediction(denoise: Denoise) -> EpsFn:
    """The noise prediction eps(x, lam) = (x - D(x, sigma)) / sigma that DPM-Solver integrates."""

    def eps(x: Tensor, lam: Tensor) -> Tensor:
        sigma = sigma_of(lam)
        return to_d(x, sigma, denoise(x, sigma))

    return eps


def dpm_solver_step(eps_fn: EpsFn, x: Tensor, lam: Tensor, lam_next: Tensor, eps: Tensor, order: int,
                    r1: float | None = None, r2: float = 2 / 3) -> tuple[Tensor, Tensor]:
    """One DPM-Solver step of the given order from lam to lam_next, and its embedded lower-order result.

    Order 1 is DPM-Solver-1 (= DDIM = an Euler step in sigma); order 2 is Lu et al.'s Algorithm 1
    (DPM-Solver-2, intermediate point at lam + r1 h, r1 = 1/2 by default); order 3 is their
    Algorithm 2 (DPM-Solver-3, points at r1 = 1/3 and r2 = 2/3). `eps` is eps(x, lam), already
    computed, so a step costs order - 1 model calls. The second result reuses those calls for a
    solution one order lower (order 2: DPM-Solver-1; order 3: DPM-Solver-2 with r1 = 1/3; order 1:
    itself), the pair DPM-Solver-12 / -23 compare for error control.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"DPM-Solver order must be 1, 2 or 3, got {order}")
    h = lam_next - lam
    sigma_next = sigma_of(lam_next)
    x_1 = x - sigma_next * torch.expm1(h) * eps
    if order == 1:
        return x_1, x_1
    r1 = (1 / 2 if order == 2 else 1 / 3) if r1 is None else r1
    lam_1 = lam + r1 * h
    eps_1 = eps_fn(x - sigma_of(lam_1) * torch.expm1(r1 * h) * eps, lam_1)
    x_2 = x_1 - sigma_next / (2 * r1) * torch.expm1(h) * (eps_1 - eps)
    if order == 2:
        return x_2, x_1
    lam_2 = lam + r2 * h
    sigma_2 = sigma_of(lam_2)
    u_2 = (x - sigma_2 * torch.expm1(r2 * h) * eps
           - sigma_2 * (r2 / r1) * (torch.expm1(r2 * h) / (r2 * h) - 1) * (eps_1 - eps))
    eps_2 = eps_fn(u_2, lam_2)
    x_3 = x_1 - sigma_next / r2 * (torch.expm1(h) / h - 1) * (eps_2 - eps)
    return x_3, x_2


def schedule_range(sigmas: Tensor) -> tuple[Tensor, Tensor]:
    """ComfyUI's (sigma_max, sigma_min) for dpm_fast / dpm_adaptive: the first sigma and the last non-zero one."""
    return sigmas[0], sigmas[-2] if sigmas[-1] == 0 else sigmas[-1]


def _prepare(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, eta: float,
             noise_sampler: NoiseSampler | None) -> tuple[NoiseSampler, EpsFn]:
    """The noise sampler and eps of dpm_fast / dpm_adaptive; refuses ancestral steps towards higher noise."""
    sigma_start, sigma_end = schedule_range(sigmas)
    if eta and sigma_end > sigma_start:
        raise ValueError("eta must be 0 when the sigmas rise (sampling towards noise)")
    return noise_sampler_or_default(noise_sampler, x, extra_args), eps_prediction(bind_denoiser(model, x, extra_args))


def _ancestral_target(lam: Tensor, lam_next: Tensor, lam_end: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """Where a DPM-Solver step lands with eta > 0, and the noise std that then brings it to sigma(lam_next).

    k-diffusion's ancestral DPM-Solver: step deterministically to sigma_down (never past lam_end),
    then add noise of std sqrt(sigma_next^2 - sigma_down^2).
    """
    if not eta:
        return lam_next, torch.zeros_like(lam_next)
    sigma_down, _ = ancestral_step(sigma_of(lam), sigma_of(lam_next), eta)
    lam_down = torch.minimum(lam_end, lam_of(sigma_down))
    return lam_down, (sigma_of(lam_next) ** 2 - sigma_of(lam_down) ** 2) ** 0.5


@torch.no_grad()
def dpm_fast(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
             callback: Callback | None = None, disable: bool | None = None, eta: float = 0.0,
             s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver-fast (Lu et al. 2022): exactly n = len(sigmas) - 1 model calls.

    Steps uniform in lambda from sigmas[0] to the last non-zero sigma: floor(n / 3) + 1 of them,
    all DPM-Solver-3 except the last one or two (orders [.., 3, 2, 1] when 3 divides n, else
    [.., 3, n % 3]). Returns x at sigma_min. With eta > 0 each step is made ancestral.
    NFE: n. One callback per step.
    """
    if len(sigmas) <= 1:
        return x
    noise_sampler, eps_fn = _prepare(model, x, sigmas, extra_args, eta, noise_sampler)
    n = len(sigmas) - 1
    k = n // 3 + 1
    orders = [3] * (k - 2) + [2, 1] if n % 3 == 0 else [3] * (k - 1) + [n % 3]
    sigma_max, sigma_min = schedule_range(sigmas)
    lams = torch.linspace(float(lam_of(sigma_max)), float(lam_of(sigma_min)), k + 1,
                          dtype=sigmas.dtype, device=sigmas.device)
    for i in steps(len(orders), disable):
        lam, lam_next = lams[i], lams[i + 1]
        sigma = sigma_of(lam)
        lam_down, sigma_up = _ancestral_target(lam, lam_next, lams[-1], eta)
        eps = eps_fn(x, lam)
        notify(callback, i, x, sigma, sigma, x - sigma * eps)
        x, _ = dpm_solver_step(eps_fn, x, lam, lam_down, eps, orders[i])
        x = add_noise(x, noise_sampler, sigma, sigma_of(lam_next), s_noise * sigma_up)
    return x


class PIDStepSizeController:
    """PID step-size control (Söderlind 2003) as k-diffusion applies it to DPM-Solver-12 / -23.

    The step h is multiplied by limiter(prod_k (1 / err_k) ** b_k) over the current error and the
    last two accepted ones; the default (pcoeff, icoeff, dcoeff) = (0, 1, 0) is the classic
    integral controller h *= err ** (-1 / order) of Lu et al.'s adaptive solver (which uses a 0.9
    safety factor instead). A step is accepted when the factor is at least `accept_safety`.
    """

    def __init__(self, h: float, pcoeff: float, icoeff: float, dcoeff: float, order: float,
                 accept_safety: float = 0.81, eps: float = 1e-8):
        self.h = h
        self.exponents = ((pcoeff + icoeff + dcoeff) / order, -(pcoeff + 2 * dcoeff) / order, dcoeff / order)
        self.accept_safety = accept_safety
        self.eps = eps
        self.inverse_errors: list[float] = []

    def propose(self, error: float) -> bool:
        """Updates h from this attempt's scaled error; returns whether the attempt is accepted."""
        inverse = 1 / (float(error) + self.eps)
        if not self.inverse_errors:
            self.inverse_errors = [inverse, inverse, inverse]
        self.inverse_errors[0] = inverse
        factor = math.prod(e**b for e, b in zip(self.inverse_errors, self.exponents))
        factor = 1 + math.atan(factor - 1)  # a smooth limiter: the factor stays in [1 - pi/4, 1 + pi/2)
        accept = factor >= self.accept_safety
        if accept:
            self.inverse_errors = [inverse, inverse, self.inverse_errors[1]]
        self.h *= factor
        return accept


@torch.no_grad()
def dpm_adaptive(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, order: int = 3,
                 rtol: float = 0.05, atol: float = 0.0078, h_init: float = 0.05, pcoeff: float = 0.0,
                 icoeff: float = 1.0, dcoeff: float = 0.0, accept_safety: float = 0.81, eta: float = 0.0,
                 s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver-12 / -23, the adaptive step-size solvers of Lu et al. (2022).

    Each attempt takes an order-`order` step and its embedded order - 1 solution from the same
    model calls; their difference, scaled by max(atol, rtol * |x|), drives a PID controller
    (`PIDStepSizeController`) in lambda. Integrates from sigmas[0] to the last non-zero sigma and
    returns x there (also backwards, towards noise, when the sigmas rise and eta = 0); only the
    range of `sigmas` is used, not its steps.
    NFE: one call per accepted step (eps at the step's start, kept across rejected attempts)
    plus order - 1 per attempt. One callback per attempt.
    """
    if order not in (2, 3):
        raise ValueError("dpm_adaptive: order must be 2 or 3")
    if len(sigmas) <= 1:
        return x
    noise_sampler, eps_fn = _prepare(model, x, sigmas, extra_args, eta, noise_sampler)
    sigma_start, sigma_end = schedule_range(sigmas)
    lam, lam_end = lam_of(sigma_start), lam_of(sigma_end)
    direction = 1.0 if lam_end > lam else -1.0  # sigmas rising (FlipSigmas) integrate towards noise
    pid = PIDStepSizeController(direction * abs(h_init), pcoeff, icoeff, dcoeff, 1.5 if eta else order,
                                accept_safety)
    x_prev, eps = x, None
    for i in steps(None, disable):
        if direction * (lam_end - lam) <= 1e-5:
            break
        sigma = sigma_of(lam)
        lam_next = lam + pid.h
        lam_next = torch.minimum(lam_end, lam_next) if direction > 0 else torch.maximum(lam_end, lam_next)
        lam_down, sigma_up = _ancestral_target(lam, lam_next, lam_end, eta)
        if eps is None:
            eps = eps_fn(x, lam)
        notify(callback, i, x, sigma, sigma, x - sigma * eps)
        x_high, x_low = dpm_solver_step(eps_fn, x, lam, lam_down, eps, order)
        scale = (rtol * torch.maximum(x_low.abs(), x_prev.abs())).clamp_min(atol)
        error = torch.linalg.norm((x_low - x_high) / scale) / x.numel() ** 0.5
        if pid.propose(error):
            x_prev = x_low
            x = add_noise(x_high, noise_sampler, sigma, sigma_of(lam_next), s_noise * sigma_up)
            lam, eps = lam_next, None
    return x


def _dpm_solver_singlestep(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                           callback: Callback | None, disable: bool | None, order: int, r1: float,
                           r2: float = 2 / 3) -> Tensor:
    """One DPM-Solver-`order` step per interval of sigmas; the step to sigma = 0 is the denoised estimate."""
    denoise = bind_denoiser(model, x, extra_args)
    eps_fn = eps_prediction(denoise)

    def step(i: int, x: Tensor, denoised: Tensor) -> Tensor:
        eps = to_d(x, sigmas[i], denoised)
        return dpm_solver_step(eps_fn, x, lam_of(sigmas[i]), lam_of(sigmas[i + 1]), eps, order, r1, r2)[0]

    # At sigma = 0 (lambda = inf) every DPM-Solver step collapses to the x0 prediction: the loop lands there.
    return step_loop(step, denoise, x, sigmas, callback, disable)


@torch.no_grad()
def dpm_solver_2s(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, disable: bool | None = None, r1: float = 0.5) -> Tensor:
    """Singlestep DPM-Solver-2 (Lu et al. 2022, Algorithm 1) on the given sigmas, second order.

    Noise prediction; intermediate model call at lambda + r1 h. With r1 = 1/2 this is k-diffusion's
    dpm_2 without churn (in sigma space: an Euler half step to the geometric-mean sigma, then the
    full step with the slope found there). NFE: 2N - 1 (2N when sigmas[-1] > 0).
    """
    return _dpm_solver_singlestep(model, x, sigmas, extra_args, callback, disable, order=2, r1=r1)


@torch.no_grad()
def dpm_solver_3s(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, disable: bool | None = None, r1: float = 1 / 3,
                  r2: float = 2 / 3) -> Tensor:
    """Singlestep DPM-Solver-3 (Lu et al. 2022, Algorithm 2) on the given sigmas, third order.

    Noise prediction; intermediate model calls at lambda + r1 h and lambda + r2 h.
    NFE: 3N - 2 (3N when sigmas[-1] > 0).
    """
    return _dpm_solver_singlestep(model, x, sigmas, extra_args, callback, disable, order=3, r1=r1, r2=r2)


SAMPLERS: dict[str, Sampler] = {
    "dpm_fast": dpm_fast,
    "dpm_adaptive": dpm_adaptive,
    "dpm_solver_2s": dpm_solver_2s,
    "dpm_solver_3s": dpm_solver_3s,
}
