"""Linear multistep samplers on the probability-flow ODE dx/dsigma = d(x, sigma) = (x - D(x, sigma)) / sigma:
LMS, PLMS (PNDM), iPNDM, iPNDM-v (ComfyUI's and the exact one) and DEIS.

Each step is x_{i+1} = x_i + sum_j c_j d_{i-j}: the last few slopes are interpolated and the
interpolant integrated over [sigma_i, sigma_{i+1}] (the variable-step Adams-Bashforth formulas
are in Hairer, Nørsett & Wanner, "Solving ODEs I", III.5). They differ only in the interpolant:

- `plms`, `ipndm`: Adams-Bashforth with the constant-step coefficients (3, -1)/2, (23, -16, 5)/12,
  (55, -59, 37, -9)/24 times sigma_{i+1} - sigma_i. In sigma space PNDM's "transfer" x_next = x +
  (sigma_next - sigma) eps' is exactly this (eps' = d, see ddim.py), so PLMS is AB4 on slopes
  sampled at steps that PNDM assumes equal in its own (timestep) variable.
- `lms`, `ipndm_v_exact`: variable-step Adams-Bashforth in sigma (the interpolant is a polynomial in
  sigma), integrated exactly by `quadrature.interpolant_weights` (k-diffusion uses scipy's adaptive
  quadrature).
- `ipndm_v`: the variable-step coefficients of zju-pi/diff-sampler as ComfyUI runs them. Order 2
  is variable-step AB2 and order 3 a third-order formula; order 4 (the default) is not AB4 even on
  equal steps ((57, -65, 43, -11)/24 against (55, -59, 37, -9)/24), and on uneven (Karras)
  steps its local error is O(h^2): first order at fine steps (measured in the tests), though at
  10-20 steps its error is close to the exact method's.
- `deis`: the interpolant is a polynomial in a chosen time variable tau (VP time, sigma, or log
  sigma), integrated against dsigma: c_j = integral of L_j(tau(sigma)) dsigma; exactly for
  'rhoab' and 'logrho', and for ComfyUI's default 'tab' by its Riemann sum of 10000 points in tau.

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
from .quadrature import Fn, interpolant_weights, lagrange_basis, riemann_sum

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


def _ipndm_v_weights(sigma: list[float], i: int, available: int) -> list[float] | None:
    """zju-pi/diff-sampler's iPNDM-v coefficients (ComfyUI's sample_ipndm_v), times the step; D at sigma = 0.

    With h_k the k-th step back, order 2 is variable-step AB2; orders 3 and 4 correct it by the
    `temp` terms below, transcribed as they are (order 4's is not AB4, see the module notes).
    """
    if sigma[i + 1] == 0:
        return None
    h = [sigma[i + 1] - sigma[i]] + [sigma[i - k + 1] - sigma[i - k] for k in range(1, available)]
    if available == 1:
        coefficients = [1.0]
    elif available == 2:
        coefficients = [(2 + h[0] / h[1]) / 2, -(h[0] / h[1]) / 2]
    else:
        temp1 = (1 - h[0] / (3 * (h[0] + h[1])) * (h[0] * (h[0] + h[1])) / (h[1] * (h[1] + h[2]))) / 2
        coefficients = [(2 + h[0] / h[1]) / 2 + temp1, -(h[0] / h[1]) / 2 - (1 + h[1] / h[2]) * temp1,
                        temp1 * h[1] / h[2]]
        if available == 4:
            ratio = h[1] * (h[1] + h[2]) / (h[2] * (h[2] + h[3]))
            temp2 = (((1 - h[0] / (3 * (h[0] + h[1]))) / 2
                      + (1 - h[0] / (2 * (h[0] + h[1]))) * h[0] / (6 * (h[0] + h[1] + h[2])))
                     * (h[0] * (h[0] + h[1]) * (h[0] + h[1] + h[2]))
                     / (h[1] * (h[1] + h[2]) * (h[1] + h[2] + h[3])))
            coefficients = [coefficients[0] + temp2, coefficients[1] - (1 + h[1] / h[2] + ratio) * temp2,
                            coefficients[2] + (h[1] / h[2] + ratio * (1 + h[2] / h[3])) * temp2,
                            -temp2 * ratio * h[1] / h[2]]
    return [c * h[0] for c in coefficients]


@torch.no_grad()
def ipndm_v(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, max_order: int = 4) -> Tensor:
    """iPNDM-v (zju-pi/diff-sampler, Zhou et al. 2024) as ComfyUI runs it: its own variable-step coefficients.

    Order 4 (the default) is not the Adams-Bashforth formula (see the module notes) and converges
    at first order on uneven steps; `ipndm_v_exact` is the variable-step Adams-Bashforth method it
    stands for. Warm-up with lower orders; the step to sigma = 0 is the denoised estimate. NFE N.
    """
    _check_order(max_order)
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, max_order, _ipndm_v_weights)


@torch.no_grad()
def ipndm_v_exact(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                  callback: Callback | None = None, disable: bool | None = None, max_order: int = 4) -> Tensor:
    """iPNDM-v with exact variable-step Adams-Bashforth coefficients: k-diffusion's LMS of order max_order.

    What ipndm_v's coefficients approximate: the Lagrange interpolant of the slopes in sigma,
    integrated exactly over each step. Design order max_order; NFE N.
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


def vp_sigma_slope(t: np.ndarray) -> np.ndarray:
    """dsigma/dt of that VP SDE: (beta_min + beta_d t) e^(beta_min t + beta_d t^2 / 2) / (2 sigma(t))."""
    exponent = _BETA_MIN * t + _BETA_D * t**2 / 2
    return (_BETA_MIN + _BETA_D * t) * np.exp(exponent) / (2 * np.sqrt(np.expm1(exponent)))


DeisMode = Literal["tab", "rhoab", "logrho"]
# ComfyUI's 'tab' coefficients: a Riemann sum over this many points in t, both ends included.
DEIS_TAB_POINTS = 10000
# mode -> (integration variable u(sigma), weight dsigma/du) of the modes integrated exactly
_EXACT_DEIS_MODES: dict[str, tuple[Fn, Fn | None]] = {
    "rhoab": (np.asarray, None),
    "logrho": (np.log, np.exp),
}


def _tab_weights(nodes: np.ndarray, sigma: float, sigma_next: float) -> list[float]:
    """tAB-DEIS as ComfyUI computes it: L_j(t) dsigma/dt summed at 10000 points, times dt / 10000."""
    def integrand(t: np.ndarray) -> np.ndarray:
        return lagrange_basis(vp_time(nodes), t) * vp_sigma_slope(t)

    return riemann_sum(integrand, float(vp_time(sigma)), float(vp_time(sigma_next)), DEIS_TAB_POINTS,
                       endpoint=True).tolist()


def _deis_weights(mode: DeisMode) -> Weights:
    """DEIS coefficients: integrals over the step of the Lagrange basis in tau, an Euler step to sigma = 0."""
    if mode != "tab" and mode not in _EXACT_DEIS_MODES:
        raise ValueError(f"unknown deis_mode {mode!r}: expected one of tab, {', '.join(_EXACT_DEIS_MODES)}")

    def weights(sigma: list[float], i: int, available: int) -> list[float]:
        if sigma[i + 1] == 0 or available == 1:
            return [sigma[i + 1] - sigma[i]]  # Euler, as in ComfyUI (the 'tab' sum would be off by 1e-4)
        nodes = np.array([sigma[i - j] for j in range(available)])
        if mode == "tab":
            return _tab_weights(nodes, sigma[i], sigma[i + 1])
        u_of_sigma, weight = _EXACT_DEIS_MODES[mode]
        return interpolant_weights(u_of_sigma(nodes), float(u_of_sigma(sigma[i])), float(u_of_sigma(sigma[i + 1])),
                                   weight=weight)

    return weights


@torch.no_grad()
def deis(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None, max_order: int = 3,
         deis_mode: DeisMode = "tab") -> Tensor:
    """DEIS, diffusion exponential integrator sampling (Zhang & Chen 2022, arXiv:2204.13902), multistep AB-DEIS.

    The slopes eps = d are interpolated by a polynomial of degree max_order - 1 in a time variable
    tau, and x advances by the integral of that interpolant against dsigma. `deis_mode`: 'tab'
    (the default): tau = the VP time t of a linear-beta SDE (`vp_time`), the paper's tAB-DEIS,
    integrated as ComfyUI does (a 10000-point Riemann sum in t, relative error ~1e-4 of the
    multistep correction); 'rhoab': tau = sigma (the paper's rhoAB-DEIS, identical to ipndm_v_exact / lms,
    integrated exactly; ComfyUI's 'rhoab' uses one slope more and fails past its third step);
    'logrho': tau = log sigma (diffusers' DEISMultistepScheduler). Every mode interpolates
    max_order slopes; warm-up with lower orders; the step to sigma = 0 is Euler (= the denoised
    estimate). Design order max_order; NFE N.
    """
    _check_order(max_order)
    return _linear_multistep(model, x, sigmas, extra_args, callback, disable, max_order, _deis_weights(deis_mode))


SAMPLERS: dict[str, Sampler] = {"lms": lms, "plms": plms, "ipndm": ipndm, "ipndm_v": ipndm_v,
                                 "ipndm_v_exact": ipndm_v_exact, "deis": deis}
