"""ER-SDE, SEEDS and SA-Solver: update rules written out from the papers, the exactness of their
noise (a point mass stays N(0, sigma^2) at every step), their deterministic limits (identities
and convergence orders on the exact probability-flow ODE)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling import SCHEDULES
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling
from sigmagraph.nodes.sampling.samplers.ddim import ddim, ddpm
from sigmagraph.nodes.sampling.samplers.er_sde import er_sde
from sigmagraph.nodes.sampling.samplers.res_multistep import res_multistep_ancestral
from sigmagraph.nodes.sampling.samplers.sa_solver import sa_solver, sa_solver_pece, tau_interval
from sigmagraph.nodes.sampling.samplers.seeds import seeds_2, seeds_3

from .sampler_testkit import Recorded, karras, measured_order, noisy_start


def sde_5(lam: float) -> float:
    """The paper's recommended noise scale function, phi(l) = l (e^(l^0.3) + 10)."""
    return lam * (math.exp(lam**0.3) + 10)


@pytest.mark.parametrize("sigmas", [karras(8), SCHEDULES["normal"](discrete_model_sampling(), 5).double(),
                                    SCHEDULES["normal"](discrete_model_sampling(), 10).double()],
                         ids=["karras-8", "normal-5", "normal-10"])
def test_er_sde_solver_3_follows_the_taylor_expansion_of_the_exact_solution(mixture, sigmas):
    """x_t = r x_s + (1 - r) D + (dt + S phi_t) D' + (dt^2 / 2 + S_u phi_t) D'' + sqrt(l_t^2 - r^2 l_s^2) z,

    r = phi(l_t) / phi(l_s), S and S_u the integrals of 1 / phi and (l - l_s) / phi over [l_t, l_s]
    (ComfyUI's rule: a left Riemann sum of 200 points from l_t), D' and D'' backward divided differences.
    """

    def riemann(f, l_t, l_s):
        width = (l_s - l_t) / 200
        return sum(f(l_t + k * width) for k in range(200)) * width

    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    ours_noise, reference_noise = Recorded(x.shape, seed=2), Recorded(x.shape, seed=2)
    ours = er_sde(mixture, x, sigmas, disable=True, noise_sampler=ours_noise)

    lams = sigmas.tolist()
    expected, outputs, derivatives = x, [], []
    for i in range(len(lams) - 1):
        outputs.append(mixture(expected, sigmas[i].expand(2)))
        if lams[i + 1] == 0:
            expected = outputs[-1]
            continue
        l_s, l_t = lams[i], lams[i + 1]
        r = sde_5(l_t) / sde_5(l_s)
        update = r * expected + (1 - r) * outputs[-1]
        if i >= 1:
            derivatives.append((outputs[-1] - outputs[-2]) / (l_s - lams[i - 1]))
            s = riemann(lambda l: 1 / sde_5(l), l_t, l_s)
            update = update + (l_t - l_s + s * sde_5(l_t)) * derivatives[-1]
        if i >= 2:
            second = (derivatives[-1] - derivatives[-2]) / ((l_s - lams[i - 2]) / 2)
            s_u = riemann(lambda l: (l - l_s) / sde_5(l), l_t, l_s)
            update = update + ((l_t - l_s) ** 2 / 2 + s_u * sde_5(l_t)) * second
        expected = update + math.sqrt(l_t**2 - (r * l_s) ** 2) * reference_noise(l_s, l_t)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)


def test_seeds_2_without_noise_is_dpm_solver_pp_2s(mixture):
    """Lu et al. 2022 (DPM-Solver++), Algorithm 1: u = (sigma_s / sigma) x - (e^(-r h) - 1) D,
    x_next = (sigma_next / sigma) x - (e^-h - 1) ((1 - 1/(2r)) D + 1/(2r) D(u, sigma_s))."""
    r = 1 / 3
    sigmas = karras(7)
    x = noisy_start((2, 4, 4, 4))
    values = sigmas.tolist()
    expected = x
    for i in range(len(values) - 1):
        denoised = mixture(expected, sigmas[i].expand(2))
        if values[i + 1] == 0:
            expected = denoised
            continue
        h = math.log(values[i] / values[i + 1])
        sigma_s = values[i] * math.exp(-r * h)
        u = sigma_s / values[i] * expected - math.expm1(-r * h) * denoised
        combined = (1 - 1 / (2 * r)) * denoised + 1 / (2 * r) * mixture(u, torch.full((2,), sigma_s,
                                                                                        dtype=torch.float64))
        expected = values[i + 1] / values[i] * expected - math.expm1(-h) * combined
    out = seeds_2(mixture, x, sigmas, {"seed": 1}, disable=True, eta=0.0, r=r)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-11)


def test_er_sde_with_the_ode_noise_scale_and_one_stage_is_ddim(mixture):
    """phi(l) = l gives r = sigma_t / sigma_s and no noise: the first stage is DDIM's (= Euler's) step."""
    x = noisy_start((2, 4, 4, 4))
    a = er_sde(mixture, x, karras(9), {"seed": 1}, disable=True, noise_scaler=lambda lam: lam, max_stage=1)
    torch.testing.assert_close(a, ddim(mixture, x, karras(9), disable=True), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sampler", [partial(seeds_2, eta=0.0), partial(seeds_3, eta=0.0),
                                     partial(sa_solver, tau_func=lambda sigma: 0.0),
                                     partial(er_sde, noise_scaler=lambda lam: lam)],
                         ids=["seeds_2 eta=0", "seeds_3 eta=0", "sa_solver tau=0", "er_sde phi=identity"])
def test_deterministic_limits_draw_no_noise(sampler, mixture):
    x = noisy_start()
    assert torch.equal(sampler(mixture, x, karras(8), {"seed": 1}, disable=True),
                       sampler(mixture, x, karras(8), {"seed": 2}, disable=True))


# With D = 0 (data at a point) every exponential SDE step is exact: the sample stays N(0, sigma^2).
EXACT_NOISE = {
    "er_sde": er_sde,
    "er_sde phi=l^2 (the reverse SDE)": partial(er_sde, noise_scaler=lambda lam: lam**2),
    "seeds_2": seeds_2,
    "seeds_2 eta=0.5 r=0.3": partial(seeds_2, eta=0.5, r=0.3),
    "seeds_3": seeds_3,
    "sa_solver tau=1": partial(sa_solver, tau_func=lambda sigma: 1.0),
    "sa_solver_pece tau=0.7": partial(sa_solver_pece, tau_func=lambda sigma: 0.7),
    "res_multistep_ancestral": res_multistep_ancestral,
    "ddpm": ddpm,
}


@pytest.mark.parametrize("name", EXACT_NOISE)
def test_the_noise_keeps_a_point_mass_marginal_exact(name):
    sigmas = karras(6, final_zero=False)
    x = noisy_start((1, 4, 200, 200), float(sigmas[0]))
    out = EXACT_NOISE[name](lambda x, sigma, **extra: torch.zeros_like(x), x, sigmas, {"seed": 3}, disable=True)
    # 160000 draws: the sample std is within 0.2% of the truth at about 3 standard errors.
    assert abs(float(out.std()) / float(sigmas[-1]) - 1) < 0.006


ORDER_CASES = [
    ("seeds_2 eta=0", partial(seeds_2, eta=0.0), 2, 80),
    ("seeds_2 eta=0 r=1/3", partial(seeds_2, eta=0.0, r=1 / 3), 2, 80),
    ("seeds_3 eta=0", partial(seeds_3, eta=0.0), 3, 80),
    # Stage k adds a term of the Taylor expansion of x0, but x0' is a backward divided difference,
    # first-order accurate: stages 2 and 3 are second order, as the paper's and ComfyUI's code.
    ("er_sde phi=l max_stage=1", partial(er_sde, noise_scaler=lambda lam: lam, max_stage=1), 1, 160),
    ("er_sde phi=l max_stage=2", partial(er_sde, noise_scaler=lambda lam: lam, max_stage=2), 2, 80),
    ("er_sde phi=l max_stage=3", partial(er_sde, noise_scaler=lambda lam: lam), 2, 80),
    # Predictor-corrector (PEC): a corrector through c points is of order c, else the predictor's p.
    ("sa_solver tau=0", partial(sa_solver, tau_func=lambda sigma: 0.0), 4, 80),
    ("sa_solver_pece tau=0", partial(sa_solver_pece, tau_func=lambda sigma: 0.0), 4, 80),
    ("sa_solver tau=0 p=2 c=3", partial(sa_solver, tau_func=lambda sigma: 0.0, predictor_order=2,
                                        corrector_order=3), 3, 80),
    ("sa_solver tau=0 p=3 c=0", partial(sa_solver, tau_func=lambda sigma: 0.0, corrector_order=0), 3, 80),
]


@pytest.mark.parametrize("name, sampler, order, n", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_converges_to_the_ode_solution_with_its_order(name, sampler, order, n):
    measured, e1, e2 = measured_order(sampler, n)
    assert abs(measured - order) < 0.4, f"{name}: order {measured:.2f} (errors {e1:.2e}, {e2:.2e})"


def test_tau_interval_is_stochastic_only_inside_the_interval():
    tau = tau_interval(5.0, 0.5, eta=0.8)
    assert [tau(s) for s in (6.0, 5.0, 1.0, 0.5, 0.4)] == [0.0, 0.8, 0.8, 0.8, 0.0]
    assert tau_interval(5.0, 0.5, eta=0.0)(1.0) == 0.0
