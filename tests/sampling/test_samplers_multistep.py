"""PLMS, iPNDM, iPNDM-v and DEIS: diffusers' PNDMScheduler (PLMS mode) and DEISMultistepScheduler on the
same timesteps, references written from the papers' coefficient definitions, and convergence orders
on the exact probability-flow ODE."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from diffusers import DEISMultistepScheduler, PNDMScheduler
from scipy import integrate

from sigmagraph.nodes.sampling.samplers.multistep import deis, ipndm, ipndm_v, ipndm_v_exact, plms

from .sampler_testkit import karras, measured_order, noisy_start

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def vp_alpha(sigma: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + sigma**2) ** 0.5


@pytest.mark.parametrize("set_alpha_to_one", [True, False], ids=["to_sigma0", "to_sigma_min"])
def test_plms_matches_diffusers_pndm_in_plms_mode(set_alpha_to_one, mixture):
    """PNDMScheduler(skip_prk_steps=True): pseudo improved Euler first (timestep repeated), then AB2, AB3, AB4."""
    scheduler = PNDMScheduler(**SD_BETAS, skip_prk_steps=True, set_alpha_to_one=set_alpha_to_one)
    scheduler.set_timesteps(10)
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.double()
    scheduler.final_alpha_cumprod = scheduler.final_alpha_cumprod.double()
    timesteps = scheduler.timesteps.tolist()
    assert timesteps[1] == timesteps[2]  # the second model call of the first step
    distinct = [timesteps[0]] + timesteps[2:]
    abars = [scheduler.alphas_cumprod[t] for t in distinct] + [scheduler.final_alpha_cumprod]
    sigmas = torch.stack([((1 - a) / a) ** 0.5 for a in abars])
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    ours = plms(mixture, x, sigmas, disable=True)

    x_vp = x * abars[0] ** 0.5
    for t in timesteps:
        abar = scheduler.alphas_cumprod[t]
        sigma = ((1 - abar) / abar) ** 0.5
        eps = (x_vp / abar**0.5 - mixture(x_vp / abar**0.5, sigma.expand(2))) / sigma
        x_vp = scheduler.step(eps, t, x_vp).prev_sample
    torch.testing.assert_close(ours, x_vp / abars[-1] ** 0.5, rtol=0, atol=1e-12)


@pytest.mark.parametrize("steps", [6, 20])
def test_deis_logrho_matches_diffusers_deis_multistep(steps, mixture):
    """DEISMultistepScheduler (order 3, log-rho AB) ends at SD's sigma_min; without lower_order_final, orders match."""
    scheduler = DEISMultistepScheduler(**SD_BETAS, solver_order=3, prediction_type="sample", lower_order_final=False)
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.double()
    scheduler.sigmas = sigmas
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    ours = deis(mixture, x, sigmas, disable=True, deis_mode="logrho", max_order=3)

    x_vp = x * vp_alpha(sigmas[0])
    for k, t in enumerate(scheduler.timesteps):
        x_vp = scheduler.step(mixture(x_vp / vp_alpha(sigmas[k]), sigmas[k].expand(2)), t, x_vp).prev_sample
    torch.testing.assert_close(ours, x_vp / vp_alpha(sigmas[-1]), rtol=0, atol=1e-11)


def test_deis_tab_integrates_the_interpolant_in_vp_time(mixture):
    """tAB-DEIS written from its definition: C_j = integral over [t_i, t_i+1] of L_j(t) dsigma/dt dt.

    The VP time is that of the linear-beta SDE through sigma(1e-3) = 0.002 and sigma(1) = 80. The
    integral as ComfyUI (zju-pi/diff-sampler's get_deis_coeff_list) takes it: the integrand summed at
    torch.linspace(t_i, t_i+1, 10000) times (t_i+1 - t_i) / 10000; and close to scipy's exact one.
    """
    log1p_min, log1p_max = math.log1p(0.002**2), math.log1p(80.0**2)
    # log(1 + sigma^2) = beta_min t + beta_d t^2 / 2 at both anchors:
    beta_d = 2 * (log1p_min / 1e-3 - log1p_max) / (1e-3 - 1)
    beta_min = log1p_max - beta_d / 2

    def sigma_of_t(t):
        return math.sqrt(math.expm1(beta_min * t + beta_d * t**2 / 2))

    def t_of_sigma(s):
        return (math.sqrt(beta_min**2 + 2 * beta_d * math.log1p(s**2)) - beta_min) / beta_d

    def dsigma_dt(t):
        return (beta_min + beta_d * t) * math.exp(beta_min * t + beta_d * t**2 / 2) / (2 * sigma_of_t(t))

    sigmas = karras(8)
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    ours = deis(mixture, x, sigmas, disable=True, max_order=3)

    def exact(a, b, f):
        return integrate.quad(f, a, b, epsabs=0, epsrel=1e-13)[0]

    def comfyui(a, b, f):
        taus = torch.linspace(a, b, 10000, dtype=torch.float64).tolist()
        return sum(f(t) for t in taus) * (b - a) / 10000

    sigma_values = sigmas.tolist()
    ts = [t_of_sigma(s) for s in sigma_values[:-1]]
    for integral, tolerance in ((comfyui, 1e-10), (exact, 1e-3)):
        expected, slopes = x, []
        for i in range(len(sigma_values) - 1):
            sigma = sigmas[i].expand(2)
            slopes.insert(0, (expected - mixture(expected, sigma)) / sigmas[i])
            if sigma_values[i + 1] == 0:
                expected = expected - sigma_values[i] * slopes[0]
                continue
            nodes = ts[i::-1][:3]

            def basis(t, j):
                return math.prod((t - nodes[m]) / (nodes[j] - nodes[m]) for m in range(len(nodes)) if m != j)

            coefficients = [integral(ts[i], ts[i + 1], lambda t: basis(t, j) * dsigma_dt(t)) for j in range(len(nodes))]
            if len(nodes) == 1:  # the first step is Euler (ComfyUI's order 1), the exact integral of dsigma
                coefficients = [sigma_values[i + 1] - sigma_values[i]]
            expected = expected + sum(c * d for c, d in zip(coefficients, slopes))
        torch.testing.assert_close(ours, expected, rtol=0, atol=tolerance)


def adams_bashforth_reference(mixture, sigmas, x, coefficients):
    """x += sum_j c_j d_{i-j}, slopes newest first, c = coefficients(i, slopes available); D at sigma = 0."""
    expected, slopes = x, []
    for i in range(len(sigmas) - 1):
        denoised = mixture(expected, sigmas[i].expand(2))
        slopes.insert(0, (expected - denoised) / sigmas[i])
        if sigmas[i + 1] == 0:
            expected = denoised
        else:
            expected = expected + sum(c * d for c, d in zip(coefficients(i, len(slopes)), slopes))
    return expected


def test_ipndm_uses_the_constant_step_adams_bashforth_table(mixture):
    """iPNDM: x += dsigma * (55 d_i - 59 d_i-1 + 37 d_i-2 - 9 d_i-3) / 24 after the 1-, 2-, 3-slope formulas."""
    table = [[1], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]]
    sigmas = karras(9)
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    expected = adams_bashforth_reference(mixture, sigmas, x, lambda i, available: [
        (sigmas[i + 1] - sigmas[i]) * c for c in table[min(available, 4) - 1]])
    torch.testing.assert_close(ipndm(mixture, x, sigmas, disable=True), expected, rtol=0, atol=1e-12)


def test_ipndm_v_exact_uses_variable_step_adams_bashforth(mixture):
    """Weights w solve sum_j w_j sigma_j^k = integral of sigma^k over the step (k < order): exact for polynomials."""
    sigmas = karras(9)
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    values = sigmas.tolist()

    def weights(i, available):
        nodes = np.array(values[i::-1][:4])
        a, b = values[i], values[i + 1]
        moments = np.array([(b ** (k + 1) - a ** (k + 1)) / (k + 1) for k in range(len(nodes))])
        return [float(w) for w in np.linalg.solve(np.vander(nodes, increasing=True).T, moments)]

    expected = adams_bashforth_reference(mixture, sigmas, x, weights)
    torch.testing.assert_close(ipndm_v_exact(mixture, x, sigmas, disable=True), expected, rtol=0, atol=1e-10)


# (name, sampler, order, n): constant-step Adams-Bashforth on Karras' unequal steps is second order
# whatever its design order; ComfyUI's ipndm_v of order 4 is first order; the others show their
# design order (see multistep.py on the start-up).
ORDER_CASES = [
    ("plms", plms, 2, 80),
    ("ipndm", ipndm, 2, 80),
    ("ipndm max_order=2", partial(ipndm, max_order=2), 2, 80),
    ("ipndm_v", ipndm_v, 1, 80),  # ComfyUI's order-4 coefficients: first order at fine uneven steps
    ("ipndm_v max_order=3", partial(ipndm_v, max_order=3), 3, 160),
    ("ipndm_v_exact", ipndm_v_exact, 4, 160),
    ("ipndm_v_exact max_order=3", partial(ipndm_v_exact, max_order=3), 3, 160),
    ("deis tab", deis, 3, 160),
    ("deis tab max_order=4", partial(deis, max_order=4), 4, 160),
    ("deis logrho", partial(deis, deis_mode="logrho"), 3, 160),
    ("deis rhoab max_order=2", partial(deis, deis_mode="rhoab", max_order=2), 2, 80),
]


@pytest.mark.parametrize("name, sampler, order, n", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_converges_to_the_ode_solution_with_its_order(name, sampler, order, n):
    measured, e1, e2 = measured_order(sampler, n)
    assert abs(measured - order) < 0.4, f"{name}: order {measured:.2f} (errors {e1:.2e}, {e2:.2e})"


def test_deis_rejects_an_unknown_mode(mixture):
    with pytest.raises(ValueError, match="deis_mode"):
        deis(mixture, noisy_start(), karras(4), disable=True, deis_mode="bogus")
