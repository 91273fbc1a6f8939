"""The vocabulary every sampler shares: types, derivative, ancestral split, churn, noise defaults.

A sampler is a function `sampler(model, x, sigmas, extra_args=None, callback=None, disable=None,
**params) -> Tensor` where `model(x, sigma, **extra_args)` returns the denoised estimate x0 and
`sigma` is a tensor of shape [batch]. Samplers hold no state between runs; they report every
step through `callback` (which is also where the engine raises its interrupt), and draw noise
only from explicit noise samplers (see `..noise`).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm, trange

from ..noise import BrownianTreeNoiseSampler, NoiseSampler, ancestral_noise_sampler

Denoiser = Callable[..., Tensor]
Callback = Callable[[dict[str, Any]], None]
# (model, x, sigma [batch], extra_args) -> (guided x0, the x0 whose noise direction renoises x)
Prediction = Callable[[Denoiser, Tensor, Tensor, dict], tuple[Tensor, Tensor]]


class Sampler(Protocol):
    def __call__(self, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, **params: Any) -> Tensor: ...


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Appends trailing singleton dimensions so a per-batch value broadcasts against x."""
    return v.reshape(*v.shape, *([1] * (ndim - v.ndim)))


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - x0) / sigma (Karras et al. 2022, eq. 4)."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """Splits a step into a deterministic step to sigma_down plus fresh noise of std sigma_up."""
    if not eta or sigma_to == 0:
        return sigma_to, torch.zeros_like(sigma_to)
    sigma_up = torch.minimum(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def first_order_step(x: Tensor, sigma: Tensor, sigma_next: Tensor, denoised: Tensor,
                     renoise_from: Tensor | None = None) -> Tensor:
    """Euler = DDIM = DPM-Solver++(1) from sigma to sigma_next: x0 plus the noise estimate rescaled to sigma_next.

    `renoise_from` is the x0 whose noise estimate (x - x0) / sigma is carried: the denoised
    estimate itself unless a CFG++ sampler passes the unconditional one.
    """
    return denoised + to_d(x, sigma, denoised if renoise_from is None else renoise_from) * sigma_next


def add_noise(x: Tensor, noise_sampler: NoiseSampler, sigma: Tensor, sigma_next: Tensor, std: Tensor | float) -> Tensor:
    """x plus the noise drawn for the step sigma -> sigma_next scaled to `std`; no draw when std is 0."""
    if not std > 0:
        return x
    return x + noise_sampler(sigma, sigma_next) * std


def steps(n: int | None, disable: bool | None) -> Iterable[int]:
    """The step indices, with a terminal progress bar unless disabled (the engine disables it).

    `n = None` counts without end, for adaptive samplers that decide when to stop.
    """
    return trange(n, disable=disable) if n is not None else tqdm(itertools.count(), disable=disable)


def notify(callback: Callback | None, i: int, x: Tensor, sigma: Tensor, sigma_hat: Tensor, denoised: Tensor) -> None:
    """Reports step i to the callback: the engine's progress, previews and interrupt all hang here."""
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


def noise_sampler_or_default(noise_sampler: NoiseSampler | None, x: Tensor, extra_args: dict) -> NoiseSampler:
    """The given noise sampler, else per-step Gaussian noise seeded from extra_args['seed'] as ComfyUI does on CPU."""
    return noise_sampler or ancestral_noise_sampler(x, extra_args.get("seed"))


def brownian_or_default(noise_sampler: NoiseSampler | None, x: Tensor, sigmas: Tensor, extra_args: dict,
                        transform: Callable[[Tensor], Tensor] = lambda sigma: sigma) -> NoiseSampler:
    """The given noise sampler, else a Brownian tree over the schedule seeded from extra_args['seed'].

    The tree spans [smallest non-zero sigma, largest sigma], ComfyUI's choice, so the same seed
    and schedule give ComfyUI's Brownian path.
    """
    if noise_sampler is not None:
        return noise_sampler
    positive = sigmas[sigmas > 0]
    return BrownianTreeNoiseSampler(x, positive.min(), sigmas.max(), extra_args.get("seed"), transform)


def churn_sigma(sigma: Tensor, n_steps: int, s_churn: float, s_tmin: float, s_tmax: float) -> Tensor:
    """Karras et al. (2022) Algorithm 2 line 5: sigma_hat = sigma (1 + gamma) inside [s_tmin, s_tmax]."""
    gamma = min(s_churn / n_steps, math.sqrt(2.0) - 1.0) if s_tmin <= float(sigma) <= s_tmax else 0.0
    return sigma * (gamma + 1.0)


def churn(x: Tensor, sigma: Tensor, n_steps: int, noise_sampler: NoiseSampler, s_churn: float, s_tmin: float,
          s_tmax: float, s_noise: float) -> tuple[Tensor, Tensor]:
    """Karras et al. (2022) Algorithm 2 lines 5-6: raises the noise level to sigma_hat with fresh noise.

    Returns (x_hat, sigma_hat); with s_churn = 0 or sigma outside [s_tmin, s_tmax] it is (x, sigma)
    and draws nothing.
    """
    sigma_hat = churn_sigma(sigma, n_steps, s_churn, s_tmin, s_tmax)
    return add_noise(x, noise_sampler, sigma, sigma_hat, s_noise * (sigma_hat**2 - sigma**2) ** 0.5), sigma_hat


def predict_with_uncond(model: Denoiser, x: Tensor, sigma: Tensor, extra_args: dict) -> tuple[Tensor, Tensor]:
    """The guided x0 and the unconditional x0 (for CFG++); without a guider both are the same."""
    with_uncond = getattr(model, "with_uncond", None)
    if with_uncond is None:
        denoised = model(x, sigma, **extra_args)
        return denoised, denoised
    return with_uncond(x, sigma, **extra_args)


def predict_guided(model: Denoiser, x: Tensor, sigma: Tensor, extra_args: dict) -> tuple[Tensor, Tensor]:
    """The guided x0 as both estimates: a sampler without CFG++ renoises along its own prediction."""
    denoised = model(x, sigma, **extra_args)
    return denoised, denoised
