"""Linear multistep samplers on the probability-flow ODE dx/dsigma = d(x, sigma) = (x - D(x, sigma)) / sigma:
LMS, PLMS (PNDM), iPNDM, iPNDM-v and DEIS.

Each step is x_{i+1} = x_i + sum_j c_j d_{i-j}: the last few slopes are interpolated and the
interpolant integrated over [sigma_i, sigma_{i+1}] (the variable-step Adams-Bashforth formulas
are in Hairer, Nørsett & Wanner, "Solving ODEs I", III.5). They differ only in the interpolant:

- `plms`, `ipndm`: Adams-Bashforth with the constant-step coefficients (3, -1)/2, (23, -16, 5)/12,
  (55, -59, 37, -9)/24 times sigma_{i+1} - sigma_i. In sigma space PNDM's "transfer" x_next = x +
  (sigma_next - sigma) eps' is exactly this (eps' = d, see ddim.py), so PLMS is AB4 on slopes
  sampled at steps that PNDM assumes equal in its own (timestep) variable.
- `lms`, `ipndm_v`: variable-step Adams-Bashforth in sigma (the interpolant is a polynomial in sigma),
  integrated exactly by `quadrature.interpolant_weights` (k-diffusion uses scipy's adaptive quadrature).
- `deis`: the interpolant is a polynomial in a chosen time variable tau (VP time, sigma, or log
  sigma), integrated exactly against dsigma: c_j = integral of L_j(tau(sigma)) dsigma.

Orders. A k-step method with exact variable-step coefficients (lms, ipndm_v, deis) has local error
O(h^(k+1)). Constant-step coefficients on a non-uniform sigma grid (plms, ipndm; k >= 2) are
off by O(h) relative to the exact ones, which leaves a local error O(h^3): they are second-order
methods on any schedule that is not uniform in sigma. All four start with lower orders (Euler,
or PLMS's pseudo improved Euler), so the global error is at best O(h^2) in the strict limit;
the start-up error, made where sigma is largest and the trajectory nearly straight, has a small
constant, and lms / ipndm_v / deis show their design order over practical step counts.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, bind_denoiser, notify, steps, to_d
from .quadrature import Fn, interpolant_weights

# (sigma values, step index i, slopes available) -> coefficients c_j of d_i, d_{i-1}, ... (newest first), or
# None for a step that lands on the denoised estimate
Weights = Callable[[list[float], int, int], list[float] | None]
# The largest order of the multistep samplers with a table or a closed form behind them (LMS integrates any order).
MAX_ORDER = 4

# Adams-Bashforth coefficients for equal steps, per unit step: integrals over [0, 1] of the
# Lagrange basis through the nodes 0, -1, -2, ... (k = 2: 3/2, -1/2; k = 4: 55/24, -59/24, ...).
_ADAMS_BASHFORTH = {k: interpolant_weights(range(0, -k, -1), 0.0, 1.0) for k in range(1, 5)}


def _constant_step_weights(final_euler: bool) -> Weights:
    """Constant-step Adams-Bashforth scaled by the step; Euler for a step to sigma = 0 when `final_euler`."""
    def weights(sigma: list[float], i: int, available: int) -> list[float]:
        order = 1 if final_euler and sigma[i + 1] == 0 else available
        return [c * (sigma[i + 1] - sigma[i]) for c in _ADAMS_BASHFORTH[order]]

    return weights


def _check_order(max_order: int) -> None:
    if not 1 <= max_order <= MAX_ORDER:
        raise ValueError(f"max_order must be between 1 and {MAX_ORDER}, got {max_order}")


def _variable_step_weights(sigma: list[float], i: int, available: int) -> list[float] | None:
    """Variable-step Adams-Bashforth: the Lagrange basis in sigma integrated over the step; D at sigma = 0."""
    if sigma[i + 1] == 0:
        return None
    return interpolant_weights(sigma[i - available + 1: i + 1][::-1], sigma[i], sigma[i + 1])


def _linear_multistep(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                      callback: Callback | None, disable: bool | None, max_order: int, weights: Weights,
                      pseudo_improved_euler: bool = False) -> Tensor:
    """x += sum_j c_j d_{i-j} over the last max_order slopes; optionally PNDM's two-call first step."""
    denoise = bind_denoiser(model, x, extra_args)
    sigma = sigmas.double().tolist()
    slopes: deque[Tensor] = deque(maxlen=max_order)  # newest first
    for i in steps(len(sigmas) - 1, disable):
        denoised = denoise(x, sigmas[i])
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        slopes.appendleft(to_d(x, sigmas[i], denoised))
        if pseudo_improved_euler and i == 0 and sigma[1] > 0:
            # Heun's step with the slope probed at the Euler prediction; the probe is not kept as history.
            dt = sigmas[1] - sigmas[0]
            x_euler = x + slopes[0] * dt
            d_euler = to_d(x_euler, sigmas[1], denoise(x_euler, sigmas[1]))
            x = x + (slopes[0] + d_euler) / 2 * dt
            continue
        coefficients = weights(sigma, i, len(slopes))
        x = denoised if coefficients is None else x + sum(c * d for c, d in zip(coefficients, slopes))
    return x


@torch.no_grad()
def lms(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None, callback: Callback | None = None,
        disable: bool | None = None, order: int = 4) -> Tensor:
    """Linear multistep of the given order (k-diffusion's LMS), starting with lower orders.

    The first steps use the slopes available (orders 1, 2, ...), and the step to sigma = 0 is the
    denoised estimate. Order `order` per step; the Euler start-up step caps the global error at
    second order in theory, though its constant is tiny where sigma is large. NFE: N.
    """
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, order, _variable_step_weights)


@torch.no_grad()
def plms(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None) -> Tensor:
    """PLMS, PNDM's pseudo linear multistep method (Liu et al. 2022, arXiv:2202.09778), in sigma space.

    The slope estimate eps' is the fourth-order Adams-Bashforth combination (55, -59, 37, -9)/24
    of the last four slopes, moved by PNDM's transfer (= an Euler step in sigma). Warm-up as in
    CompVis' PLMS sampler and diffusers' PNDMScheduler with skip_prk_steps (its "PLMS mode"):
    step 1 is the pseudo improved Euler method (slopes at sigma_0 and at the Euler prediction
    at sigma_1, averaged), steps 2 and 3 use the 2- and 3-slope formulas. The paper's own
    warm-up, three pseudo Runge-Kutta steps, evaluates the model at timestep midpoints, which a
    schedule of sigmas does not define; it is not offered. The last step uses the multistep
    formula even when it reaches sigma = 0, as PNDM does. Second order on non-uniform sigma
    grids (see the module notes); NFE N + 1.
    """
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, 4, _constant_step_weights(False),
                             pseudo_improved_euler=True)


@torch.no_grad()
def ipndm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
          callback: Callback | None = None, disable: bool | None = None, max_order: int = 4) -> Tensor:
    """Improved PNDM (Zhang & Chen 2022, arXiv:2204.13902, Appendix: iPNDM).

    PLMS with a lower-order multistep warm-up instead of extra model calls: Adams-Bashforth with
    constant-step coefficients on the slopes available (up to max_order), and the denoised
    estimate (an Euler step) when stepping to sigma = 0. Second order on non-uniform sigma grids;
    NFE N.
    """
    _check_order(max_order)
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, max_order,
                             _constant_step_weights(True))


@torch.no_grad()
def ipndm_v(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, max_order: int = 4) -> Tensor:
    """iPNDM with variable-step coefficients (zju-pi/diff-sampler, Zhou et al. 2024): k-diffusion's LMS of that order.

    The variable-step Adams-Bashforth formula integrates the Lagrange interpolant of the slopes in
    sigma, which is exactly `lms`. Design order max_order; NFE N.
    """
    _check_order(max_order)
    return lms(model, x, sigmas, extra_args, callback, disable, order=max_order)


# zju-pi/diff-sampler's DEIS maps sigma to the time t of a linear-beta VP SDE fitted to
# EDM's range, sigma(t = 1e-3) = 0.002 and sigma(1) = 80: sigma(t)^2 = exp(beta_min t + beta_d t^2 / 2) - 1.
_EPS_S, _EDM_SIGMA_MIN, _EDM_SIGMA_MAX = 1e-3, 0.002, 80.0
_BETA_D = 2 * (math.log1p(_EDM_SIGMA_MIN**2) / _EPS_S - math.log1p(_EDM_SIGMA_MAX**2)) / (_EPS_S - 1)
_BETA_MIN = math.log1p(_EDM_SIGMA_MAX**2) - _BETA_D / 2


def vp_time(sigma: np.ndarray) -> np.ndarray:
    """The linear-beta VP time of DEIS' 'tab' mode: the inverse of sigma(t)^2 = exp(beta_min t + beta_d t^2 / 2) - 1."""
    return (np.sqrt(_BETA_MIN**2 + 2 * _BETA_D * np.log1p(sigma**2)) - _BETA_MIN) / _BETA_D


DeisMode = Literal["tab", "rhoab", "logrho"]
# mode -> (integration variable u(sigma), time of the nodes as a function of u, weight dsigma/du)
_DEIS_MODES: dict[str, tuple[Fn, Fn | None, Fn | None]] = {
    "tab": (np.asarray, vp_time, None),
    "rhoab": (np.asarray, None, None),
    "logrho": (np.log, None, np.exp),
}


def _deis_weights(mode: DeisMode) -> Weights:
    """DEIS coefficients: integrals over the step of the Lagrange basis in tau, an Euler step to sigma = 0."""
    if mode not in _DEIS_MODES:
        raise ValueError(f"unknown deis_mode {mode!r}: expected one of {sorted(_DEIS_MODES)}")
    u_of_sigma, time, weight = _DEIS_MODES[mode]

    def weights(sigma: list[float], i: int, available: int) -> list[float]:
        if sigma[i + 1] == 0:
            return [-sigma[i]]
        u = u_of_sigma(np.array([sigma[i - j] for j in range(available)] + [sigma[i + 1]]))
        nodes = u[:-1] if time is None else time(u[:-1])
        return interpolant_weights(nodes, float(u[0]), float(u[-1]), time, weight)

    return weights


@torch.no_grad()
def deis(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None, max_order: int = 3,
         deis_mode: DeisMode = "tab") -> Tensor:
    """DEIS, diffusion exponential integrator sampling (Zhang & Chen 2022, arXiv:2204.13902), multistep AB-DEIS.

    The slopes eps = d are interpolated by a polynomial of degree max_order - 1 in a time variable
    tau, and x advances by the exact integral of that interpolant against dsigma (Gauss-Legendre).
    `deis_mode`: 'tab' (the default): tau = the VP time t of a linear-beta SDE (`vp_time`), the
    paper's tAB-DEIS; 'rhoab': tau = sigma (the paper's rhoAB-DEIS, identical to ipndm_v / lms);
    'logrho': tau = log sigma (diffusers' DEISMultistepScheduler). Every mode interpolates
    max_order slopes; warm-up with lower orders; the step to sigma = 0 is Euler (= the denoised
    estimate). Design order max_order; NFE N.
    """
    _check_order(max_order)
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, max_order, _deis_weights(deis_mode))


SAMPLERS: dict[str, Sampler] = {"lms": lms, "plms": plms, "ipndm": ipndm, "ipndm_v": ipndm_v, "deis": deis}
