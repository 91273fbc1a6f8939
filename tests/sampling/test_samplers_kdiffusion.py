"""The k-diffusion-family samplers against references they do not share code with: the exact
probability-flow ODE solution of an analytic mixture (convergence orders), identities derived by
hand, dpm_fast's and dpm_adaptive's own steps, and CFG++ written out from the paper's update rule.
Model calls, callbacks, interrupts and seeds are the sampler contract (test_sampler_contract.py)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.analytic import probability_flow_solution
from sigmagraph.nodes.sampling.contract import CountedModel

from .sampler_testkit import guided_pair, karras, rms, smooth_mixture as make_smooth_mixture

SIGMA_MAX, SIGMA_MIN = 14.6146, 0.1


def log_uniform(n: int, sigma_max: float = SIGMA_MAX, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """n steps uniform in log sigma, ending at sigma_min (no final 0: every step is a regular step)."""
    return torch.linspace(math.log(sigma_max), math.log(sigma_min), n + 1, dtype=torch.float64).exp()


@pytest.fixture(scope="module")
def smooth_mixture():
    return make_smooth_mixture()


@pytest.fixture(scope="module")
def ode_problem(smooth_mixture):
    """A start drawn from the exact marginal at SIGMA_MAX and its probability-flow solution at SIGMA_MIN."""
    g = torch.Generator().manual_seed(0)
    shape = (2, 4, 4, 4)
    x = smooth_mixture.sample(shape, g) + SIGMA_MAX * torch.randn(shape, generator=g, dtype=torch.float64)
    return x, probability_flow_solution(smooth_mixture, x, SIGMA_MAX, SIGMA_MIN, steps=250)


def measured_order(sampler, model, x, exact, n1: int, n2: int) -> tuple[float, float, float]:
    e1 = rms(sampler(model, x, log_uniform(n1), disable=True) - exact)
    e2 = rms(sampler(model, x, log_uniform(n2), disable=True) - exact)
    return math.log(e1 / e2) / math.log(n2 / n1), e1, e2


ORDER_CASES = [
    ("euler", SAMPLERS["euler"], 1),
    ("euler_cfg_pp", SAMPLERS["euler_cfg_pp"], 1),
    ("euler_ancestral eta=0", partial(SAMPLERS["euler_ancestral"], eta=0.0), 1),
    ("heunpp2", SAMPLERS["heunpp2"], 1),  # a heuristic: its slope weights miss the second-order conditions
    ("heun", SAMPLERS["heun"], 2),
    ("edm_stochastic s_churn=0", partial(SAMPLERS["edm_stochastic"], s_churn=0.0), 2),
    ("dpm_2", SAMPLERS["dpm_2"], 2),
    ("dpm_2_ancestral eta=0", partial(SAMPLERS["dpm_2_ancestral"], eta=0.0), 2),
    ("dpm_solver_2s", SAMPLERS["dpm_solver_2s"], 2),
    ("dpm_solver_2s r1=1/3", partial(SAMPLERS["dpm_solver_2s"], r1=1 / 3), 2),
    ("dpmpp_2s_ancestral eta=0", partial(SAMPLERS["dpmpp_2s_ancestral"], eta=0.0), 2),
    ("dpmpp_2s_ancestral_cfg_pp eta=0", partial(SAMPLERS["dpmpp_2s_ancestral_cfg_pp"], eta=0.0), 2),
    ("dpmpp_sde eta=0", partial(SAMPLERS["dpmpp_sde"], eta=0.0), 2),
    ("dpmpp_sde eta=0 r=1/3", partial(SAMPLERS["dpmpp_sde"], eta=0.0, r=1 / 3), 2),
    ("dpmpp_2m", SAMPLERS["dpmpp_2m"], 2),
    ("dpmpp_2m_cfg_pp", SAMPLERS["dpmpp_2m_cfg_pp"], 2),
    ("dpmpp_2m_sde eta=0", partial(SAMPLERS["dpmpp_2m_sde"], eta=0.0), 2),
    ("dpmpp_2m_sde_heun eta=0", partial(SAMPLERS["dpmpp_2m_sde_heun"], eta=0.0), 2),
    ("lms order=2", partial(SAMPLERS["lms"], order=2), 2),
    # Second order, not third: its first (Euler-like) step alone makes the global error O(h^2), and
    # the second difference enters with half its Taylor weight (as in k-diffusion, ComfyUI and the
    # DPM-Solver reference code), so even its local error is O(h^3). See test_dpmpp_3m_* below.
    ("dpmpp_3m_sde eta=0", partial(SAMPLERS["dpmpp_3m_sde"], eta=0.0), 2),
    ("dpm_solver_3s", SAMPLERS["dpm_solver_3s"], 3),
]


@pytest.mark.parametrize("name, sampler, order", ORDER_CASES, ids=[case[0] for case in ORDER_CASES])
def test_deterministic_sampler_converges_to_the_ode_solution_with_its_order(name, sampler, order, smooth_mixture,
                                                                           ode_problem):
    x, exact = ode_problem
    measured, e1, e2 = measured_order(sampler, smooth_mixture, x, exact, 24, 48)
    assert abs(measured - order) <= 0.35, f"{name}: error {e1:.2e} -> {e2:.2e}, measured order {measured:.2f}"
    assert e2 < 0.03


def test_dpm_fast_is_third_order(smooth_mixture, ode_problem):
    """n = 35 and 71 model calls give 12 and 24 steps ending in a second-order step (n % 3 == 2)."""
    x, exact = ode_problem
    e1 = rms(SAMPLERS["dpm_fast"](smooth_mixture, x, log_uniform(35), disable=True) - exact)
    e2 = rms(SAMPLERS["dpm_fast"](smooth_mixture, x, log_uniform(71), disable=True) - exact)
    assert abs(math.log2(e1 / e2) - 3) <= 0.35, (e1, e2)


def test_lms_order_4_beats_second_order_though_its_start_up_caps_the_asymptotic_order(smooth_mixture,
                                                                                  ode_problem):
    """LMS-4 is fourth order per step, but it starts with an Euler step whose O(h^2) error bounds the
    global order by 2 as h -> 0. The probability-flow ODE damps errors made at large sigma strongly,
    so at practical step counts the measured order lies between 3 and 4."""
    x, exact = ode_problem
    measured, _, e4 = measured_order(SAMPLERS["lms"], smooth_mixture, x, exact, 24, 48)
    e2 = rms(SAMPLERS["lms"](smooth_mixture, x, log_uniform(48), order=2, disable=True) - exact)
    assert 2.9 <= measured <= 4.35
    assert e4 < e2 / 10


def test_dpmpp_3m_sde_beats_2m_at_equal_cost(smooth_mixture, ode_problem):
    x, exact = ode_problem
    e3 = rms(SAMPLERS["dpmpp_3m_sde"](smooth_mixture, x, log_uniform(48), eta=0.0, disable=True) - exact)
    e2 = rms(SAMPLERS["dpmpp_2m"](smooth_mixture, x, log_uniform(48), disable=True) - exact)
    assert e3 < e2 / 2


def test_dpmpp_3m_local_error_is_third_power_of_the_step(smooth_mixture):
    """One 3M step from exact history: three points of the true trajectory, uniform in lambda.

    A third-order multistep step has local error O(h^4) (halving h divides it by 16); with the
    second difference at half weight, as the reference implementations have it, it is O(h^3) (8).
    """
    g = torch.Generator().manual_seed(3)
    shape = (1, 4, 4, 4)
    start = smooth_mixture.sample(shape, g) + 2.0 * torch.randn(shape, generator=g, dtype=torch.float64)
    ratios = []
    for h in (0.02, 0.01):
        sigmas = 2.0 * torch.exp(-h * torch.arange(4, dtype=torch.float64))
        path = [start]
        for k in range(1, 4):
            path.append(probability_flow_solution(smooth_mixture, path[-1], float(sigmas[k - 1]), float(sigmas[k]),
                                                  steps=8))
        exact_x0 = [smooth_mixture(path[k], sigmas[k:k + 1]) for k in range(3)]
        # The model replays the exact x0 of the path whatever x it is given, so the third step runs
        # on exact history; its update is (sigma_3 / sigma_2) x + terms in the x0s only, so moving
        # the x the sampler carried into it onto the path gives the step from the exact state.
        carried = {}
        out = SAMPLERS["dpmpp_3m_sde"](lambda x, sigma, **extra: exact_x0.pop(0), start, sigmas, eta=0.0, disable=True,
                                       callback=lambda info: carried.update({info["i"]: info["x"]}))
        step_from_path = out + sigmas[3] / sigmas[2] * (path[2] - carried[2])
        ratios.append(rms(step_from_path - path[3]))
    assert 6.0 < ratios[0] / ratios[1] < 12.0, ratios


@pytest.mark.parametrize("order", [2, 3])
def test_dpm_adaptive_reaches_its_tolerance(order, smooth_mixture, ode_problem):
    x, exact = ode_problem
    loose = rms(SAMPLERS["dpm_adaptive"](smooth_mixture, x, log_uniform(10), order=order, rtol=1e-2, atol=1e-2,
                                         disable=True) - exact)
    tight = rms(SAMPLERS["dpm_adaptive"](smooth_mixture, x, log_uniform(10), order=order, rtol=1e-4, atol=1e-4,
                                         disable=True) - exact)
    assert tight < loose / 10 and tight < 1e-3, (loose, tight)


# --- identities ----------------------------------------------------------------------------------

IDENTITIES = [
    # eta = 0 removes the noise and the sigma_down shortcut: the ODE sampler remains.
    ("euler_ancestral", {"eta": 0.0}, "euler", {}),
    ("dpm_2_ancestral", {"eta": 0.0}, "dpm_2", {}),
    ("dpmpp_2m_sde", {"eta": 0.0}, "dpmpp_2m", {}),
    # With r = 1/2 the combined x0 is the midpoint prediction alone: DPM-Solver++(2S).
    ("dpmpp_sde", {"eta": 0.0}, "dpmpp_2s_ancestral", {"eta": 0.0}),
    # Algorithm 2 with S_churn = 0 is Algorithm 1.
    ("edm_stochastic", {"s_churn": 0.0}, "heun", {}),
    # k-diffusion's dpm_2 is DPM-Solver-2 with r1 = 1/2.
    ("dpm_solver_2s", {}, "dpm_2", {}),
    # Without a guider the unconditional x0 is the guided one: CFG++ is the plain sampler.
    ("euler_cfg_pp", {}, "euler", {}),
    ("euler_ancestral_cfg_pp", {}, "euler_ancestral", {}),
    ("dpmpp_2s_ancestral_cfg_pp", {}, "dpmpp_2s_ancestral", {}),
    ("dpmpp_2m_cfg_pp", {}, "dpmpp_2m", {}),
]


@pytest.mark.parametrize("name, params, other, other_params", IDENTITIES,
                         ids=[f"{a}=={c}" for a, _, c, _ in IDENTITIES])
def test_identity(name, params, other, other_params, mixture):
    g = torch.Generator().manual_seed(1)
    x = 14.6 * torch.randn((2, 4, 4, 4), generator=g, dtype=torch.float64)
    extra = {"seed": 11}
    a = SAMPLERS[name](mixture, x, karras(12), extra, disable=True, **params)
    b = SAMPLERS[other](mixture, x, karras(12), extra, disable=True, **other_params)
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["euler_ancestral", "dpmpp_2m_sde"])
def test_zero_s_noise_is_not_the_ode_sampler(name, mixture):
    """s_noise = 0 keeps the shortened deterministic steps but drops the noise that restores the variance."""
    x = 14.6 * torch.randn((2, 4, 4, 4), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ode = {"euler_ancestral": "euler", "dpmpp_2m_sde": "dpmpp_2m"}[name]
    a = SAMPLERS[name](mixture, x, karras(12), {"seed": 1}, disable=True, s_noise=0.0)
    b = SAMPLERS[ode](mixture, x, karras(12), disable=True)
    assert rms(a - b) > 0.1


# --- dpm_fast's and dpm_adaptive's own steps ----------------------------------------------------------

@pytest.mark.parametrize("order", [2, 3])
def test_dpm_adaptive_nfe_is_one_per_accepted_step_plus_order_minus_one_per_attempt(order, mixture):
    model = CountedModel(mixture)
    attempts = []
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # h_init = 3 is far too large at first: the controller must reject and shrink.
    SAMPLERS["dpm_adaptive"](model, x, karras(10), order=order, h_init=3.0, disable=True,
                             callback=lambda info: attempts.append(float(info["sigma"])))
    accepted = len(set(attempts))
    assert len(attempts) > accepted > 1
    assert model.calls == accepted + (order - 1) * len(attempts)


def test_dpm_fast_reports_each_of_its_own_steps(mixture):
    """n model calls over n // 3 + 1 steps, each reported once."""
    model, infos = CountedModel(mixture), []
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    SAMPLERS["dpm_fast"](model, x, karras(6), callback=infos.append, disable=True)
    assert [info["i"] for info in infos] == list(range(6 // 3 + 1)) and model.calls == 6


# --- CFG++ with a guider -----------------------------------------------------------------------------

@pytest.fixture
def guided():
    return guided_pair()


def test_euler_cfg_pp_renoises_with_the_unconditional_noise(guided):
    """CFG++ (Chung et al. 2024, Algorithm 1) in sigma space:
    x_next = x0_guided + sigma_next (x - x0_uncond) / sigma."""
    sigmas = karras(5)
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected = x
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        ones = torch.ones(1, dtype=torch.float64)
        g, u = guided.with_uncond(expected, s * ones)
        expected = g + s_next * (expected - u) / s
    out = SAMPLERS["euler_cfg_pp"](guided, x, sigmas, disable=True)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert rms(out - SAMPLERS["euler"](guided, x, sigmas, disable=True)) > 1e-3


def test_euler_ancestral_cfg_pp_renoises_with_the_unconditional_noise(guided):
    sigmas = karras(5)
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    draws = [torch.randn(x.shape, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in range(5)]
    expected = x
    for k, (s, s_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        g, u = guided.with_uncond(expected, s * torch.ones(1, dtype=torch.float64))
        up = min(s_next, (s_next**2 * (s**2 - s_next**2) / s**2) ** 0.5)
        down = (s_next**2 - up**2) ** 0.5
        expected = g + down * (expected - u) / s + up * draws[k]
    queue = list(draws)
    out = SAMPLERS["euler_ancestral_cfg_pp"](guided, x, sigmas, disable=True, noise_sampler=lambda a, b: queue.pop(0))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_dpmpp_2m_cfg_pp_differences_against_the_previous_unconditional_x0(guided):
    sigmas = karras(6)
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    expected, previous_u = x, None
    for k, (s, s_next) in enumerate(zip(sigmas[:-1], sigmas[1:])):
        g, u = guided.with_uncond(expected, s * torch.ones(1, dtype=torch.float64))
        update = g + (s_next / s) * (expected - u)
        if previous_u is not None and s_next > 0:
            r = math.log(sigmas[k - 1] / s) / math.log(s / s_next)
            update = update + (1 - s_next / s) / (2 * r) * (g - previous_u)
        expected, previous_u = update, u
    out = SAMPLERS["dpmpp_2m_cfg_pp"](guided, x, sigmas, disable=True)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_dpmpp_2s_ancestral_cfg_pp_is_comfyuis(guided):
    # ComfyUI's sample_dpmpp_2s_ancestral_cfg_pp at eta 0: both stages step from the unconditional x0
    # (the second with the midpoint call's), then the first call's guidance g - u is added back.
    sigmas = karras(5)
    x = 14.6 * torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ones = torch.ones(1, dtype=torch.float64)
    expected = x
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        g, u = guided.with_uncond(expected, s * ones)
        if s_next == 0:
            expected = g
            continue
        s_mid = (s * s_next) ** 0.5
        _, u_mid = guided.with_uncond(u + s_mid / s * (expected - u), s_mid * ones)
        expected = u_mid + s_next / s * (expected - u_mid) + (g - u)
    out = SAMPLERS["dpmpp_2s_ancestral_cfg_pp"](guided, x, sigmas, eta=0.0, disable=True)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
