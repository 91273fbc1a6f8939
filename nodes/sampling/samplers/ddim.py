"""DDIM, DDPM and LCM: the discrete-time samplers, written in sigma space.

Sigma space is k-diffusion's frame x = x0 + sigma * eps. A variance-preserving model's state
is x_vp = sqrt(alpha_bar) x with alpha_bar = 1 / (1 + sigma^2), so sigma^2 = (1 - alpha_bar) /
alpha_bar and every VP update divides through by sqrt(alpha_bar) into this frame.

DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", arXiv:2010.02502), eq. 12,
from alpha_bar_t to alpha_bar_s (sigma to sigma_next), divided by sqrt(alpha_bar_s):

    x_next = x0 + sqrt(sigma_next^2 - s^2) * eps + s * z,    eps = (x - x0) / sigma,
    s = sigma_eta / sqrt(alpha_bar_s) = eta * sigma_next * sqrt(1 - sigma_next^2 / sigma^2)

(eq. 16's sigma_t(eta): (1 - alpha_bar_s) / alpha_bar_s = sigma_next^2 and 1 - alpha_bar_t /
alpha_bar_s = (sigma^2 - sigma_next^2) alpha_bar_t). Two facts follow exactly, not approximately:

- eta = 0: x_next = x + (sigma_next - sigma) eps, Euler's method on the probability-flow ODE
  dx/dsigma = eps: deterministic DDIM.
- eta > 0: s and sqrt(sigma_next^2 - s^2) are k-diffusion's sigma_up and sigma_down, so DDIM(eta)
  is ancestral Euler with that eta; eta = 1 is DDPM's posterior q(x_next | x, x0) with variance
  beta-tilde (Ho et al. 2020).

So `ddim` and `ddpm` run ancestral Euler. On flow models `ddim` takes euler_ancestral's
rectified-flow split while `ddpm` keeps the variance-exploding one, as ComfyUI's DDPM does. For eta > 1,
where eq. 12 can ask for s > sigma_next (an imaginary sqrt(sigma_next^2 - s^2)), s is clamped to
sigma_next as in k-diffusion. On the same noise levels this equals diffusers' DDIMScheduler to
rounding; what distinguishes "DDIM" in other tools is only the schedule (`ddim_uniform` timesteps)
and the last level: alpha_bar = 1 (sigma = 0, a schedule ending in 0 here) or alpha_bar_0
(set_alpha_to_one=False: sigma_min).

Noise comes from `noise_sampler`, by default the seeded per-step Gaussian noise of
`common.noise_sampler_or_default`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .common import (Callback, Denoiser, Sampler, add_noise, ancestral_loop, bind_denoiser, first_order_ancestral_step,
                     frame_of, noise_sampler_or_default, notify, steps, ve_ancestral_split)
from .euler import euler_ancestral
from ..noise import NoiseSampler


@torch.no_grad()
def ddim(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None, eta: float = 0.0,
         noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DDIM (Song et al. 2021, eq. 12) with eta: 0 deterministic, 1 the DDPM posterior. First order; NFE N.

    In sigma space eq. 12 is exactly ancestral Euler with the same eta (see the module notes).
    """
    return euler_ancestral(model, x, sigmas, extra_args, callback, disable, eta=eta, s_noise=1.0,
                           noise_sampler=noise_sampler)


@torch.no_grad()
def ddpm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
         callback: Callback | None = None, disable: bool | None = None,
         noise_sampler: NoiseSampler | None = None) -> Tensor:
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2 with variance beta-tilde) = DDIM with eta = 1. NFE N.

    ComfyUI's DDPM knows no flow form: a flow model's sigmas go through the variance-exploding step
    too, which then does not sample the data distribution (use euler_ancestral there).
    """
    return ancestral_loop(first_order_ancestral_step, model, x, sigmas, extra_args, callback, disable, 1.0, 1.0,
                          noise_sampler, split=ve_ancestral_split)


@torch.no_grad()
def lcm(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
        callback: Callback | None = None, disable: bool | None = None,
        noise_sampler: NoiseSampler | None = None) -> Tensor:
    """Multistep latent-consistency sampling (Luo et al. 2023, Algorithm 1): predict x0, renoise to the next sigma.

    Meant for consistency models, whose x0 is a sample; with an ordinary denoiser (a posterior
    mean) it returns a blurred average instead. Renoises as the model's noise scaling does:
    x0 + sigma n, or (1 - sigma) x0 + sigma n on a flow model. NFE N.
    """
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    frame = frame_of(extra_args)
    for i in steps(len(sigmas) - 1, disable):
        denoised = denoise(x, sigmas[i])
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        x = add_noise(denoised * frame.alpha(sigmas[i + 1]), noise_sampler, sigmas[i], sigmas[i + 1], sigmas[i + 1])
    return x


SAMPLERS: dict[str, Sampler] = {"ddim": ddim, "ddpm": ddpm, "lcm": lcm}
