"""Samplers on a flow model (x = (1 - sigma) x0 + sigma n) give ComfyUI's numbers: each flow form
against ComfyUI's formula transcribed here from comfy/k_diffusion/sampling.py (its `_RF` samplers and
the half-log-SNR forms of its SDE samplers), run on the analytic mixture under a shifted flow
parametrization with the same noise; the samples' distribution against the mixture's; and the
schedules on shifted flow sigmas against ComfyUI's scheduler formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES
from sigmagraph.nodes.sampling.analytic import (GaussianMixture, mixture_network, sliced_wasserstein,
                                                sorted_projections, vectors)
from sigmagraph.nodes.sampling.contract import CONTRACTS, CountedModel
from sigmagraph.nodes.sampling.model_sampling import NetworkDenoiser, flow_model_sampling

from .sampler_testkit import Guided, Recorded, rms

FLOW = flow_model_sampling(shift=3.0)  # SD3's ModelSamplingDiscreteFlow: shift 3, multiplier 1000
SHAPE = (2, 4, 4, 4)


def flow_model(seed: int) -> NetworkDenoiser:
    return NetworkDenoiser(mixture_network(GaussianMixture.random(seed), FLOW), FLOW)


@pytest.fixture(scope="module")
def model():
    return flow_model(0)


def start() -> torch.Tensor:
    """Pure noise, the flow's x at sigma 1."""
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def schedule(steps: int = 6) -> torch.Tensor:
    return SCHEDULES["simple"](FLOW, steps).double()


def ours(name, model, x, sigmas, noise=None, **params):
    extra_args = {"seed": 0, "model_sampling": FLOW}
    if noise is not None:
        params["noise_sampler"] = noise
    return SAMPLERS[name](model, x, sigmas, extra_args, disable=True, **params)


# ------------------------------------------------------------------ ComfyUI's formulas, transcribed


def call(model, x, sigma):
    return model(x, sigma * torch.ones(x.shape[0], dtype=x.dtype))


def get_ancestral_step(sigma_from, sigma_to, eta):
    if not eta:
        return sigma_to, 0.0
    sigma_up = min(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    return (sigma_to**2 - sigma_up**2) ** 0.5, sigma_up


def half_log_snr(sigma):  # sigma_to_half_log_snr for CONST
    return sigma.logit().neg()


def sigma_at(lam):  # half_log_snr_to_sigma for CONST
    return lam.neg().sigmoid()


def offset_first_sigma(sigmas):
    if sigmas[0] >= 1:
        sigmas = sigmas.clone()
        sigmas[0] = FLOW.percent_to_sigma(1e-4)
    return sigmas


def rf_split(sigma, sigma_next, eta):
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2) ** 0.5
    return sigma_down, alpha_next, alpha_down, renoise


def euler_ancestral_rf(model, x, sigmas, noise, eta=1.0, s_noise=1.0):
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        sigma_down, alpha_next, alpha_down, renoise = rf_split(sigmas[i], sigmas[i + 1], eta)
        ratio = sigma_down / sigmas[i]
        x = ratio * x + (1 - ratio) * denoised
        if eta > 0:
            x = (alpha_next / alpha_down) * x + noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


def dpm_2_ancestral_rf(model, x, sigmas, noise, eta=1.0, s_noise=1.0):
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        sigma_down, alpha_next, alpha_down, renoise = rf_split(sigmas[i], sigmas[i + 1], eta)
        d = (x - denoised) / sigmas[i]
        if sigma_down == 0:
            x = x + d * (sigma_down - sigmas[i])
        else:
            sigma_mid = sigmas[i].log().lerp(sigma_down.log(), 0.5).exp()
            x_2 = x + d * (sigma_mid - sigmas[i])
            d_2 = (x_2 - call(model, x_2, sigma_mid)) / sigma_mid
            x = x + d_2 * (sigma_down - sigmas[i])
            x = (alpha_next / alpha_down) * x + noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
    return x


def dpmpp_2s_ancestral_rf(model, x, sigmas, noise, eta=1.0, s_noise=1.0, guided=False):
    """sample_dpmpp_2s_ancestral_RF, or with `guided` its _cfg_pp form (the unconditional x0 steps)."""
    lambda_fn, sigma_fn = (lambda s: ((1 - s) / s).log()), (lambda lbda: (lbda.exp() + 1) ** -1)

    def both(x, sigma):
        ones = sigma * torch.ones(x.shape[0], dtype=x.dtype)
        return model.with_uncond(x, ones) if guided else (model(x, ones),) * 2

    for i in range(len(sigmas) - 1):
        denoised, uncond = both(x, sigmas[i])
        sigma_down, alpha_next, alpha_down, renoise = rf_split(sigmas[i], sigmas[i + 1], eta)
        if sigmas[i + 1] == 0:
            x = x + (x - uncond) / sigmas[i] * (sigma_down - sigmas[i])
        else:
            if sigmas[i] == 1.0:
                sigma_s = 0.9999
            else:
                t_i, t_down = lambda_fn(sigmas[i]), lambda_fn(sigma_down)
                sigma_s = sigma_fn(t_i + (t_down - t_i) / 2)
            u = sigma_s / sigmas[i] * x + (1 - sigma_s / sigmas[i]) * uncond
            _, uncond_2 = both(u, torch.as_tensor(sigma_s, dtype=x.dtype))
            x = sigma_down / sigmas[i] * x + (1 - sigma_down / sigmas[i]) * uncond_2
        if sigmas[i + 1] > 0 and eta > 0:
            x = (alpha_next / alpha_down) * x + noise(sigmas[i], sigmas[i + 1]) * s_noise * renoise
        x = x + (1 - sigmas[i + 1]) * (denoised - uncond)
    return x


def euler_ancestral_cfg_pp(model, x, sigmas, noise, eta=1.0, s_noise=1.0):
    for i in range(len(sigmas) - 1):
        denoised, uncond = model.with_uncond(x, sigmas[i] * torch.ones(x.shape[0], dtype=x.dtype))
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        alpha_s = sigmas[i] * half_log_snr(sigmas[i]).exp()
        alpha_t = sigmas[i + 1] * half_log_snr(sigmas[i + 1]).exp()
        d = (x - alpha_s * uncond) / sigmas[i]
        sigma_down, sigma_up = get_ancestral_step(sigmas[i] / alpha_s, sigmas[i + 1] / alpha_t, eta)
        x = alpha_t * denoised + alpha_t * sigma_down * d
        if eta > 0 and s_noise > 0:
            x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * s_noise * sigma_up
    return x


def log_snr_loop(model, x, sigmas, step):
    """ComfyUI's log-SNR sampler loop: first sigma moved, x0 at sigma 0, else step(x, denoised, sigma, sigma_next)."""
    sigmas = offset_first_sigma(sigmas)
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        x = denoised if sigmas[i + 1] == 0 else step(x, denoised, sigmas[i], sigmas[i + 1])
    return x


def dpmpp_sde(model, x, sigmas, noise, eta=1.0, s_noise=1.0, r=0.5):
    def step(x, denoised, sigma, sigma_next):
        lambda_s, lambda_t = half_log_snr(sigma), half_log_snr(sigma_next)
        lambda_s_1 = lambda_s + r * (lambda_t - lambda_s)
        fac = 1 / (2 * r)
        sigma_s_1 = sigma_at(lambda_s_1)
        alpha_s, alpha_s_1 = sigma * lambda_s.exp(), sigma_s_1 * lambda_s_1.exp()
        alpha_t = sigma_next * lambda_t.exp()
        sd, su = get_ancestral_step(lambda_s.neg().exp(), lambda_s_1.neg().exp(), eta)
        h_ = sd.log().neg() - lambda_s
        x_2 = (alpha_s_1 / alpha_s) * (-h_).exp() * x - alpha_s_1 * (-h_).expm1() * denoised
        x_2 = x_2 + alpha_s_1 * noise(sigma, sigma_s_1) * s_noise * su
        denoised_2 = call(model, x_2, sigma_s_1)
        sd, su = get_ancestral_step(lambda_s.neg().exp(), lambda_t.neg().exp(), eta)
        h_ = sd.log().neg() - lambda_s
        denoised_d = (1 - fac) * denoised + fac * denoised_2
        x = (alpha_t / alpha_s) * (-h_).exp() * x - alpha_t * (-h_).expm1() * denoised_d
        return x + alpha_t * noise(sigma, sigma_next) * s_noise * su

    return log_snr_loop(model, x, sigmas, step)


def dpmpp_multistep_sde(model, x, sigmas, noise, order, solver_type="midpoint", eta=1.0, s_noise=1.0):
    """sample_dpmpp_2m_sde (order 2) and sample_dpmpp_3m_sde (order 3)."""
    sigmas = offset_first_sigma(sigmas)
    denoised_1 = denoised_2 = h = h_1 = h_2 = None
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            lambda_t = half_log_snr(sigmas[i + 1])
            h = lambda_t - half_log_snr(sigmas[i])
            h_eta = h * (eta + 1)
            alpha_t = sigmas[i + 1] * lambda_t.exp()
            x = sigmas[i + 1] / sigmas[i] * (-h * eta).exp() * x + alpha_t * (-h_eta).expm1().neg() * denoised
            phi_2 = h_eta.neg().expm1() / h_eta + 1
            if order == 3 and h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                d1_0, d1_1 = (denoised - denoised_1) / r0, (denoised_1 - denoised_2) / r1
                d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x = x + (alpha_t * phi_2) * d1 - (alpha_t * (phi_2 / h_eta - 0.5)) * d2
            elif order == 3 and h_1 is not None:
                x = x + (alpha_t * phi_2) * (denoised - denoised_1) / (h_1 / h)
            elif h_1 is not None:
                r = h_1 / h
                if solver_type == "heun":
                    x = x + alpha_t * ((-h_eta).expm1().neg() / (-h_eta) + 1) * (1 / r) * (denoised - denoised_1)
                else:
                    x = x + 0.5 * alpha_t * (-h_eta).expm1().neg() * (1 / r) * (denoised - denoised_1)
            x = x + noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * h * eta).expm1().neg().sqrt() * s_noise
        denoised_1, denoised_2 = denoised, denoised_1
        h_1, h_2 = h, h_1
    return x


def er_sde(model, x, sigmas, noise, s_noise=1.0, max_stage=3):
    def scaler(v):
        return v * ((v**0.3).exp() + 10.0)

    points = torch.arange(0, 200.0, dtype=torch.float32)
    sigmas = offset_first_sigma(sigmas)
    er_lambdas = half_log_snr(sigmas).neg().exp()
    old_denoised = old_denoised_d = None
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        stage = min(max_stage, i + 1)
        if sigmas[i + 1] == 0:
            x = denoised
        else:
            er_s, er_t = er_lambdas[i], er_lambdas[i + 1]
            alpha_s, alpha_t = sigmas[i] / er_s, sigmas[i + 1] / er_t
            r = scaler(er_t) / scaler(er_s)
            x = (alpha_t / alpha_s) * r * x + alpha_t * (1 - r) * denoised
            if stage >= 2:
                dt = er_t - er_s
                step = -dt / 200
                positions = er_t + points * step
                s = torch.sum(1 / scaler(positions)) * step
                denoised_d = (denoised - old_denoised) / (er_s - er_lambdas[i - 1])
                x = x + alpha_t * (dt + s * scaler(er_t)) * denoised_d
                if stage >= 3:
                    s_u = torch.sum((positions - er_s) / scaler(positions)) * step
                    denoised_u = (denoised_d - old_denoised_d) / ((er_s - er_lambdas[i - 2]) / 2)
                    x = x + alpha_t * ((dt**2) / 2 + s_u * scaler(er_t)) * denoised_u
                old_denoised_d = denoised_d
            std = (er_t**2 - er_s**2 * r**2).sqrt().nan_to_num(nan=0.0)
            x = x + alpha_t * noise(sigmas[i], sigmas[i + 1]) * s_noise * std
        old_denoised = denoised
    return x


def ei_h_phi_1(h):
    return torch.expm1(h)


def ei_h_phi_2(h):
    return (torch.expm1(h) - h) / h


def seeds(model, x, sigmas, noise, stages, eta=1.0, s_noise=1.0):
    """sample_seeds_2 (stages 2, r = 1/2, phi_1) and sample_seeds_3 (stages 3, r = 1/3, 2/3)."""
    r_1, r_2 = (0.5, None) if stages == 2 else (1 / 3, 2 / 3)

    def step(x, denoised, sigma, sigma_next):
        lambda_s, lambda_t = half_log_snr(sigma), half_log_snr(sigma_next)
        h = lambda_t - lambda_s
        h_eta = h * (eta + 1)
        lambda_s_1 = torch.lerp(lambda_s, lambda_t, r_1)
        sigma_s_1 = sigma_at(lambda_s_1)
        alpha_s_1, alpha_t = sigma_s_1 * lambda_s_1.exp(), sigma_next * lambda_t.exp()
        x_2 = sigma_s_1 / sigma * (-r_1 * h * eta).exp() * x - alpha_s_1 * ei_h_phi_1(-r_1 * h_eta) * denoised
        sde_noise = (-2 * r_1 * h * eta).expm1().neg().sqrt() * noise(sigma, sigma_s_1)
        x_2 = x_2 + sde_noise * sigma_s_1 * s_noise
        denoised_2 = call(model, x_2, sigma_s_1)
        if stages == 2:
            denoised_d = torch.lerp(denoised, denoised_2, 1 / (2 * r_1))
            x = sigma_next / sigma * (-h * eta).exp() * x - alpha_t * ei_h_phi_1(-h_eta) * denoised_d
            segment, last_sigma = (r_1 - 1) * h * eta, sigma_s_1
        else:
            lambda_s_2 = torch.lerp(lambda_s, lambda_t, r_2)
            sigma_s_2 = sigma_at(lambda_s_2)
            alpha_s_2 = sigma_s_2 * lambda_s_2.exp()
            a3_2 = r_2 / r_1 * ei_h_phi_2(-r_2 * h_eta)
            a3_1 = ei_h_phi_1(-r_2 * h_eta) - a3_2
            x_3 = sigma_s_2 / sigma * (-r_2 * h * eta).exp() * x - alpha_s_2 * (a3_1 * denoised + a3_2 * denoised_2)
            segment = (r_1 - r_2) * h * eta
            sde_noise = sde_noise * segment.exp() + segment.mul(2).expm1().neg().sqrt() * noise(sigma_s_1, sigma_s_2)
            x_3 = x_3 + sde_noise * sigma_s_2 * s_noise
            denoised_3 = call(model, x_3, sigma_s_2)
            b3 = ei_h_phi_2(-h_eta) / r_2
            b1 = ei_h_phi_1(-h_eta) - b3
            x = sigma_next / sigma * (-h * eta).exp() * x - alpha_t * (b1 * denoised + b3 * denoised_3)
            segment, last_sigma = (r_2 - 1) * h * eta, sigma_s_2
        sde_noise = sde_noise * segment.exp() + segment.mul(2).expm1().neg().sqrt() * noise(last_sigma, sigma_next)
        return x + sde_noise * sigma_next * s_noise

    return log_snr_loop(model, x, sigmas, step)


def stochastic_adams_b(sigma_next, lambdas, lambda_s, lambda_t, tau):
    """alpha_t (1 + tau^2) times the integral over [lambda_s, lambda_t] of e^((1 + tau^2)(l - lambda_t)) L_j(l)."""
    rate = 1 + tau**2
    nodes = [float(v) for v in lambdas]

    def basis(l, j):
        return math.prod((l - nodes[m]) / (nodes[j] - nodes[m]) for m in range(len(nodes)) if m != j)

    coefficients = [integrate.quad(lambda l: rate * math.exp(rate * (l - float(lambda_t))) * basis(l, j),
                                   float(lambda_s), float(lambda_t), epsabs=0, epsrel=1e-13)[0]
                    for j in range(len(nodes))]
    return float(sigma_next * lambda_t.exp()) * torch.tensor(coefficients, dtype=torch.float64)


def sa_solver(model, x, sigmas, noise, predictor_order=3, corrector_order=4, s_noise=1.0):
    start_sigma, end_sigma = FLOW.percent_to_sigma(0.2), FLOW.percent_to_sigma(0.8)

    def tau_func(sigma):
        return 1.0 if start_sigma >= float(sigma) >= end_sigma else 0.0

    sigmas = offset_first_sigma(sigmas)
    lambdas = half_log_snr(sigmas)
    x_pred, h, tau_t, noise_term, pred_list = x, 0.0, 0.0, 0.0, []
    lower_order_to_end = sigmas[-1].item() == 0
    for i in range(len(sigmas) - 1):
        denoised = call(model, x_pred, sigmas[i])
        pred_list = (pred_list + [denoised])[-max(predictor_order, corrector_order):]
        predictor_used = min(predictor_order, len(pred_list))
        corrector_used = 0 if i == 0 or sigmas[i + 1] == 0 else min(corrector_order, len(pred_list))
        if lower_order_to_end:
            predictor_used = min(predictor_used, len(sigmas) - 2 - i)
            corrector_used = min(corrector_used, len(sigmas) - 1 - i)
        if corrector_used == 0:
            x = x_pred
        else:
            b = stochastic_adams_b(sigmas[i], lambdas[i - corrector_used + 1:i + 1], lambdas[i - 1], lambdas[i], tau_t)
            x = sigmas[i] / sigmas[i - 1] * (-(tau_t**2) * h).exp() * x + sum(
                c * d for c, d in zip(b, pred_list[-corrector_used:]))
            if tau_t > 0:
                x = x + noise_term
        if sigmas[i + 1] == 0:
            x_pred = denoised
        else:
            tau_t = tau_func(sigmas[i + 1])
            b = stochastic_adams_b(sigmas[i + 1], lambdas[i - predictor_used + 1:i + 1], lambdas[i], lambdas[i + 1],
                                   tau_t)
            h = lambdas[i + 1] - lambdas[i]
            x_pred = sigmas[i + 1] / sigmas[i] * (-(tau_t**2) * h).exp() * x + sum(
                c * d for c, d in zip(b, pred_list[-predictor_used:]))
            if tau_t > 0:
                noise_term = noise(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (
                    -2 * tau_t**2 * h).expm1().neg().sqrt() * s_noise
                x_pred = x_pred + noise_term
    return x_pred


def lcm(model, x, sigmas, noise):
    for i in range(len(sigmas) - 1):
        x = call(model, x, sigmas[i])
        if sigmas[i + 1] > 0:
            x = sigmas[i + 1] * noise(sigmas[i], sigmas[i + 1]) + (1.0 - sigmas[i + 1]) * x  # CONST noise_scaling
    return x


# name -> (reference, sampler parameters): every sampler whose ComfyUI code depends on a flow model
CASES = {
    "euler_ancestral": (euler_ancestral_rf, {}),
    "euler_ancestral eta=0.5": (lambda m, x, s, n: euler_ancestral_rf(m, x, s, n, eta=0.5), {"eta": 0.5}),
    "dpm_2_ancestral": (dpm_2_ancestral_rf, {}),
    "dpmpp_2s_ancestral": (dpmpp_2s_ancestral_rf, {}),
    "dpmpp_sde": (dpmpp_sde, {}),
    "dpmpp_2m_sde": (lambda m, x, s, n: dpmpp_multistep_sde(m, x, s, n, 2, "midpoint"), {}),
    "dpmpp_2m_sde_heun": (lambda m, x, s, n: dpmpp_multistep_sde(m, x, s, n, 2, "heun"), {}),
    "dpmpp_3m_sde": (lambda m, x, s, n: dpmpp_multistep_sde(m, x, s, n, 3), {}),
    "er_sde": (er_sde, {}),
    "seeds_2": (lambda m, x, s, n: seeds(m, x, s, n, 2), {}),
    "seeds_3": (lambda m, x, s, n: seeds(m, x, s, n, 3), {}),
    "sa_solver": (sa_solver, {}),
    "lcm": (lcm, {}),
}


@pytest.mark.parametrize("case", CASES)
def test_flow_form_is_comfyuis(case, model):
    name = case.split()[0]
    reference, params = CASES[case]
    x, sigmas = start(), schedule(8 if name == "sa_solver" else 6)
    out = ours(name, model, x, sigmas, Recorded(SHAPE, seed=4), **params)
    expected = reference(model, x, sigmas, Recorded(SHAPE, seed=4))
    assert rms(out - expected) < 1e-8, rms(out - expected)


@pytest.mark.parametrize("name, reference", [("euler_ancestral_cfg_pp", euler_ancestral_cfg_pp),
                                             ("dpmpp_2s_ancestral_cfg_pp",
                                              lambda m, x, s, n: dpmpp_2s_ancestral_rf(m, x, s, n, guided=True))])
def test_flow_cfg_pp_form_is_comfyuis(name, reference):
    guided = Guided(flow_model(0), flow_model(5), scale=2.0)
    x, sigmas = start(), schedule()
    out = ours(name, guided, x, sigmas, Recorded(SHAPE, seed=4))
    expected = reference(guided, x, sigmas, Recorded(SHAPE, seed=4))
    assert rms(out - expected) < 1e-8, rms(out - expected)


@pytest.mark.parametrize("name", ["ddpm", "res_multistep_ancestral", "dpmpp_2m", "uni_pc"])
def test_samplers_comfyui_runs_unchanged_on_flow_models_ignore_the_frame(name, model):
    """ComfyUI's ddpm, res_multistep_ancestral and the ODE samplers have no flow branch."""
    x, sigmas = start(), schedule()
    flow = ours(name, model, x, sigmas)
    plain = SAMPLERS[name](model, x, sigmas, {"seed": 0}, disable=True)
    assert torch.equal(flow, plain)


def point_mass_at_zero(x, sigma, **inputs):
    """The exact denoiser of data that is always 0."""
    return torch.zeros_like(x)


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_sampler_runs_on_a_flow_model_from_sigma_one(name):
    """From sigma 1 (infinite log-SNR) every sampler stays finite and calls the model as its contract says."""
    model = CountedModel(flow_model(0), name)
    out = ours(name, model, start(), schedule(7))
    expected = CONTRACTS[name].nfe(7)
    assert bool(torch.isfinite(out).all()) and expected in (None, model.calls), (model.calls, expected)


def test_rf_euler_ancestral_keeps_the_flow_marginal():
    """For data 0 the flow marginal at sigma is sigma n: one step from 0.7 n must give noise of std 0.4."""
    x = 0.7 * torch.randn((1, 4, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigmas = torch.tensor([0.7, 0.4], dtype=torch.float64)
    out = SAMPLERS["euler_ancestral"](point_mass_at_zero, x, sigmas, {"seed": 1, "model_sampling": FLOW}, disable=True)
    assert abs(float(out.std()) - 0.4) < 0.01


# ------------------------------------------------------------------ the samples' distribution

SAMPLED = {"euler_ancestral": 60, "dpm_2_ancestral": 30, "dpmpp_2s_ancestral": 30, "dpmpp_sde": 20,
           "dpmpp_2m_sde": 20, "dpmpp_3m_sde": 20, "er_sde": 60, "seeds_2": 30, "seeds_3": 20, "sa_solver": 60,
           "euler_ancestral_cfg_pp": 60}


@pytest.fixture(scope="module")
def mixture_samples():
    mixture = GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
    g = torch.Generator().manual_seed(1)
    exact = vectors(mixture.sample((8, 4, 32, 32), g))
    directions = torch.randn(64, 4, generator=g, dtype=torch.float64)
    directions /= directions.norm(dim=1, keepdim=True)
    noise = torch.randn((2, 4, 32, 32), generator=g, dtype=torch.float64)
    return exact, directions, noise


@pytest.mark.filterwarnings("ignore:Should have:UserWarning")
@pytest.mark.parametrize("name", SAMPLED)
def test_flow_sampler_samples_the_mixture(name, model, mixture_samples):
    """2048 samples from pure noise on the shifted simple schedule: tolerances of test_samples_distribution."""
    exact, directions, noise = mixture_samples
    samples = vectors(ours(name, model, noise, SCHEDULES["simple"](FLOW, SAMPLED[name]).double()))
    mean_error = float((samples.mean(0) - exact.mean(0)).abs().max())
    cov_error = float((samples.T.cov() - exact.T.cov()).abs().max())
    distance = sliced_wasserstein(samples, sorted_projections(exact, directions), directions)
    assert mean_error < 0.08 and cov_error < 0.15 and distance < 0.06, (mean_error, cov_error, distance)


# ------------------------------------------------------------------ schedules on shifted flow sigmas


def comfyui_flow_table(shift: float, multiplier: float = 1000.0, timesteps: int = 1000) -> torch.Tensor:
    """ModelSamplingDiscreteFlow.set_parameters: sigma((arange(1, T + 1) / T) * multiplier)."""
    t = (torch.arange(1, timesteps + 1, 1) / timesteps) * multiplier / multiplier
    return shift * t / (1 + (shift - 1) * t)


def comfyui_simple(table, steps):
    ss = len(table) / steps
    return torch.FloatTensor([float(table[-(1 + int(x * ss))]) for x in range(steps)] + [0.0])


def comfyui_normal(table, steps, shift):
    sigma = lambda timestep: shift * (timestep / 1000) / (1 + (shift - 1) * (timestep / 1000))  # noqa: E731
    start, end = table[-1] * 1000, table[0] * 1000
    if math.isclose(float(sigma(end)), 0, abs_tol=0.00001):
        return torch.FloatTensor([sigma(t) for t in torch.linspace(start, end, steps + 1)])
    return torch.FloatTensor([sigma(t) for t in torch.linspace(start, end, steps)] + [0.0])


def comfyui_beta(table, steps, alpha=0.6, beta=0.6):
    ts = np.rint(stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), alpha, beta) * (len(table) - 1))
    sigs, last_t = [], -1
    for t in ts:
        if t != last_t:
            sigs += [float(table[int(t)])]
        last_t = t
    return torch.FloatTensor(sigs + [0.0])


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("steps", [1, 9, 20])
def test_flow_schedules_are_comfyuis(shift, steps):
    model_sampling = flow_model_sampling(shift=shift)
    table = comfyui_flow_table(shift)
    assert torch.equal(model_sampling.sigmas, table)
    assert torch.equal(SCHEDULES["simple"](model_sampling, steps), comfyui_simple(table, steps))
    assert torch.equal(SCHEDULES["normal"](model_sampling, steps), comfyui_normal(table, steps, shift))
    torch.testing.assert_close(SCHEDULES["beta"](model_sampling, steps), comfyui_beta(table, steps), rtol=0, atol=0)
    assert float(SCHEDULES["simple"](model_sampling, steps)[0]) == 1.0
