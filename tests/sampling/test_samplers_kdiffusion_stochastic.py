"""Stochastic samplers sample the data distribution: statistics of 1024 samples from the analytic
mixture (mean, covariance, sliced Wasserstein distance) against exact mixture samples."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling.analytic import GaussianMixture
from sigmagraph.nodes.sampling.samplers import dpm_solver, dpmpp, euler

SAMPLERS = {**euler.SAMPLERS, **dpm_solver.SAMPLERS, **dpmpp.SAMPLERS}
SIGMA_MAX, SIGMA_MIN = 14.6146, 0.0292
SHAPE = (1, 4, 32, 32)  # 1024 independent channel vectors


def karras(n: int, rho: float = 7.0) -> torch.Tensor:
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sigmas = (SIGMA_MAX ** (1 / rho) + ramp * (SIGMA_MIN ** (1 / rho) - SIGMA_MAX ** (1 / rho))) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def vectors(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B H W, C]: one sample per latent pixel."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Mean over directions of the 1-Wasserstein distance between the projected samples (b may be larger)."""
    pa = (a @ directions.T).sort(0).values
    pb = (b @ directions.T).sort(0).values
    quantiles = ((torch.arange(len(pa), dtype=torch.float64) + 0.5) / len(pa) * len(pb)).long()
    return float((pa - pb[quantiles]).abs().mean())


@pytest.fixture(scope="module")
def reference():
    """Exact samples (8192), random unit directions, and a start drawn from the exact marginal at SIGMA_MAX."""
    mixture = GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
    g = torch.Generator().manual_seed(1)
    exact = vectors(mixture.sample((8, *SHAPE[1:]), g))
    directions = torch.randn(64, 4, generator=g, dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    start = mixture.sample(SHAPE, g) + SIGMA_MAX * torch.randn(SHAPE, generator=g, dtype=torch.float64)
    noise_at_sigma_min = SIGMA_MIN * torch.randn(exact.shape, generator=g, dtype=torch.float64)
    return mixture, exact, directions, start, noise_at_sigma_min


def distances(samples: torch.Tensor, exact: torch.Tensor, directions: torch.Tensor) -> tuple[float, float, float]:
    mean_error = float((samples.mean(0) - exact.mean(0)).abs().max())
    cov_error = float((samples.T.cov() - exact.T.cov()).abs().max())
    return mean_error, cov_error, sliced_wasserstein(samples, exact, directions)


# Exact samples of this size are off by about 0.03 / 0.03 / 0.025 (sampling error alone);
# a sampler that under- or over-disperses (see the control below) is off by 0.3 or more.
TOLERANCES = (0.1, 0.15, 0.08)

# name -> (sampler, steps): the first-order samplers need twice the steps for the same bias.
CASES = {
    "euler_ancestral": (SAMPLERS["euler_ancestral"], 60),
    "euler s_churn=10": (partial(SAMPLERS["euler"], s_churn=10.0), 60),
    "dpm_2_ancestral": (SAMPLERS["dpm_2_ancestral"], 30),
    "dpmpp_2s_ancestral": (SAMPLERS["dpmpp_2s_ancestral"], 30),
    "dpmpp_sde": (SAMPLERS["dpmpp_sde"], 30),
    "dpmpp_2m_sde": (SAMPLERS["dpmpp_2m_sde"], 30),
    "dpmpp_2m_sde eta=0.5": (partial(SAMPLERS["dpmpp_2m_sde"], eta=0.5), 30),
    "dpmpp_2m_sde_heun": (SAMPLERS["dpmpp_2m_sde_heun"], 30),
    "dpmpp_3m_sde": (SAMPLERS["dpmpp_3m_sde"], 30),
    "edm_stochastic": (SAMPLERS["edm_stochastic"], 30),
}


@pytest.mark.parametrize("name", CASES)
def test_stochastic_sampler_samples_the_mixture(name, reference):
    mixture, exact, directions, start, _ = reference
    sampler, n = CASES[name]
    samples = vectors(sampler(mixture, start, karras(n), {"seed": 5}, disable=True))
    measured = distances(samples, exact, directions)
    assert all(m < t for m, t in zip(measured, TOLERANCES)), f"{name}: mean, cov, SW = {measured}"


@pytest.mark.parametrize("name", ["dpm_fast", "dpm_adaptive"])
def test_ancestral_dpm_solver_samples_the_noisy_mixture_at_sigma_min(name, reference):
    """dpm_fast / dpm_adaptive stop at sigma_min: their samples follow the mixture blurred by N(0, sigma_min^2)."""
    mixture, exact, directions, start, noise = reference
    samples = vectors(SAMPLERS[name](mixture, start, karras(30), {"seed": 5}, disable=True, eta=1.0))
    measured = distances(samples, exact + noise, directions)
    assert all(m < t for m, t in zip(measured, TOLERANCES)), f"{name}: mean, cov, SW = {measured}"


def test_the_statistics_reject_a_sampler_with_too_little_noise(reference):
    """The control: half the ancestral noise leaves the samples visibly under-dispersed."""
    mixture, exact, directions, start, _ = reference
    samples = vectors(SAMPLERS["euler_ancestral"](mixture, start, karras(30), {"seed": 5}, disable=True, s_noise=0.5))
    measured = distances(samples, exact, directions)
    assert measured[1] > 3 * TOLERANCES[1] and measured[2] > 3 * TOLERANCES[2]
