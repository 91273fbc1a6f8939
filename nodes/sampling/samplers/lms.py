"""Linear multistep (Adams-Bashforth) on the probability-flow ODE in sigma, as k-diffusion's `lms`.

Each step integrates the Lagrange polynomial through the last `order` slopes d_k = (x_k - D_k) /
sigma_k over [sigma_i, sigma_{i+1}] (Karras et al. 2022 use it as a baseline; the variable-step
Adams-Bashforth formulas are in Hairer, Nørsett & Wanner, "Solving ODEs I", III.5). k-diffusion
integrates the basis with scipy's adaptive quadrature; the integrands are polynomials of degree
order - 1, which `quadrature.interpolant_weights` (Gauss-Legendre) integrates exactly.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, notify, steps, to_d
from .quadrature import interpolant_weights


@torch.no_grad()
def lms(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None, callback: Callback | None = None,
        disable: bool | None = None, order: int = 4) -> Tensor:
    """Linear multistep of the given order (k-diffusion's LMS), starting with lower orders.

    The first steps use the slopes available (orders 1, 2, ...), and the step to sigma = 0 is the
    denoised estimate. Order `order` per step; the Euler start-up step caps the global error at
    second order in theory, though its constant is tiny where sigma is large. NFE: N.
    """
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    sigma_values = sigmas.double().tolist()
    slopes: deque[Tensor] = deque(maxlen=order)  # newest first
    for i in steps(len(sigmas) - 1, disable):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        slopes.appendleft(to_d(x, sigmas[i], denoised))
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            nodes = sigma_values[i - len(slopes) + 1: i + 1][::-1]
            coefficients = interpolant_weights(nodes, sigma_values[i], sigma_values[i + 1])
            x = x + sum(c * d for c, d in zip(coefficients, slopes))
    return x


SAMPLERS: dict[str, Sampler] = {"lms": lms}
