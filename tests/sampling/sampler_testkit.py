"""Shared pieces of the sampler tests: schedules, error measures, a recording noise sampler, a CFG
guider, and the exact probability-flow ODE problem."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from sigmagraph.nodes.sampling.analytic import GaussianMixture, probability_flow_solution

SD_SIGMA_MAX, SD_SIGMA_MIN = 14.6146, 0.0292
# The convergence problem spans EDM's range: the samplers' first, lower-order steps are taken where
# the trajectory is straightest, so the error of the interior steps dominates at the step counts used.
ODE_SIGMA_MAX, ODE_SIGMA_MIN = 80.0, 0.03


def karras(n: int, sigma_max: float = SD_SIGMA_MAX, sigma_min: float = SD_SIGMA_MIN, rho: float = 7.0,
           final_zero: bool = True) -> Tensor:
    """Karras et al.'s n noise levels, with the final 0 a sampler node passes unless final_zero is False."""
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]) if final_zero else sigmas


def rms(x: Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def noisy_start(shape: tuple[int, ...] = (1, 4, 2, 2), sigma: float = SD_SIGMA_MAX, seed: int = 0) -> Tensor:
    return sigma * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


class Recorded:
    """A noise sampler that draws seeded N(0, I) and keeps every draw, so a reference can replay them."""

    def __init__(self, shape: tuple[int, ...], seed: int = 0):
        self.shape, self.draws = shape, []
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, sigma, sigma_next) -> Tensor:
        self.draws.append(torch.randn(self.shape, generator=self.generator, dtype=torch.float64))
        return self.draws[-1]


class Guided:
    """Classifier-free guidance between two exact denoisers, exposing the unconditional x0 as a guider does."""

    def __init__(self, cond: GaussianMixture, uncond: GaussianMixture, scale: float):
        self.cond, self.uncond, self.scale = cond, uncond, scale

    def with_uncond(self, x, sigma, **extra):
        u = self.uncond(x, sigma)
        return u + self.scale * (self.cond(x, sigma) - u), u

    def __call__(self, x, sigma, **extra):
        return self.with_uncond(x, sigma)[0]


def guided_pair() -> Guided:
    return Guided(GaussianMixture.random(seed=0, components=3, channels=4),
                  GaussianMixture.random(seed=5, components=2, channels=4), scale=0.6)


def smooth_mixture() -> GaussianMixture:
    """The seed-0 mixture with doubled stds: a smoother posterior mean reaches the asymptotic regime in fewer steps."""
    sharp = GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
    return GaussianMixture(sharp.weights, sharp.means, 2 * sharp.stds)


@lru_cache(maxsize=None)
def ode_problem() -> tuple[GaussianMixture, Tensor, Tensor]:
    """(model, start at ODE_SIGMA_MAX, exact probability-flow solution at ODE_SIGMA_MIN).

    The seed-0 mixture with doubled stds: a smoother posterior mean, whose trajectories reach the
    asymptotic regime of every method within a few hundred steps (with the narrow components,
    trajectories near a decision boundary keep first-order methods pre-asymptotic far longer).
    """
    model = smooth_mixture()
    g = torch.Generator().manual_seed(1)
    shape = (1, 4, 8, 8)
    x = model.sample(shape, g) + ODE_SIGMA_MAX * torch.randn(shape, generator=g, dtype=torch.float64)
    return model, x, probability_flow_solution(model, x, ODE_SIGMA_MAX, ODE_SIGMA_MIN, steps=1000)


def measured_order(sampler, n: int) -> tuple[float, float, float]:
    """log2 of the error ratio between n and 2n Karras steps on the ODE problem, and the two errors."""
    model, x, exact = ode_problem()
    errors = [rms(sampler(model, x, karras(k, ODE_SIGMA_MAX, ODE_SIGMA_MIN, final_zero=False), disable=True) - exact)
              for k in (n + 1, 2 * n + 1)]
    return math.log2(errors[0] / errors[1]), *errors
