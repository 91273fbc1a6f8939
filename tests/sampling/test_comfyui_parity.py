"""Samplers under ComfyUI's names give ComfyUI's numbers where they once differed (ipndm_v, uni_pc,
uni_pc_bh2, deis; er_sde in test_samplers_sde.py): ComfyUI's code paths transcribed here from
comfy/k_diffusion/sampling.py, comfy/k_diffusion/deis.py and comfy/extra_samplers/uni_pc.py, run on
the analytic mixture in float64 on SD's normal schedule, against ours on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling

from .sampler_testkit import rms

SHAPE = (2, 4, 4, 4)
SD = discrete_model_sampling()


def normal(steps: int) -> torch.Tensor:
    return SCHEDULES["normal"](SD, steps).double()


def start(sigma: float) -> torch.Tensor:
    return sigma * torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def call(model, x, sigma):
    return model(x, sigma * torch.ones(x.shape[0], dtype=x.dtype))


def comfyui_ipndm_v(model, x, sigmas, max_order=4):
    t_steps, buffer_model, x_next = sigmas, [], x
    for i in range(len(sigmas) - 1):
        t_cur, t_next = sigmas[i], sigmas[i + 1]
        x_cur = x_next
        denoised = call(model, x_cur, t_cur)
        d_cur = (x_cur - denoised) / t_cur
        order = min(max_order, i + 1)
        if t_next == 0:
            x_next = denoised
        elif order == 1:
            x_next = x_cur + (t_next - t_cur) * d_cur
        elif order == 2:
            h_n, h_n_1 = (t_next - t_cur), (t_cur - t_steps[i - 1])
            coeff1, coeff2 = (2 + (h_n / h_n_1)) / 2, -(h_n / h_n_1) / 2
            x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * buffer_model[-1])
        elif order == 3:
            h_n, h_n_1, h_n_2 = (t_next - t_cur), (t_cur - t_steps[i - 1]), (t_steps[i - 1] - t_steps[i - 2])
            temp = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2
            coeff1 = (2 + (h_n / h_n_1)) / 2 + temp
            coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp
            coeff3 = temp * h_n_1 / h_n_2
            x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * buffer_model[-1] + coeff3 * buffer_model[-2])
        else:
            h_n, h_n_1 = (t_next - t_cur), (t_cur - t_steps[i - 1])
            h_n_2, h_n_3 = (t_steps[i - 1] - t_steps[i - 2]), (t_steps[i - 2] - t_steps[i - 3])
            temp1 = (1 - h_n / (3 * (h_n + h_n_1)) * (h_n * (h_n + h_n_1)) / (h_n_1 * (h_n_1 + h_n_2))) / 2
            temp2 = ((1 - h_n / (3 * (h_n + h_n_1))) / 2 + (1 - h_n / (2 * (h_n + h_n_1))) * h_n / (
                6 * (h_n + h_n_1 + h_n_2))) * (h_n * (h_n + h_n_1) * (h_n + h_n_1 + h_n_2)) / (
                h_n_1 * (h_n_1 + h_n_2) * (h_n_1 + h_n_2 + h_n_3))
            ratio = h_n_1 * (h_n_1 + h_n_2) / (h_n_2 * (h_n_2 + h_n_3))
            coeff1 = (2 + (h_n / h_n_1)) / 2 + temp1 + temp2
            coeff2 = -(h_n / h_n_1) / 2 - (1 + h_n_1 / h_n_2) * temp1 - (1 + (h_n_1 / h_n_2) + ratio) * temp2
            coeff3 = temp1 * h_n_1 / h_n_2 + ((h_n_1 / h_n_2) + ratio * (1 + h_n_2 / h_n_3)) * temp2
            coeff4 = -temp2 * ratio * h_n_1 / h_n_2
            x_next = x_cur + (t_next - t_cur) * (coeff1 * d_cur + coeff2 * buffer_model[-1]
                                                 + coeff3 * buffer_model[-2] + coeff4 * buffer_model[-3])
        buffer_model = (buffer_model + [d_cur])[-(max_order - 1):]
    return x_next


def deis_coefficients(sigmas, max_order, n=10000):
    """get_deis_coeff_list(deis_mode='tab'): its integrand -0.5 dlog(alpha)/dt / sqrt(alpha (1 - alpha)) by autograd."""
    eps_s, sigma_min, sigma_max = 1e-3, 0.002, 80.0
    beta_d = 2 * (np.log(sigma_min**2 + 1) / eps_s - np.log(sigma_max**2 + 1)) / (eps_s - 1)
    beta_min = np.log(sigma_max**2 + 1) - 0.5 * beta_d
    t_steps = ((beta_min**2 + 2 * beta_d * (sigmas**2 + 1).log()).sqrt() - beta_min) / beta_d
    beta_0, beta_1 = beta_min, beta_d + beta_min
    coefficients = []
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        order = min(i + 1, max_order)
        if order == 1:
            coefficients.append([])
            continue
        taus = torch.linspace(float(t_cur), float(t_next), n, dtype=torch.float64, requires_grad=True)
        alpha = torch.exp(-0.5 * taus**2 * (beta_1 - beta_0) - taus * beta_0)
        (grad,) = torch.autograd.grad(alpha.log().sum(), taus)
        integrand = (-0.5 * grad / torch.sqrt(alpha * (1 - alpha))).detach()
        taus = taus.detach()
        prev_t = t_steps[[i - k for k in range(order)]]
        row = []
        for j in range(order):
            poly = torch.ones_like(taus)
            for k in range(order):
                if k != j:
                    poly = poly * (taus - prev_t[k]) / (prev_t[j] - prev_t[k])
            row.append(torch.sum(integrand * poly) * (t_next - t_cur) / n)
        coefficients.append(row)
    return coefficients


def comfyui_deis(model, x, sigmas, max_order=3):
    coefficients = deis_coefficients(sigmas, max_order)
    buffer_model = []
    for i in range(len(sigmas) - 1):
        denoised = call(model, x, sigmas[i])
        d_cur = (x - denoised) / sigmas[i]
        order = 1 if sigmas[i + 1] <= 0 else min(max_order, i + 1)
        if order == 1:
            x_next = x + (sigmas[i + 1] - sigmas[i]) * d_cur
        else:
            x_next = x + coefficients[i][0] * d_cur + sum(
                c * d for c, d in zip(coefficients[i][1:], reversed(buffer_model[-(order - 1):])))
        buffer_model = (buffer_model + [d_cur])[-(max_order - 1):]
        x = x_next
    return x


def comfyui_unipc(model, x, sigmas, variant):
    """sample_unipc: UniPC in the variance-preserving state of SigmaConvert, a final sigma 0 replaced by 0.001."""
    timesteps = sigmas.clone()
    if sigmas[-1] == 0:
        timesteps[-1] = 0.001

    def log_alpha(s):
        return 0.5 * torch.log(1 / ((s * s) + 1))

    def std(s):
        return torch.sqrt(1.0 - torch.exp(2.0 * log_alpha(s)))

    def lam(s):
        return log_alpha(s) - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha(s)))

    def data_prediction(x_vp, s):
        x_in = x_vp * ((s**2 + 1.0) ** 0.5)
        eps = (x_in - call(model, x_in, s)) / s
        return (x_vp - std(s) * eps) / torch.exp(log_alpha(s))

    def update(x, model_prev_list, t_prev_list, t, order, use_corrector):
        t_prev_0, model_prev_0 = t_prev_list[-1], model_prev_list[-1]
        h = lam(t) - lam(t_prev_0)
        rks, d1s = [], []
        for i in range(1, order):
            rk = (lam(t_prev_list[-(i + 1)]) - lam(t_prev_0)) / h
            rks.append(rk)
            d1s.append((model_prev_list[-(i + 1)] - model_prev_0) / rk)
        rks = torch.tensor([float(r) for r in rks] + [1.0], dtype=torch.float64)
        hh = -h
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial_i = 1
        b_h = hh if variant == "bh1" else torch.expm1(hh)
        rows, b = [], []
        for i in range(1, order + 1):
            rows.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial_i / b_h)
            factorial_i *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial_i
        big_r, b = torch.stack(rows), torch.tensor([float(v) for v in b], dtype=torch.float64)
        alpha_t = torch.exp(log_alpha(t))
        x_t_ = std(t) / std(t_prev_0) * x - alpha_t * h_phi_1 * model_prev_0
        pred_res = 0
        if d1s:
            rhos_p = torch.tensor([0.5], dtype=torch.float64) if order == 2 else torch.linalg.solve(
                big_r[:-1, :-1], b[:-1])
            pred_res = sum(r * d for r, d in zip(rhos_p, d1s))
        x_t = x_t_ - alpha_t * b_h * pred_res
        model_t = None
        if use_corrector:
            rhos_c = torch.tensor([0.5], dtype=torch.float64) if order == 1 else torch.linalg.solve(big_r, b)
            model_t = data_prediction(x_t, t)
            corr_res = sum(r * d for r, d in zip(rhos_c[:-1], d1s)) if d1s else 0
            x_t = x_t_ - alpha_t * b_h * (corr_res + rhos_c[-1] * (model_t - model_prev_0))
        return x_t, model_t

    x = x / torch.sqrt(1.0 + timesteps[0] ** 2.0)
    steps, order = len(timesteps) - 1, min(3, len(timesteps) - 2)
    for step_index in range(steps):
        if step_index == 0:
            model_prev_list, t_prev_list = [data_prediction(x, timesteps[0])], [timesteps[0]]
        elif step_index < order:
            x, model_x = update(x, model_prev_list, t_prev_list, timesteps[step_index], step_index, True)
            model_prev_list.append(model_x)
            t_prev_list.append(timesteps[step_index])
        else:
            for step in range(step_index, step_index + 1 + int(step_index == steps - 1)):
                step_order = min(order, steps + 1 - step)
                x, model_x = update(x, model_prev_list, t_prev_list, timesteps[step], step_order, step != steps)
                model_prev_list, t_prev_list = model_prev_list[1:] + [None], t_prev_list[1:] + [timesteps[step]]
                if step < steps:
                    model_prev_list[-1] = model_x
    return x / torch.exp(log_alpha(timesteps[-1]))


REFERENCES = {
    "ipndm_v": comfyui_ipndm_v,
    "deis": comfyui_deis,
    "uni_pc": lambda model, x, sigmas: comfyui_unipc(model, x, sigmas, "bh1"),
    "uni_pc_bh2": lambda model, x, sigmas: comfyui_unipc(model, x, sigmas, "bh2"),
}


@pytest.mark.parametrize("steps", [2, 5, 10])
@pytest.mark.parametrize("name", REFERENCES)
def test_sampler_gives_comfyuis_numbers(name, steps, mixture):
    sigmas = normal(steps)
    x = start(float(sigmas[0]))
    ours = SAMPLERS[name](mixture, x, sigmas, {"seed": 0}, disable=True)
    expected = REFERENCES[name](mixture, x, sigmas)
    assert rms(ours - expected) < 1e-10, rms(ours - expected)


def test_uni_pc_with_one_step_returns_its_input_rescaled_as_comfyui_does(mixture):
    """ComfyUI's order min(3, steps - 1) is 0 for one step: no update, the VP state read back at sigma 0.001."""
    sigmas = normal(1)
    x = start(float(sigmas[0]))
    expected = comfyui_unipc(mixture, x, sigmas, "bh1")
    torch.testing.assert_close(SAMPLERS["uni_pc"](mixture, x, sigmas, disable=True), expected, rtol=0, atol=1e-12)


def test_ipndm_v_exact_is_the_more_accurate_variant_at_fine_steps(mixture):
    """ComfyUI's order-4 iPNDM-v coefficients err more than the exact ones at 40 normal steps (exact ODE reference)."""
    from sigmagraph.nodes.sampling.analytic import probability_flow_solution

    sigmas = normal(40)
    x = start(float(sigmas[0]))
    exact = probability_flow_solution(mixture, x, float(sigmas[0]), float(sigmas[-2]), steps=400)
    errors = {name: rms(SAMPLERS[name](mixture, x, sigmas[:-1], disable=True) - exact)
              for name in ("ipndm_v", "ipndm_v_exact")}
    assert errors["ipndm_v_exact"] < errors["ipndm_v"] / 2, errors
