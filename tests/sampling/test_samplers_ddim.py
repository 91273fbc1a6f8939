"""DDIM, DDPM and LCM against references written in the VP frame of their papers and against
diffusers' DDIMScheduler on the same timesteps, with the exact mixture as the model."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from sigmagraph.nodes.sampling.analytic import GaussianMixture
from sigmagraph.nodes.sampling.samplers.ddim import ddim, ddpm, lcm

from .sampler_testkit import Recorded, karras, measured_order, noisy_start

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


def alpha_bar(sigma: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + sigma**2)


def eps_of(model: GaussianMixture, x_vp: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The exact noise prediction of a VP model whose state is x_vp = sqrt(alpha_bar) x."""
    sigma = ((1 - abar) / abar) ** 0.5
    x = x_vp / abar**0.5
    return (x - model(x, sigma.expand(x.shape[0]))) / sigma


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers_ddim_scheduler(eta, mixture):
    """Same timesteps (leading spacing, final alpha_bar 1), same noise, eps prediction: the same samples."""
    scheduler = DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=True, prediction_type="epsilon")
    scheduler.set_timesteps(12)
    scheduler.alphas_cumprod = scheduler.alphas_cumprod.double()
    scheduler.final_alpha_cumprod = scheduler.final_alpha_cumprod.double()
    timesteps = scheduler.timesteps.tolist()
    abars = [scheduler.alphas_cumprod[t] for t in timesteps] + [scheduler.final_alpha_cumprod]
    sigmas = torch.stack([((1 - a) / a) ** 0.5 for a in abars])
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    noise = Recorded(x.shape, seed=3)
    ours = ddim(mixture, x, sigmas, disable=True, eta=eta, noise_sampler=noise)

    x_vp = x * abars[0] ** 0.5
    for k, t in enumerate(timesteps):
        # Our last step (to sigma = 0) draws nothing; diffusers' std there is 0.
        variance_noise = (noise.draws[k] if k < len(noise.draws) else torch.zeros_like(x)) if eta > 0 else None
        x_vp = scheduler.step(eps_of(mixture, x_vp, abars[k]), t, x_vp, eta=eta,
                              variance_noise=variance_noise).prev_sample
    assert len(noise.draws) == (len(timesteps) - 1 if eta > 0 else 0)
    torch.testing.assert_close(ours, x_vp, rtol=0, atol=1e-12)


def run_with_recorded_noise(sampler, mixture, steps: int, seed: int):
    """(sigmas, the recorded noise, our result, alpha_bar, the start in the VP frame) of a Karras run."""
    sigmas = karras(steps)
    x = noisy_start((2, 4, 4, 4), float(sigmas[0]))
    noise = Recorded(x.shape, seed=seed)
    ours = sampler(mixture, x, sigmas, disable=True, noise_sampler=noise)
    abars = alpha_bar(sigmas)
    return sigmas, noise, ours, abars, x * abars[0] ** 0.5


def test_ddpm_is_ho_et_al_algorithm_2_with_the_posterior_variance(mixture):
    """x_prev = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sqrt(beta_tilde_t) z, in the VP frame."""
    sigmas, noise, ours, abars, x_vp = run_with_recorded_noise(ddpm, mixture, 10, seed=4)
    for k in range(len(sigmas) - 1):
        alpha = abars[k] / abars[k + 1]
        beta = 1 - alpha
        beta_tilde = (1 - abars[k + 1]) / (1 - abars[k]) * beta
        eps = eps_of(mixture, x_vp, abars[k])
        x_vp = (x_vp - beta / (1 - abars[k]) ** 0.5 * eps) / alpha**0.5
        if k < len(noise.draws):
            x_vp = x_vp + beta_tilde**0.5 * noise.draws[k]
    assert len(noise.draws) == len(sigmas) - 2
    torch.testing.assert_close(ours, x_vp, rtol=0, atol=1e-12)


def test_lcm_predicts_x0_and_renoises_in_the_vp_frame(mixture):
    """Multistep consistency sampling: x_prev = sqrt(alpha_bar_prev) x0 + sqrt(1 - alpha_bar_prev) z."""
    sigmas, noise, ours, abars, x_vp = run_with_recorded_noise(lcm, mixture, 4, seed=5)
    for k in range(len(sigmas) - 1):
        x0 = mixture(x_vp / abars[k] ** 0.5, sigmas[k].expand(2))
        x_vp = abars[k + 1] ** 0.5 * x0
        if sigmas[k + 1] > 0:
            x_vp = x_vp + (1 - abars[k + 1]) ** 0.5 * noise.draws[k]
    torch.testing.assert_close(ours, x_vp, rtol=0, atol=1e-12)


def test_deterministic_ddim_is_first_order_on_the_probability_flow_ode():
    order, *_ = measured_order(ddim, 160)
    assert abs(order - 1) < 0.4


def test_deterministic_ddim_draws_no_noise(mixture):
    x = noisy_start()
    a = ddim(mixture, x, karras(8), {"seed": 1}, disable=True)
    b = ddim(mixture, x, karras(8), {"seed": 2}, disable=True)
    assert torch.equal(a, b)
