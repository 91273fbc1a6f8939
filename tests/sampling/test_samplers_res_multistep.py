"""RES multistep (plain, ancestral, CFG++) and gradient estimation against their update rules written
out from the papers with closed-form phi-functions, identities, and convergence orders."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from sigmagraph.nodes.sampling.samplers.ddim import ddim
from sigmagraph.nodes.sampling.samplers.res_multistep import (
    gradient_estimation, gradient_estimation_cfg_pp, res_multistep, res_multistep_ancestral,
    res_multistep_ancestral_cfg_pp, res_multistep_cfg_pp)
from sigmagraph.nodes.sampling.samplers.sa_solver import sa_solver

from .sampler_testkit import Recorded, guided_pair, karras, measured_order, noisy_start, rms


def phi_1(z: float) -> float:
    return math.expm1(z) / z


def phi_2(z: float) -> float:
    return (phi_1(z) - 1) / z


def ancestral(sigma: float, sigma_next: float, eta: float) -> tuple[float, float]:
    """k-diffusion's split: sigma_up = min(sigma_next, eta sigma_next sqrt(1 - sigma_next^2 / sigma^2))."""
    if sigma_next == 0 or eta == 0:
        return sigma_next, 0.0
    up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    return (sigma_next**2 - up**2) ** 0.5, up


def res_reference(model, x, sigmas, eta=0.0, noise=None):
    """Zhang et al.'s multistep: x_next = e^-h x + h (b1 D + b2 D_prev), b1 = phi1 - phi2 / c2, b2 = phi2 / c2,

    with phi_k at -h, h = lambda(sigma_down) - lambda, and c2 h the offset of D_prev's node:
    lambda_{i-1} - lambda(sigma_down_{i-1}), the previous deterministic sub-step (ComfyUI's placement).
    """
    values = [float(s) for s in sigmas]
    previous = None
    for i in range(len(values) - 1):
        sigma, sigma_next = values[i], values[i + 1]
        denoised = model(x, sigmas[i].expand(x.shape[0]))
        down, up = ancestral(sigma, sigma_next, eta)
        if down == 0 or previous is None:
            x = down / sigma * x + (1 - down / sigma) * denoised
        else:
            h = math.log(sigma / down)
            c2 = (-math.log(values[i - 1]) + math.log(previous[0])) / h
            b1, b2 = phi_1(-h) - phi_2(-h) / c2, phi_2(-h) / c2
            x = math.exp(-h) * x + h * (b1 * denoised + b2 * previous[1])
        if up > 0:
            x = x + up * noise(sigma, sigma_next)
        previous = (down, denoised)
    return x


def test_res_multistep_is_the_second_order_exponential_adams_step(mixture):
    sigmas = karras(9)
    x = noisy_start((2, 4, 4, 4))
    torch.testing.assert_close(res_multistep(mixture, x, sigmas, disable=True), res_reference(mixture, x, sigmas),
                               rtol=0, atol=1e-11)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_res_multistep_ancestral_steps_to_sigma_down_and_adds_sigma_up_noise(eta, mixture):
    sigmas = karras(9)
    x = noisy_start((2, 4, 4, 4))
    ours_noise, reference_noise = Recorded(x.shape, seed=2), Recorded(x.shape, seed=2)
    ours = res_multistep_ancestral(mixture, x, sigmas, disable=True, eta=eta, noise_sampler=ours_noise)
    expected = res_reference(mixture, x, sigmas, eta, reference_noise)
    assert len(ours_noise.draws) == len(sigmas) - 2
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-11)


IDENTITIES = [
    ("res_multistep_ancestral eta=0 == res_multistep", partial(res_multistep_ancestral, eta=0.0), res_multistep),
    ("res_multistep_ancestral_cfg_pp eta=0 == res_multistep_cfg_pp",
     partial(res_multistep_ancestral_cfg_pp, eta=0.0), res_multistep_cfg_pp),
    # Without a guider the unconditional x0 is the guided one.
    ("res_multistep_cfg_pp == res_multistep (no guider)", res_multistep_cfg_pp, res_multistep),
    ("gradient_estimation_cfg_pp == gradient_estimation (no guider)", gradient_estimation_cfg_pp,
     gradient_estimation),
    # d_bar = gamma d_i + (1 - gamma) d_{i-1} is the current slope alone for gamma = 1.
    ("gradient_estimation ge_gamma=1 == ddim", partial(gradient_estimation, ge_gamma=1.0), ddim),
]


@pytest.mark.parametrize("sampler, other", [c[1:] for c in IDENTITIES], ids=[c[0] for c in IDENTITIES])
def test_identity(sampler, other, mixture):
    x = noisy_start((2, 4, 4, 4))
    a = sampler(mixture, x, karras(10), {"seed": 3}, disable=True)
    b = other(mixture, x, karras(10), {"seed": 3}, disable=True)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_res_multistep_is_sa_solvers_second_order_ode_predictor(mixture):
    """Two implementations of one formula: SA-Solver with tau = 0, predictor order 2 and no corrector."""
    sigmas = karras(12, final_zero=False)
    x = noisy_start((2, 4, 4, 4))
    a = res_multistep(mixture, x, sigmas, disable=True)
    b = sa_solver(mixture, x, sigmas, disable=True, tau_func=lambda sigma: 0.0, predictor_order=2, corrector_order=0)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def guided_start():
    """(a CFG guider, 7 Karras sigmas, a start, the sigmas as floats) for the CFG++ references."""
    sigmas = karras(7)
    return guided_pair(), sigmas, noisy_start(), sigmas.tolist()


def test_res_multistep_cfg_pp_is_comfyuis():
    """ComfyUI's res_multistep with cfg_pp: Euler x = D + sigma_next (x - U) / sigma first, then
    x = e^-h (x + D - U) + h (b1 U + b2 U_prev) with b1 = phi1 - phi2 / c2, b2 = phi2 / c2."""
    guided, sigmas, x, values = guided_start()
    expected, previous_u = x, None
    for i in range(len(values) - 1):
        d, u = guided.with_uncond(expected, sigmas[i].expand(1))
        ratio = values[i + 1] / values[i]
        if previous_u is None or ratio == 0:
            update = d + ratio * (expected - u)
        else:
            h = -math.log(ratio)
            c2 = -math.log(values[i - 1] / values[i]) / h
            b1, b2 = phi_1(-h) - phi_2(-h) / c2, phi_2(-h) / c2
            update = math.exp(-h) * (expected + d - u) + h * (b1 * u + b2 * previous_u)
        expected, previous_u = update, u
    out = res_multistep_cfg_pp(guided, x, sigmas, disable=True)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-11)
    assert rms(out - res_multistep(guided, x, sigmas, disable=True)) > 1e-3


@pytest.mark.parametrize("cfg_pp", [False, True], ids=["plain", "cfg_pp"])
def test_gradient_estimation_extrapolates_the_slope(cfg_pp):
    """Permenter & Yuan: x_next = x + (sigma_next - sigma) (gamma d_i + (1 - gamma) d_{i-1}); D at sigma = 0.

    CFG++ takes the slopes from the unconditional x0 and lands on the guided one:
    x_next = D + sigma_next d_i + (gamma - 1) (d_i - d_{i-1}) (sigma_next - sigma).
    """
    (guided, sigmas, x, values), gamma = guided_start(), 2.0
    expected, d_prev = x, None
    for i in range(len(values) - 1):
        d_x0, u = guided.with_uncond(expected, sigmas[i].expand(1))
        slope_from = u if cfg_pp else d_x0
        d = (expected - slope_from) / values[i]
        if values[i + 1] == 0:
            expected = d_x0
        else:
            expected = d_x0 + values[i + 1] * d
            if d_prev is not None:
                expected = expected + (gamma - 1) * (d - d_prev) * (values[i + 1] - values[i])
        d_prev = d
    sampler = gradient_estimation_cfg_pp if cfg_pp else gradient_estimation
    torch.testing.assert_close(sampler(guided, x, sigmas, disable=True, ge_gamma=gamma), expected, rtol=0, atol=1e-12)


ORDER_CASES = [
    ("res_multistep", res_multistep, 2, 80),
    ("res_multistep_ancestral eta=0", partial(res_multistep_ancestral, eta=0.0), 2, 80),
    # As an ODE solver gamma = 2 misses the second-order condition (gamma = 3/2 on equal steps).
    ("gradient_estimation", gradient_estimation, 1, 160),
]


@pytest.mark.parametrize("name, sampler, order, n", ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_converges_to_the_ode_solution_with_its_order(name, sampler, order, n):
    measured, e1, e2 = measured_order(sampler, n)
    assert abs(measured - order) < 0.4, f"{name}: order {measured:.2f} (errors {e1:.2e}, {e2:.2e})"
