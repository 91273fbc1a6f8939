"""RePaint (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic Models").

Inpainting with an unconditional model: each reverse step is followed, at the scheduled points,
by jumps back up the noise levels (forward noising) and a new descent, so that the generated
region has time to agree with the known one. The known region is re-noised from the source
latent at every model call by the inpainting path (`sample.InpaintDenoiser`, driven by the
LATENT's noise mask); this module gives the time-jump schedule and the sampler that walks it.

The reverse step is the DDPM posterior step of the paper's Algorithm 1 in sigma form (Euler
ancestral with eta 1: x0 + (x - x0) s'^2/s^2 plus noise of std s' sqrt(s^2 - s'^2)/s), and the
forward jump from s' back to s adds noise of std sqrt(s^2 - s'^2): the variance-exploding form
of q(x_t | x_{t-1}), so it works on any schedule.
"""

from __future__ import annotations

from torch import Tensor

from .noise import NoiseSampler
from .samplers.common import (Callback, Denoiser, add_noise, ancestral_step, bind_denoiser, first_order_step,
                              noise_sampler_or_default, notify)


def jump_schedule(steps: int, jump_length: int = 10, jump_n_sample: int = 10) -> list[int]:
    """The indices into the sigmas a RePaint run visits, from 0 (sigma_max) to `steps` (the final sigma).

    The paper's schedule (its repository's `get_schedule_jump`, diffusers' `RePaintScheduler.set_timesteps`):
    counting steps t from the clean end, after the step that reaches t = j for every j in
    0, jump_length, 2 jump_length, ... below steps - jump_length, the run jumps back up
    `jump_length` levels and descends again, jump_n_sample - 1 times. Consecutive indices differ by
    one: +1 is a reverse (denoising) step, -1 a forward (noising) one.
    """
    jumps = {j: jump_n_sample - 1 for j in range(0, steps - jump_length, jump_length)}
    t = steps
    levels = [t]
    while t >= 1:
        t -= 1
        levels.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                levels.append(t)
    return [steps - t for t in levels]


def repaint(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
            callback: Callback | None = None, disable: bool | None = None, jump_length: int = 10,
            jump_n_sample: int = 10, s_noise: float = 1.0, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """RePaint's resampling along `jump_schedule`: DDPM steps down, forward noising back up (Algorithm 1).

    With jump_n_sample 1 it is Euler ancestral (eta 1). Steps are reported with the index of the
    sigma they start from, which goes back up after each jump.
    """
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    path = jump_schedule(len(sigmas) - 1, jump_length, jump_n_sample)
    for i, j in zip(path[:-1], path[1:]):
        sigma, sigma_next = sigmas[i], sigmas[j]
        if j < i:  # a jump back: forward noising from sigma to the higher sigma_next
            x = add_noise(x, noise_sampler, sigma, sigma_next, s_noise * (sigma_next**2 - sigma**2) ** 0.5)
            continue
        denoised = denoise(x, sigma)
        notify(callback, i, x, sigma, sigma, denoised)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next)
        x = first_order_step(x, sigma, sigma_down, denoised)
        x = add_noise(x, noise_sampler, sigma, sigma_next, s_noise * sigma_up)
    return x
