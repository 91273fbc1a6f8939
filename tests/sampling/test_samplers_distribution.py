"""Stochastic samplers sample the data distribution: statistics of 2048 samples from the analytic
mixture (mean, covariance, sliced Wasserstein distance) against exact mixture samples, with
controls that show the statistics reject a sampler that does not sample."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.analytic import GaussianMixture, sliced_wasserstein, sorted_projections, vectors
from sigmagraph.nodes.sampling.contract import CONTRACTS

from .sampler_testkit import SD_SIGMA_MAX, SD_SIGMA_MIN, karras

SHAPE = (2, 4, 32, 32)  # 2048 independent channel vectors


@pytest.fixture(scope="module")
def reference():
    """The mixture, its exact samples' sorted projections, the unit directions, a start drawn from the exact
    marginal at SD's sigma_max, and noise of std sigma_min for the samplers that stop there."""
    mixture = GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
    g = torch.Generator().manual_seed(1)
    exact = vectors(mixture.sample((8, *SHAPE[1:]), g))
    directions = torch.randn(64, 4, generator=g, dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    start = mixture.sample(SHAPE, g) + SD_SIGMA_MAX * torch.randn(SHAPE, generator=g, dtype=torch.float64)
    noise_at_sigma_min = SD_SIGMA_MIN * torch.randn(exact.shape, generator=g, dtype=torch.float64)
    return mixture, exact, directions, start, noise_at_sigma_min


def distances(samples, exact, directions) -> tuple[float, float, float]:
    mean_error = float((samples.mean(0) - exact.mean(0)).abs().max())
    cov_error = float((samples.T.cov() - exact.T.cov()).abs().max())
    return mean_error, cov_error, sliced_wasserstein(samples, sorted_projections(exact, directions), directions)


# 2048 exact samples are off by about 0.03 / 0.02 / 0.02 from these (sampling error alone); a
# sampler that does not sample (see the controls below) is off by 0.15 / 0.38 / 0.17 or more.
TOLERANCES = (0.08, 0.15, 0.06)

# Steps per sampler: the first-order samplers get more steps for the same bias.
WITH_DEFAULTS = {
    "euler_ancestral": 60, "dpm_2_ancestral": 30, "dpmpp_2s_ancestral": 30, "dpmpp_sde": 30, "dpmpp_2m_sde": 30,
    "dpmpp_2m_sde_heun": 30, "dpmpp_3m_sde": 30, "edm_stochastic": 30, "ddpm": 100, "res_multistep_ancestral": 60,
    "er_sde": 60, "seeds_2": 30, "seeds_3": 20, "sa_solver": 60, "pc_ve": 100, "pc_vp": 100,
}
# name -> (sampler, steps)
CASES = {
    **{name: (SAMPLERS[name], steps) for name, steps in WITH_DEFAULTS.items()},
    "euler s_churn=10": (partial(SAMPLERS["euler"], s_churn=10.0), 60),
    "dpmpp_2m_sde eta=0.5": (partial(SAMPLERS["dpmpp_2m_sde"], eta=0.5), 30),
    "ddim eta=0.5": (partial(SAMPLERS["ddim"], eta=0.5), 100),
    "res_multistep_ancestral eta=0.5": (partial(SAMPLERS["res_multistep_ancestral"], eta=0.5), 60),
    "sa_solver_pece tau=1": (partial(SAMPLERS["sa_solver_pece"], tau_func=lambda sigma: 1.0), 40),
}
# Stochastic samplers sampled elsewhere: the CFG++ ones are their base sampler without a guider
# (test_samplers_kdiffusion / test_samplers_res_multistep identities); lcm needs a consistency model.
NOT_SAMPLED_HERE = {"euler_ancestral_cfg_pp", "dpmpp_2s_ancestral_cfg_pp", "res_multistep_ancestral_cfg_pp", "lcm"}


def test_every_stochastic_sampler_is_checked_for_its_distribution():
    sampled = {getattr(sampler, "func", sampler) for sampler, _ in CASES.values()}
    unchecked = {name for name, contract in CONTRACTS.items()
                 if contract.stochastic and SAMPLERS[name] not in sampled and name not in NOT_SAMPLED_HERE}
    assert not unchecked


@pytest.mark.filterwarnings("ignore:Should have:UserWarning")
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


# name -> (sampler, steps, how many tolerances its covariance and SW errors exceed at least)
CONTROLS = {
    # Half the ancestral noise leaves the samples visibly under-dispersed.
    "euler_ancestral s_noise=0.5": (partial(SAMPLERS["euler_ancestral"], s_noise=0.5), 30, 3),
    # LCM with a posterior-mean denoiser returns the average of the last step's posterior, not a sample.
    "lcm": (SAMPLERS["lcm"], 60, 2),
    # Dropping ER-SDE's noise keeps its contracting drift: the samples collapse toward the modes.
    "er_sde s_noise=0": (partial(SAMPLERS["er_sde"], s_noise=0.0), 60, 2),
}


@pytest.mark.parametrize("name", CONTROLS)
def test_the_statistics_reject_a_sampler_that_does_not_sample(name, reference):
    mixture, exact, directions, start, _ = reference
    sampler, n, factor = CONTROLS[name]
    measured = distances(vectors(sampler(mixture, start, karras(n), {"seed": 5}, disable=True)), exact, directions)
    assert measured[1] > factor * TOLERANCES[1] and measured[2] > factor * TOLERANCES[2], measured
