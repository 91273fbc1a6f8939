"""DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
Probabilistic Models", arXiv:2211.01095): exponential integrators in lambda = -log sigma that
expand the data prediction x0 instead of the noise, which keeps guided sampling stable; plus the
stochastic variants k-diffusion made of them (ancestral 2S, dpmpp_sde, and the reverse-SDE
multistep solvers: Lu et al.'s SDE-DPM-Solver++(2M), diffusers' "sde-dpmsolver++", with an eta
noise weight) and CFG++ variants (Chung et al. 2024).

On flow models they take ComfyUI's forms: dpmpp_2s_ancestral its rectified-flow split and a
midpoint in the flow's half log-SNR log((1 - sigma) / sigma); the SDE samplers run in that half
log-SNR with every x0 term scaled by alpha = 1 - sigma (the same solvers applied to x / alpha),
starting from sigma 1 moved to `common.finite_snr_sigmas`.

The SDE samplers draw from a Brownian tree seeded from extra_args["seed"] (see
`common.brownian_or_default`), so their images converge as steps grow. The tree always lives on
the CPU, so that the same seed gives the same image on any device; the `*_gpu` names are aliases
kept so that workflows naming them load (docs/parity.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import (AncestralStep, Callback, Denoiser, Frame, Predictor, Sampler, add_noise, ancestral_loop,
                     ancestral_split, bind_denoiser, bind_predictor, brownian_or_default, finite_snr_sigmas,
                     first_order_step, frame_of, lam_of, notify, scaled_ancestral_split, scaled_first_order_step,
                     step_loop, steps)
from ..noise import NoiseSampler

# ComfyUI's midpoint of a 2S step from a flow model's sigma 1, whose half log-SNR is infinite.
FLOW_MIDPOINT_FROM_ONE = 0.9999


def _midpoint(frame: Frame, sigma: Tensor, sigma_down: Tensor) -> Tensor:
    """The sigma halfway between sigma and sigma_down in half log-SNR (r = 1/2)."""
    if frame.flow and sigma == 1:
        return torch.full_like(sigma, FLOW_MIDPOINT_FROM_ONE)
    return frame.sigma_at((frame.half_log_snr(sigma) + frame.half_log_snr(sigma_down)) / 2)


def _dpmpp_2s_step(frame: Frame) -> AncestralStep:
    """DPM-Solver++(2S) to sigma_down through the midpoint; CFG++ renoises with U at both stages (ComfyUI).

    Both stages are Euler steps along U's noise direction, the second with the midpoint's U; the
    guidance D - U of the first call is added back, scaled by alpha_down (ComfyUI adds
    alpha_next (D - U) after the rescaling). Without CFG++, U = D and that term is zero.
    """

    def step(predict: Predictor, x: Tensor, sigma: Tensor, sigma_down: Tensor, denoised: Tensor,
             renoise_from: Tensor) -> Tensor:
        x_down = renoise_from
        if sigma_down > 0:
            sigma_mid = _midpoint(frame, sigma, sigma_down)
            _, renoise_mid = predict(first_order_step(x, sigma, sigma_mid, renoise_from), sigma_mid)
            x_down = first_order_step(x, sigma, sigma_down, renoise_mid)
        return x_down + frame.alpha(sigma_down) * (denoised - renoise_from)

    return step


@torch.no_grad()
def dpmpp_2s_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                       callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                       s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Ancestral sampling with DPM-Solver++(2S) steps (Lu et al. 2022, Algorithm 1; k-diffusion). NFE 2N - 1.

    Second order at eta = 0. On a flow model, ComfyUI's sample_dpmpp_2s_ancestral_RF.
    """
    frame = frame_of(extra_args)
    return ancestral_loop(_dpmpp_2s_step(frame), model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, split=ancestral_split(frame))


@torch.no_grad()
def dpmpp_2s_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                              callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                              s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver++(2S) ancestral with CFG++ (Chung et al. 2024), ComfyUI's form.

    Both stages step from U, the second with the midpoint's U, and the first call's guidance
    D - U is added back at the end (times alpha_next on a flow model). Without guidance it is
    dpmpp_2s_ancestral. NFE 2N - 1.
    """
    frame = frame_of(extra_args)
    return ancestral_loop(_dpmpp_2s_step(frame), model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, cfg_pp=True, split=ancestral_split(frame))


def _ancestral_first_order(frame: Frame, x: Tensor, sigma: Tensor, sigma_next: Tensor, denoised: Tensor, eta: float,
                           s_noise: float, noise_sampler: NoiseSampler) -> Tensor:
    """DPM-Solver++(1) of x / alpha to sigma_down, then noise of std sigma_up for the increment sigma -> sigma_next."""
    sigma_down, sigma_up, scale = scaled_ancestral_split(frame)(sigma, sigma_next, eta)
    x = scaled_first_order_step(frame, x, sigma, sigma_down, denoised, denoised) * scale
    return add_noise(x, noise_sampler, sigma, sigma_next, s_noise * sigma_up)


@torch.no_grad()
def dpmpp_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
              callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
              s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None, r: float = 0.5) -> Tensor:
    """DPM-Solver++ stochastic (k-diffusion's dpmpp_sde): two-stage DPM-Solver++ with Brownian-tree noise.

    Stage one takes an ancestral first-order step to the intermediate sigma at lambda + r h;
    stage two steps from x with x0 = (1 - 1/(2r)) D + 1/(2r) D_mid, again ancestrally. Both noise
    increments come from one Brownian path, so results converge as steps grow. At eta = 0 it is
    DPM-Solver++(2S) with intermediate point r (second order; with r = 1/2 exactly
    dpmpp_2s_ancestral at eta = 0). NFE 2N - 1.
    """
    if len(sigmas) <= 1:
        return x
    noise_sampler = brownian_or_default(noise_sampler, x, sigmas, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    frame, sigmas = frame_of(extra_args), finite_snr_sigmas(sigmas, extra_args)

    def step(i: int, x: Tensor, denoised: Tensor) -> Tensor:
        lam, lam_next = frame.half_log_snr(sigmas[i]), frame.half_log_snr(sigmas[i + 1])
        sigma_mid = frame.sigma_at(lam + r * (lam_next - lam))
        x_mid = _ancestral_first_order(frame, x, sigmas[i], sigma_mid, denoised, eta, s_noise, noise_sampler)
        denoised_mid = denoise(x_mid, sigma_mid)
        combined = (1 - 1 / (2 * r)) * denoised + 1 / (2 * r) * denoised_mid
        return _ancestral_first_order(frame, x, sigmas[i], sigmas[i + 1], combined, eta, s_noise, noise_sampler)

    return step_loop(step, denoise, x, sigmas, callback, disable)


def _dpmpp_2m(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None, callback: Callback | None,
              disable: bool | None, cfg_pp: bool) -> Tensor:
    """DPM-Solver++(2M) with the renoising direction taken from the unconditional x0 for CFG++."""
    predict = bind_predictor(model, x, extra_args, cfg_pp)
    previous = None  # the renoising x0 of the previous step
    for i in steps(len(sigmas) - 1, disable):
        denoised, renoise_from = predict(x, sigmas[i])
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        x_next = first_order_step(x, sigmas[i], sigmas[i + 1], denoised, renoise_from)
        if previous is not None and sigmas[i + 1] > 0:
            h = lam_of(sigmas[i + 1]) - lam_of(sigmas[i])
            r = (lam_of(sigmas[i]) - lam_of(sigmas[i - 1])) / h
            # The linear term of x0 in lambda, from the last two steps (Lu et al. 2022, Algorithm 2)
            x_next = x_next - torch.expm1(-h) / (2 * r) * (denoised - previous)
        x, previous = x_next, renoise_from
    return x


@torch.no_grad()
def dpmpp_2m(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
             callback: Callback | None = None, disable: bool | None = None) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): second-order multistep. NFE N.

    The first step, and a step to sigma = 0, are first order (DPM-Solver++(1)).
    """
    return _dpmpp_2m(model, x, sigmas, extra_args, callback, disable, cfg_pp=False)


@torch.no_grad()
def dpmpp_2m_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, disable: bool | None = None) -> Tensor:
    """DPM-Solver++(2M) with CFG++ (Chung et al. 2024). NFE N.

    Renoises with the unconditional x0 and takes the multistep difference against the previous
    unconditional x0; without a guider it is dpmpp_2m.
    """
    return _dpmpp_2m(model, x, sigmas, extra_args, callback, disable, cfg_pp=True)


def _dpmpp_multistep_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                         callback: Callback | None, disable: bool | None, eta: float, s_noise: float,
                         noise_sampler: NoiseSampler | None, order: int, solver_type: str) -> Tensor:
    """DPM-Solver++(2M / 3M) SDE: the multistep data-prediction solver of the reverse SDE with noise weight eta.

    The update integrates the linear part of the SDE exactly (the factor e^{-eta h} and noise
    std sigma_next sqrt(1 - e^{-2 eta h})) and x0 as a polynomial in lambda through the last
    `order` predictions. `solver_type` picks the second-order correction when only one past
    prediction exists: "midpoint" (k-diffusion's default) or "heun" (the phi_2 weight).
    """
    if solver_type not in ("midpoint", "heun"):
        raise ValueError("solver_type must be 'midpoint' or 'heun'")
    if len(sigmas) <= 1:
        return x
    noise_sampler = brownian_or_default(noise_sampler, x, sigmas, extra_args)
    frame, sigmas = frame_of(extra_args), finite_snr_sigmas(sigmas, extra_args)
    past: list[tuple[Tensor, Tensor]] = []  # (x0 prediction, step size in lambda that followed it), newest first

    def step(i: int, x: Tensor, denoised: Tensor) -> Tensor:
        nonlocal past
        h = frame.half_log_snr(sigmas[i + 1]) - frame.half_log_snr(sigmas[i])
        h_eta = h * (eta + 1)
        x0_term = -torch.expm1(-h_eta) * denoised
        phi_2 = torch.expm1(-h_eta) / h_eta + 1
        if order == 3 and len(past) >= 2:
            (denoised_1, h_1), (denoised_2, h_2) = past[0], past[1]
            r0, r1 = h_1 / h, h_2 / h
            d1_0, d1_1 = (denoised - denoised_1) / r0, (denoised_1 - denoised_2) / r1
            d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            phi_3 = phi_2 / h_eta - 0.5
            x0_term = x0_term + phi_2 * d1 - phi_3 * d2
        elif past:
            denoised_1, h_1 = past[0]
            weight = -0.5 * torch.expm1(-h_eta) if solver_type == "midpoint" else phi_2
            x0_term = x0_term + weight * (denoised - denoised_1) * (h / h_1)
        x = sigmas[i + 1] / sigmas[i] * torch.exp(-eta * h) * x + frame.alpha(sigmas[i + 1]) * x0_term
        past = [(denoised, h)] + past[:order - 1]
        return add_noise(x, noise_sampler, sigmas[i], sigmas[i + 1],
                         sigmas[i + 1] * (-torch.expm1(-2 * eta * h)).sqrt() * s_noise)

    return step_loop(step, bind_denoiser(model, x, extra_args), x, sigmas, callback, disable)


@torch.no_grad()
def dpmpp_2m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                 s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None,
                 solver_type: str = "midpoint") -> Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al.; k-diffusion's eta-weighted form) with Brownian-tree noise.

    At eta = 0 with the midpoint correction it is exactly dpmpp_2m; second order. NFE N.
    """
    return _dpmpp_multistep_sde(model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler,
                                order=2, solver_type=solver_type)


@torch.no_grad()
def dpmpp_2m_sde_heun(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                      callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                      s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None,
                      solver_type: str = "heun") -> Tensor:
    """DPM-Solver++(2M) SDE with the Heun-type (phi_2) second-order correction; second order at eta = 0. NFE N."""
    return _dpmpp_multistep_sde(model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler,
                                order=2, solver_type=solver_type)


@torch.no_grad()
def dpmpp_3m_sde(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                 s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver++(3M) SDE (k-diffusion): multistep in x0 through three predictions, started with 1M and 2M steps.

    At eta = 0 it is the DPM-Solver++(3M) ODE solver as the DPM-Solver reference code, k-diffusion
    and ComfyUI write it, kept so images match theirs. Despite the name it is second order: the
    second difference d2 = (d1_0 - d1_1) / (r0 + r1) ~ h^2 x0''/2 enters with weight -phi_3 ~ h/6,
    half the Taylor term's h^3 x0''/6, so a step from exact history errs by O(h^3) (the tests
    measure it), and the first-order start-up step alone would cap the global order at 2 anyway.
    Its error constant is still several times smaller than dpmpp_2m's. NFE N.
    """
    return _dpmpp_multistep_sde(model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler,
                                order=3, solver_type="heun")


SAMPLERS: dict[str, Sampler] = {
    "dpmpp_2s_ancestral": dpmpp_2s_ancestral,
    "dpmpp_2s_ancestral_cfg_pp": dpmpp_2s_ancestral_cfg_pp,
    "dpmpp_sde": dpmpp_sde,
    "dpmpp_sde_gpu": dpmpp_sde,
    "dpmpp_2m": dpmpp_2m,
    "dpmpp_2m_cfg_pp": dpmpp_2m_cfg_pp,
    "dpmpp_2m_sde": dpmpp_2m_sde,
    "dpmpp_2m_sde_gpu": dpmpp_2m_sde,
    "dpmpp_2m_sde_heun": dpmpp_2m_sde_heun,
    "dpmpp_2m_sde_heun_gpu": dpmpp_2m_sde_heun,
    "dpmpp_3m_sde": dpmpp_3m_sde,
    "dpmpp_3m_sde_gpu": dpmpp_3m_sde,
}
