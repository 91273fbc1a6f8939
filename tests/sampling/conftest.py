"""Shared fixtures for the sampling tests: an exact mixture denoiser and a fine ODE reference."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from sigmagraph.nodes.sampling.analytic import GaussianMixture


@pytest.fixture
def mixture() -> GaussianMixture:
    return GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)


def probability_flow_solution(denoiser, x: Tensor, sigma_start: float, sigma_end: float = 0.0,
                              steps: int = 2000) -> Tensor:
    """Integrates dx/dsigma = (x - D(x, sigma)) / sigma with classic RK4 in lambda = log(sigma).

    In lambda the ODE reads dx/dlambda = x - D(x, e^lambda): smooth down to tiny sigmas, so the
    reference is accurate to well below any sampler's error. A final sigma of 0 is reached by
    integrating to 1e-5 and applying the denoiser (the remaining step is O(1e-10)).
    """
    x = x.double()
    lam_start = torch.tensor(float(sigma_start), dtype=torch.float64).log()
    lam_end = torch.tensor(max(float(sigma_end), 1e-5), dtype=torch.float64).log()
    h = (lam_end - lam_start) / steps
    ones = x.new_ones(x.shape[0])

    def f(xv: Tensor, lam: Tensor) -> Tensor:
        return xv - denoiser(xv, lam.exp() * ones)

    lam = lam_start
    for _ in range(steps):
        k1 = f(x, lam)
        k2 = f(x + h / 2 * k1, lam + h / 2)
        k3 = f(x + h / 2 * k2, lam + h / 2)
        k4 = f(x + h * k3, lam + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        lam = lam + h
    if sigma_end == 0:
        x = denoiser(x, lam_end.exp() * ones)
    return x
