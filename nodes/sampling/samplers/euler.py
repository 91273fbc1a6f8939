"""The Euler / Heun family on the probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma
(Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
arXiv:2206.00364), with churn, ancestral and CFG++ variants.

On a flow model (x = (1 - sigma) x0 + sigma n) the ODE steps read the same, and the ancestral
samplers take ComfyUI's flow forms: euler_ancestral and dpm_2_ancestral its rectified-flow split
(`common.rf_ancestral_split`), the CFG++ samplers the k-diffusion split of the state x / alpha
(`common.scaled_ancestral_split`), as ComfyUI's euler_ancestral_cfg_pp does; so at CFG 1
euler_ancestral_cfg_pp is euler_ancestral on eps / v models, but not on flow models.

A second-order step to sigma = 0 would need the slope at 0, so those samplers end with one Euler
step. Churn (s_churn, s_tmin, s_tmax, s_noise) and ancestral noise are drawn from
`noise_sampler`, by default the seeded CPU Gaussian noise of `common.noise_sampler_or_default`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .common import (AncestralStep, Callback, Denoise, Denoiser, Frame, Predictor, Sampler, ancestral_loop,
                     ancestral_split, bind_denoiser, churn, first_order_ancestral_step, frame_of, lam_of,
                     noise_sampler_or_default, notify, scaled_ancestral_split, scaled_first_order_step, steps, to_d)
from .dpm_solver import dpm_solver_step, eps_prediction
from ..noise import NoiseSampler

INF = float("inf")
# (denoise, sigmas, i, x at sigma_hat, sigma_hat, D(x, sigma_hat)) -> x at sigmas[i + 1]
ChurnedStep = Callable[[Denoise, Tensor, int, Tensor, Tensor, Tensor], Tensor]


def _churned(step: ChurnedStep, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
             callback: Callback | None, disable: bool | None, s_churn: float, s_tmin: float, s_tmax: float,
             s_noise: float, noise_sampler: NoiseSampler | None) -> Tensor:
    """Karras et al.'s Algorithm 2 loop: churn to sigma_hat, evaluate the model there, take `step`."""
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    for i in steps(len(sigmas) - 1, disable):
        x, sigma_hat = churn(x, sigmas[i], len(sigmas) - 1, noise_sampler, s_churn, s_tmin, s_tmax, s_noise)
        denoised = denoise(x, sigma_hat)
        notify(callback, i, x, sigmas[i], sigma_hat, denoised)
        x = step(denoise, sigmas, i, x, sigma_hat, denoised)
    return x


def _euler_step(denoise: Denoise, sigmas: Tensor, i: int, x: Tensor, sigma_hat: Tensor, denoised: Tensor) -> Tensor:
    return x + to_d(x, sigma_hat, denoised) * (sigmas[i + 1] - sigma_hat)


def _heun_step(denoise: Denoise, sigmas: Tensor, i: int, x: Tensor, sigma_hat: Tensor, denoised: Tensor) -> Tensor:
    """The trapezoid of the slopes at sigma_hat and at the Euler prediction; Euler to sigma = 0."""
    d = to_d(x, sigma_hat, denoised)
    dt = sigmas[i + 1] - sigma_hat
    x_euler = x + d * dt
    if sigmas[i + 1] == 0:
        return x_euler
    d_next = to_d(x_euler, sigmas[i + 1], denoise(x_euler, sigmas[i + 1]))
    return x + (d + d_next) / 2 * dt


def _heunpp2_step(denoise: Denoise, sigmas: Tensor, i: int, x: Tensor, sigma_hat: Tensor, denoised: Tensor) -> Tensor:
    """Probes Euler predictions up to two sigmas ahead and weights their slopes by sigma_j / (k sigma_0)."""
    last = len(sigmas) - 1
    slopes = [to_d(x, sigma_hat, denoised)]
    probe, sigma_probe = x, sigma_hat
    # Probe one sigma ahead on the second-to-last step, two ahead before that.
    for j in range(i + 1, min(i + 3, last)):
        probe = probe + slopes[-1] * (sigmas[j] - sigma_probe)
        sigma_probe = sigmas[j]
        slopes.append(to_d(probe, sigma_probe, denoise(probe, sigma_probe)))
    weights = [sigmas[j] / (len(slopes) * sigmas[0]) for j in range(i + 1, i + len(slopes))]
    d = (1 - sum(weights)) * slopes[0] + sum(w * s for w, s in zip(weights, slopes[1:]))
    return x + d * (sigmas[i + 1] - sigma_hat)


def _dpm_2_step(denoise: Denoise, sigmas: Tensor, i: int, x: Tensor, sigma_hat: Tensor, denoised: Tensor) -> Tensor:
    return _dpm_2(denoise, x, sigma_hat, sigmas[i + 1], denoised)


def _dpm_2(denoise: Denoise, x: Tensor, sigma: Tensor, sigma_next: Tensor,
           denoised: Tensor) -> Tensor:
    """A DPM-Solver-2 step (r1 = 1/2) from sigma to sigma_next given D(x, sigma); Euler when sigma_next is 0."""
    d = to_d(x, sigma, denoised)
    if sigma_next == 0:
        return x + d * (sigma_next - sigma)
    return dpm_solver_step(eps_prediction(denoise), x, lam_of(sigma), lam_of(sigma_next), d, order=2)[0]


@torch.no_grad()
def euler(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
          callback: Callback | None = None, disable: bool | None = None, s_churn: float = 0.0,
          s_tmin: float = 0.0, s_tmax: float = INF, s_noise: float = 1.0,
          noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Euler's method, with optional churn (Karras et al. 2022, Algorithm 2 with Euler steps). First order; NFE N."""
    return _churned(_euler_step, model, x, sigmas, extra_args, callback, disable, s_churn, s_tmin, s_tmax, s_noise,
                    noise_sampler)


@torch.no_grad()
def heun(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None, s_churn: float = 0.0,
         s_tmin: float = 0.0, s_tmax: float = INF, s_noise: float = 1.0,
         noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Heun's method (Karras et al. 2022, Algorithm 1; with s_churn > 0, Algorithm 2). Second order; NFE 2N - 1."""
    return _churned(_heun_step, model, x, sigmas, extra_args, callback, disable, s_churn, s_tmin, s_tmax, s_noise,
                    noise_sampler)


@torch.no_grad()
def edm_stochastic(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                   callback: Callback | None = None, disable: bool | None = None, s_churn: float = 40.0,
                   s_tmin: float = 0.05, s_tmax: float = 50.0, s_noise: float = 1.003,
                   noise_sampler: NoiseSampler | None = None) -> Tensor:
    """The EDM stochastic sampler (Karras et al. 2022, Algorithm 2; diffusers' stochastic_karras_ve).

    Heun steps after raising each noise level in [s_tmin, s_tmax] by gamma = min(s_churn / N,
    sqrt(2) - 1) with fresh noise scaled by s_noise: `heun` with churn. The defaults are the
    paper's ImageNet-64 settings (NVlabs/edm README: S_churn 40, S_min 0.05, S_max 50,
    S_noise 1.003); tune them per model. NFE 2N - 1.
    """
    return _churned(_heun_step, model, x, sigmas, extra_args, callback, disable, s_churn, s_tmin, s_tmax, s_noise,
                    noise_sampler)


@torch.no_grad()
def heunpp2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, s_churn: float = 0.0,
            s_tmin: float = 0.0, s_tmax: float = INF, s_noise: float = 1.0,
            noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Heun++ (Carzit's sd-webui-samplers-scheduler): a weighted three-slope Heun variant.

    Each step probes Euler predictions at the next two sigmas and averages the three slopes with
    weights sigma_{i+1} / (3 sigma_0) and sigma_{i+2} / (3 sigma_0) for the probes (the rest on
    the current slope); the second-to-last step uses two slopes with weight sigma_{i+1} /
    (2 sigma_0), the last step is Euler. A heuristic with no paper: the weights do not match the
    Taylor conditions, so it is first-order. NFE: 3N - 3 for N >= 2.
    """
    return _churned(_heunpp2_step, model, x, sigmas, extra_args, callback, disable, s_churn, s_tmin, s_tmax,
                    s_noise, noise_sampler)


@torch.no_grad()
def dpm_2(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
          callback: Callback | None = None, disable: bool | None = None, s_churn: float = 0.0,
          s_tmin: float = 0.0, s_tmax: float = INF, s_noise: float = 1.0,
          noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DPM-Solver-2 steps (Lu et al. 2022) with Karras et al.'s churn: k-diffusion's dpm_2. Second order; NFE 2N - 1.

    In sigma space the step is an Euler half step to the geometric mean of sigma_hat and
    sigma_next, then the full step with the slope found there; the step to sigma = 0 is Euler.
    """
    return _churned(_dpm_2_step, model, x, sigmas, extra_args, callback, disable, s_churn, s_tmin, s_tmax, s_noise,
                    noise_sampler)


def _dpm_2_ancestral_step(predict: Predictor, x: Tensor, sigma: Tensor, sigma_down: Tensor, denoised: Tensor,
                          renoise_from: Tensor) -> Tensor:
    return _dpm_2(lambda x, sigma: predict(x, sigma)[0], x, sigma, sigma_down, denoised)


@torch.no_grad()
def dpm_2_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                    s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Ancestral sampling with DPM-Solver-2 steps (k-diffusion's dpm_2_ancestral). NFE 2N - 1.

    Each step goes deterministically to sigma_down, then adds fresh noise of std sigma_up; on a
    flow model with ComfyUI's rectified-flow split (its sample_dpm_2_ancestral_RF).
    """
    return ancestral_loop(_dpm_2_ancestral_step, model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, split=ancestral_split(frame_of(extra_args)))


@torch.no_grad()
def euler_ancestral(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                    callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                    s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Ancestral sampling with Euler steps (k-diffusion; eta = 1 is DDPM's ancestral sampler in sigma space). NFE N.

    On a flow model, ComfyUI's sample_euler_ancestral_RF: Euler to sigma_down = sigma_next (1 +
    (sigma_next / sigma - 1) eta), rescaled by alpha_next / alpha_down, renoised to sigma_next.
    """
    return ancestral_loop(first_order_ancestral_step, model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, split=ancestral_split(frame_of(extra_args)))


def _scaled_first_order(frame: Frame) -> AncestralStep:
    """Euler of the state x / alpha along U's noise direction, to the level sigma_down of x / alpha (CFG++)."""

    def step(predict: Predictor, x: Tensor, sigma: Tensor, sigma_down: Tensor, denoised: Tensor,
             renoise_from: Tensor) -> Tensor:
        return scaled_first_order_step(frame, x, sigma, sigma_down, denoised, renoise_from)

    return step


def _euler_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                            callback: Callback | None, disable: bool | None, eta: float, s_noise: float,
                            noise_sampler: NoiseSampler | None) -> Tensor:
    """ComfyUI's sample_euler_ancestral_cfg_pp: alpha_next (D + sigma_down (x - alpha U) / sigma) + sigma_up n."""
    frame = frame_of(extra_args)
    return ancestral_loop(_scaled_first_order(frame), model, x, sigmas, extra_args, callback, disable, eta, s_noise,
                          noise_sampler, cfg_pp=True, split=scaled_ancestral_split(frame))


@torch.no_grad()
def euler_ancestral_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                           callback: Callback | None = None, disable: bool | None = None, eta: float = 1.0,
                           s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Euler ancestral with CFG++ (Chung et al. 2024, arXiv:2406.08070): renoises along the unconditional prediction.

    The guided x0 is kept, but the noise direction re-added after it is (x - x0_uncond) / sigma,
    which keeps the sample on the data manifold at small guidance scales. Without a guider it
    is euler_ancestral, except on flow models, where ComfyUI splits the step of x / alpha in
    k-diffusion's way instead of its rectified-flow split. NFE N (one guided call, cond and
    uncond batched, per step).
    """
    return _euler_ancestral_cfg_pp(model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler)


@torch.no_grad()
def euler_cfg_pp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None) -> Tensor:
    """Euler (DDIM) with CFG++ (Chung et al. 2024, Algorithm 1): x_next = alpha_next D + sigma_next eps_U. NFE N."""
    return _euler_ancestral_cfg_pp(model, x, sigmas, extra_args, callback, disable, eta=0.0, s_noise=0.0,
                                   noise_sampler=None)


SAMPLERS: dict[str, Sampler] = {
    "euler": euler,
    "euler_cfg_pp": euler_cfg_pp,
    "euler_ancestral": euler_ancestral,
    "euler_ancestral_cfg_pp": euler_ancestral_cfg_pp,
    "heun": heun,
    "heunpp2": heunpp2,
    "dpm_2": dpm_2,
    "dpm_2_ancestral": dpm_2_ancestral,
    "edm_stochastic": edm_stochastic,
}
