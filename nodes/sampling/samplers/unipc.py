"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of
Diffusion Models", arXiv:2302.04867): multistep, data prediction, in lambda = -log sigma.

Every step is the exponential integrator of the probability-flow ODE in data prediction,

    x_next = (sigma_next / sigma) x - (e^-h - 1) D_0 - B sum_k rho_k (D_k - D_0) / r_k,

with h = lambda_next - lambda and r_k = (lambda_k - lambda) / h for earlier outputs D_k. The
predictor UniP-p uses p - 1 earlier outputs; after the model is called at its result, the
corrector UniC-p re-solves the same step with that new output as well (no extra call), raising
the accuracy by one order. rho solves R rho = g, R_ik = r_k^(i-1), g_i = i! (-h) phi_{i+1}(-h) / B
(except rho = 1/2 for the order-2 predictor and the order-1 corrector, the paper's choice), and
B = B(-h) is -h for `uni_pc` (bh1) and e^-h - 1 for `uni_pc_bh2` (bh2). From order 3 on, B
cancels; the variants differ through the order-1 and order-2 shortcuts.

Orders: UniPC-p (UniP-p corrected by UniC-p) is of order p + 1, 4 for the default order 3; the
first steps warm up with p = 1, 2, ... With lower_order_final, as in ComfyUI and diffusers, the
last steps use p = ..., 2, 1, which steadies few-step sampling but leaves the last, uncorrected
step first order, so the error falls as h^2 at fine steps; pass False for order p + 1 on
schedules that stop above 0. The corrector reuses the next step's model call, so the NFE is N;
the last step is not corrected.

As ComfyUI runs it (comfy/extra_samplers/uni_pc.py), so that the names give its numbers: a final
sigma 0 is replaced by 0.001 (the last step is a UniP step to 0.001, not the denoised estimate),
and the order is at most N - 1, so one step returns the input rescaled by sqrt(1 + sigma_last^2)
/ sqrt(1 + sigma_0^2) (ComfyUI's variance-preserving state taken back at the last sigma).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, bind_denoiser, lam_of, notify, steps
from .quadrature import phi

Variant = Literal["bh1", "bh2"]
# ComfyUI's UniPC stops at this sigma instead of 0.
FINAL_SIGMA = 0.001


def _unipc_step(x: Tensor, sigma: float, sigma_next: float, history: deque[tuple[float, Tensor]], order: int,
                variant: Variant, denoised_next: Tensor | None = None) -> Tensor:
    """UniP-order from sigma to sigma_next, or UniC-order when D(x_next) from the predictor is given.

    `history` holds (lambda, D) newest first, history[0] at sigma; the step uses order - 1
    earlier entries.
    """
    lam, denoised = history[0]
    h = lam_of(sigma_next) - lam
    b_h = -h if variant == "bh1" else math.expm1(-h)
    ratios = [(history[k][0] - lam) / h for k in range(1, order)] + [1.0]
    differences = [(history[k][1] - denoised) / ratios[k - 1] for k in range(1, order)]
    vandermonde = np.vander(ratios, order, increasing=True).T  # row i: r_k ** i
    g = np.array([math.factorial(i) * -h * phi(i + 1, -h) / b_h for i in range(1, order + 1)])
    x_first = sigma_next / sigma * x - math.expm1(-h) * denoised
    if denoised_next is None:
        if order == 1:
            return x_first
        rhos = [0.5] if order == 2 else np.linalg.solve(vandermonde[:-1, :-1], g[:-1]).tolist()
        return x_first - b_h * sum(rho * dk for rho, dk in zip(rhos, differences))
    rhos = [0.5] if order == 1 else np.linalg.solve(vandermonde, g).tolist()
    differences.append(denoised_next - denoised)
    return x_first - b_h * sum(rho * dk for rho, dk in zip(rhos, differences))


def _uni_pc(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, callback: Callback | None,
            disable: bool | None, order: int, lower_order_final: bool, variant: Variant) -> Tensor:
    """The UniPC loop: evaluate, correct the previous step with the new output, predict the next."""
    if not 1 <= order <= 3:
        raise ValueError(f"uni_pc order must be 1, 2 or 3, got {order}")
    denoise = bind_denoiser(model, x, extra_args)
    sigma = sigmas.double().tolist()
    if sigma[-1] == 0:
        sigma[-1] = FINAL_SIGMA
    n = len(sigmas) - 1
    order = min(order, n - 1)
    history: deque[tuple[float, Tensor]] = deque(maxlen=max(order, 1))  # (lambda, D), newest first
    x_prev, prev_order = None, 0
    for i in steps(n, disable):
        denoised = denoise(x, sigmas[i])
        if x_prev is not None:
            x = _unipc_step(x_prev, sigma[i - 1], sigma[i], history, prev_order, variant, denoised)
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        history.appendleft((lam_of(sigma[i]), denoised))
        if order == 0:  # one step: ComfyUI takes none
            return x * math.sqrt((1 + sigma[-1] ** 2) / (1 + sigma[0] ** 2))
        prev_order = min(order, len(history), n - i if lower_order_final else order)
        x_prev, x = x, _unipc_step(x, sigma[i], sigma[i + 1], history, prev_order, variant)
    return x


@torch.no_grad()
def uni_pc(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
           callback: Callback | None = None, disable: bool | None = None, order: int = 3,
           lower_order_final: bool = True) -> Tensor:
    """UniPC with B(h) = h (bh1), multistep predictor-corrector in data prediction (Zhao et al. 2023). NFE N."""
    return _uni_pc(model, x, sigmas, extra_args, callback, disable, order, lower_order_final, "bh1")


@torch.no_grad()
def uni_pc_bh2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
               callback: Callback | None = None, disable: bool | None = None, order: int = 3,
               lower_order_final: bool = True) -> Tensor:
    """UniPC with B(h) = e^h - 1 (bh2), multistep predictor-corrector in data prediction (Zhao et al. 2023). NFE N."""
    return _uni_pc(model, x, sigmas, extra_args, callback, disable, order, lower_order_final, "bh2")


SAMPLERS: dict[str, Sampler] = {"uni_pc": uni_pc, "uni_pc_bh2": uni_pc_bh2}
