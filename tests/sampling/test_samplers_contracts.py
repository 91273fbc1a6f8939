"""The sampler contract for the DDIM / multistep / UniPC / RES / ER-SDE / SEEDS / SA-Solver / score-SDE
samplers: model calls equal the documented NFE, one callback per step (an exception there stops the
sampler), seeds reproduce bit for bit and per-item seeds isolate batch items, and the stochastic
samplers sample the mixture (mean, covariance and sliced Wasserstein distance of 2048 samples)."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling.analytic import GaussianMixture
from sigmagraph.nodes.sampling.samplers import (ddim, er_sde, multistep, res_multistep, sa_solver, score_sde, seeds,
                                                unipc)

from .sampler_testkit import (SD_SIGMA_MAX, Counting, karras, noisy_start, one_thread, rms,  # noqa: F401
                              sliced_wasserstein, vectors)

SAMPLERS = {**ddim.SAMPLERS, **multistep.SAMPLERS, **unipc.SAMPLERS, **res_multistep.SAMPLERS, **er_sde.SAMPLERS,
            **seeds.SAMPLERS, **sa_solver.SAMPLERS, **score_sde.SAMPLERS}


def one(n: int) -> int:
    return n


# name -> (NFE for n steps on a schedule ending in 0, NFE on one ending above 0)
NFE = {
    "ddim": (one, one), "ddpm": (one, one), "lcm": (one, one),
    "plms": (lambda n: n + 1, lambda n: n + 1),
    "ipndm": (one, one), "ipndm_v": (one, one), "deis": (one, one),
    "uni_pc": (one, one), "uni_pc_bh2": (one, one),
    "res_multistep": (one, one), "res_multistep_cfg_pp": (one, one), "res_multistep_ancestral": (one, one),
    "res_multistep_ancestral_cfg_pp": (one, one), "gradient_estimation": (one, one),
    "gradient_estimation_cfg_pp": (one, one),
    "er_sde": (one, one),
    "seeds_2": (lambda n: 2 * n - 1, lambda n: 2 * n), "seeds_3": (lambda n: 3 * n - 2, lambda n: 3 * n),
    "sa_solver": (one, one), "sa_solver_pece": (lambda n: 2 * n - 1, lambda n: 2 * n - 1),
    "pc_ve": (lambda n: 2 * n, lambda n: 2 * n), "pc_vp": (lambda n: 2 * n, lambda n: 2 * n),
}


def test_every_sampler_has_a_documented_nfe():
    assert set(NFE) == set(SAMPLERS)


@pytest.mark.parametrize("name", sorted(NFE))
@pytest.mark.parametrize("ends_in_zero", [True, False], ids=["to0", "to_sigma_min"])
def test_model_calls_equal_the_documented_nfe(name, ends_in_zero, mixture):
    n = 7
    model = Counting(mixture)
    sigmas = karras(n) if ends_in_zero else karras(n + 1, final_zero=False)
    SAMPLERS[name](model, noisy_start(), sigmas, {"seed": 0}, disable=True)
    assert model.calls == NFE[name][0 if ends_in_zero else 1](n)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_callback_reports_every_step_once(name, mixture):
    n, infos = 6, []
    SAMPLERS[name](mixture, noisy_start(), karras(n), {"seed": 0}, callback=infos.append, disable=True)
    assert [info["i"] for info in infos] == list(range(n))
    assert all(set(info) >= {"x", "i", "sigma", "sigma_hat", "denoised"} for info in infos)
    assert [float(info["sigma"]) for info in infos] == karras(n)[:-1].tolist()


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_raising_callback_stops_the_sampler_within_the_step(name, mixture):
    model = Counting(mixture)
    calls_at_interrupt = []

    def callback(info):
        if info["i"] == 2:
            calls_at_interrupt.append(model.calls)
            raise Interrupted

    with pytest.raises(Interrupted):
        SAMPLERS[name](model, noisy_start(), karras(8), {"seed": 0}, callback=callback, disable=True)
    assert model.calls == calls_at_interrupt[0]


STOCHASTIC = ["ddpm", "lcm", "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "er_sde", "seeds_2",
              "seeds_3", "sa_solver", "sa_solver_pece", "pc_ve", "pc_vp"]


@pytest.mark.parametrize("name", STOCHASTIC)
def test_same_seed_is_bitwise_identical_and_another_seed_differs(name, mixture):
    x = noisy_start((2, 4, 4, 4)).float()
    sigmas = karras(8).float()
    a = SAMPLERS[name](mixture, x, sigmas, {"seed": 123}, disable=True)
    b = SAMPLERS[name](mixture, x, sigmas, {"seed": 123}, disable=True)
    c = SAMPLERS[name](mixture, x, sigmas, {"seed": 124}, disable=True)
    assert torch.equal(a, b)
    assert rms(a - c) > 1e-3


@pytest.mark.parametrize("name", STOCHASTIC)
def test_per_item_seeds_make_an_item_independent_of_its_batch(name, mixture):
    x = noisy_start((2, 4, 4, 4))
    pair = SAMPLERS[name](mixture, x, karras(8), {"seed": [7, 8]}, disable=True)
    alone = SAMPLERS[name](mixture, x[1:], karras(8), {"seed": [8]}, disable=True)
    torch.testing.assert_close(pair[1:], alone, rtol=0, atol=1e-12)


# --- sampling the mixture ----------------------------------------------------------------------------

SHAPE = (2, 4, 32, 32)  # 2048 independent channel vectors


@pytest.fixture(scope="module")
def reference():
    """Exact samples (8192), unit directions, and a start drawn from the exact marginal at SD's sigma_max."""
    mixture = GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
    g = torch.Generator().manual_seed(1)
    exact = vectors(mixture.sample((8, *SHAPE[1:]), g))
    directions = torch.randn(64, 4, generator=g, dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    start = mixture.sample(SHAPE, g) + SD_SIGMA_MAX * torch.randn(SHAPE, generator=g, dtype=torch.float64)
    return mixture, exact, directions, start


def distances(samples, exact, directions) -> tuple[float, float, float]:
    mean_error = float((samples.mean(0) - exact.mean(0)).abs().max())
    cov_error = float((samples.T.cov() - exact.T.cov()).abs().max())
    return mean_error, cov_error, sliced_wasserstein(samples, exact, directions)


# 2048 exact samples are off by about 0.03 / 0.02 / 0.02 from these (sampling error alone); a
# sampler that does not sample (see the controls below) is off by 0.15 / 0.38 / 0.17 or more.
TOLERANCES = (0.08, 0.15, 0.06)

# name -> (sampler, steps): the first-order samplers get more steps for the same bias.
CASES = {
    "ddpm": (SAMPLERS["ddpm"], 100),
    "ddim eta=0.5": (partial(SAMPLERS["ddim"], eta=0.5), 100),
    "res_multistep_ancestral": (SAMPLERS["res_multistep_ancestral"], 60),
    "res_multistep_ancestral eta=0.5": (partial(SAMPLERS["res_multistep_ancestral"], eta=0.5), 60),
    "er_sde": (SAMPLERS["er_sde"], 60),
    "seeds_2": (SAMPLERS["seeds_2"], 30),
    "seeds_3": (SAMPLERS["seeds_3"], 20),
    "sa_solver": (SAMPLERS["sa_solver"], 60),
    "sa_solver_pece tau=1": (partial(SAMPLERS["sa_solver_pece"], tau_func=lambda sigma: 1.0), 40),
    "pc_ve": (SAMPLERS["pc_ve"], 100),
    "pc_vp": (SAMPLERS["pc_vp"], 100),
}


@pytest.mark.parametrize("name", CASES)
def test_stochastic_sampler_samples_the_mixture(name, reference):
    mixture, exact, directions, start = reference
    sampler, n = CASES[name]
    samples = vectors(sampler(mixture, start, karras(n), {"seed": 5}, disable=True))
    measured = distances(samples, exact, directions)
    assert all(m < t for m, t in zip(measured, TOLERANCES)), f"{name}: mean, cov, SW = {measured}"


CONTROLS = {
    # LCM with a posterior-mean denoiser returns the average of the last step's posterior, not a sample.
    "lcm": SAMPLERS["lcm"],
    # Dropping ER-SDE's noise keeps its contracting drift: the samples collapse toward the modes.
    "er_sde s_noise=0": partial(SAMPLERS["er_sde"], s_noise=0.0),
}


@pytest.mark.parametrize("name", CONTROLS)
def test_the_statistics_reject_a_sampler_that_does_not_sample(name, reference):
    mixture, exact, directions, start = reference
    samples = vectors(CONTROLS[name](mixture, start, karras(60), {"seed": 5}, disable=True))
    measured = distances(samples, exact, directions)
    assert measured[1] > 2 * TOLERANCES[1] and measured[2] > 2 * TOLERANCES[2], measured
