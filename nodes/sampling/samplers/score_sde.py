"""Predictor-corrector samplers of score-based SDEs (Song et al. 2021, "Score-Based Generative Modeling
through Stochastic Differential Equations", arXiv:2011.13456, Algorithms 2-5).

Each step runs `corrector_steps` Langevin MCMC steps at the current noise level (Algorithm 4:
step size eps = 2 a (snr |z| / |score|)^2), then one reverse-diffusion predictor step to the
next noise level, as the paper's reference code orders them. The score comes from the denoiser:
score(x, sigma) = (D(x, sigma) - x) / sigma^2.

`pc_ve` is Algorithm 2 on the variance-exploding SDE, which is exactly this sampler's sigma
space: predictor x += (sigma^2 - sigma_next^2) score + sqrt(sigma^2 - sigma_next^2) z; a = 1.

`pc_vp` is Algorithm 3 on the variance-preserving SDE. The given sigmas are mapped into it
through alpha_bar(sigma) = 1 / (1 + sigma^2) (x_vp = sqrt(alpha_bar) x, the discrete VP model
whose noise levels they are) and the discrete beta of each step, beta_i = 1 - alpha_bar(sigma_i)
/ alpha_bar(sigma_{i+1}) (the forward step that leads from sigma_{i+1} up to sigma_i). In the VP
frame the predictor is x_vp <- (2 - sqrt(1 - beta)) x_vp + beta score_vp + sqrt(beta) z with
score_vp = (sqrt(alpha_bar) D - x_vp) / (1 - alpha_bar), the corrector uses a = 1 - beta, and
the state is mapped back to sigma space after every update.

Two deviations from the reference code: |z| and |score| are taken per batch item rather than
averaged over the batch, so an image never depends on its batch neighbours; and the step to
sigma = 0 adds no noise (its "noise removal"), while a schedule that stops above 0 ends on a
noisy state at sigmas[-1] like every other stochastic sampler.

NFE for N = len(sigmas) - 1 steps: (1 + corrector_steps) N. Noise comes from `noise_sampler`,
which must give independent draws (the default, the seeded per-step Gaussian noise of
`common.noise_sampler_or_default`); Langevin steps are not increments of a Brownian path in
sigma, so a Brownian-tree sampler does not fit them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .common import Callback, Denoiser, Sampler, bind_denoiser, noise_sampler_or_default, notify, steps
from ..broadcast import append_dims
from ..noise import NoiseSampler


@dataclass(frozen=True)
class _Frame:
    """One step in an SDE's own frame y = scale * x: y_next_mean = (1 - drift) y + g2 * score, std sqrt(g2)."""

    scale: float  # y = scale * x at sigma
    scale_next: float  # ... and at sigma_next
    drift: float  # the forward discretization's f(y) = drift * y
    g2: float  # its G^2
    langevin_a: float  # the corrector's a


def _ve_frame(sigma: float, sigma_next: float) -> _Frame:
    """The VE SDE: y = x, f = 0, G^2 = sigma^2 - sigma_next^2, a = 1."""
    return _Frame(1.0, 1.0, 0.0, sigma**2 - sigma_next**2, 1.0)


def _vp_frame(sigma: float, sigma_next: float) -> _Frame:
    """The discrete VP SDE: y = sqrt(alpha_bar) x, f = (sqrt(1 - beta) - 1) y, G^2 = beta, a = 1 - beta."""
    beta = (sigma**2 - sigma_next**2) / (1 + sigma**2)
    return _Frame(1 / math.sqrt(1 + sigma**2), 1 / math.sqrt(1 + sigma_next**2), math.sqrt(1 - beta) - 1, beta,
                  1 - beta)


def _score(frame: _Frame, y: Tensor, denoised: Tensor, sigma: float) -> Tensor:
    """The score in the frame, (scale D - y) / (scale^2 sigma^2): 1 - alpha_bar = alpha_bar sigma^2 for VP."""
    return (frame.scale * denoised - y) / (frame.scale * sigma) ** 2


def _per_item_norm(v: Tensor) -> Tensor:
    return append_dims(v.flatten(1).norm(dim=1), v.ndim)


def _predictor_corrector(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                         callback: Callback | None, disable: bool | None, snr: float, corrector_steps: int,
                         noise_sampler: NoiseSampler | None,
                         make_frame: Callable[[float, float], _Frame]) -> Tensor:
    """Langevin corrector steps at sigma_i, then the reverse-diffusion predictor to sigma_{i+1}."""
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    denoise = bind_denoiser(model, x, extra_args)
    sigma = sigmas.double().tolist()
    tiny = torch.finfo(x.dtype).tiny
    for i in steps(len(sigmas) - 1, disable):
        frame = make_frame(sigma[i], sigma[i + 1])
        y = frame.scale * x
        for _ in range(corrector_steps):
            score = _score(frame, y, denoise(y / frame.scale, sigmas[i]), sigma[i])
            z = noise_sampler(sigmas[i], sigmas[i + 1])
            step = 2 * frame.langevin_a * (snr * _per_item_norm(z) / _per_item_norm(score).clamp_min(tiny)) ** 2
            y = y + step * score + (2 * step).sqrt() * z
        denoised = denoise(y / frame.scale, sigmas[i])
        notify(callback, i, y / frame.scale, sigmas[i], sigmas[i], denoised)
        y = (1 - frame.drift) * y + frame.g2 * _score(frame, y, denoised, sigma[i])
        if sigma[i + 1] > 0:
            y = y + math.sqrt(frame.g2) * noise_sampler(sigmas[i], sigmas[i + 1])
        x = y / frame.scale_next
    return x


@torch.no_grad()
def pc_ve(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
          callback: Callback | None = None, disable: bool | None = None, snr: float = 0.16,
          corrector_steps: int = 1, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """PC sampling of the VE SDE (Song et al. 2021, Algorithm 2): Langevin corrector + reverse-diffusion predictor.

    snr is the corrector's signal-to-noise ratio r (Algorithm 4; 0.16 as in the reference code's configs).
    NFE (1 + corrector_steps) N.
    """
    return _predictor_corrector(model, x, sigmas, extra_args, callback, disable, snr, corrector_steps,
                                noise_sampler, _ve_frame)


@torch.no_grad()
def pc_vp(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
          callback: Callback | None = None, disable: bool | None = None, snr: float = 0.16,
          corrector_steps: int = 1, noise_sampler: NoiseSampler | None = None) -> Tensor:
    """PC sampling of the discrete VP SDE (Song et al. 2021, Algorithm 3) in the VP frame of the given sigmas.

    alpha_bar = 1 / (1 + sigma^2) and beta_i = 1 - alpha_bar_i / alpha_bar_{i+1} (see the module
    notes); snr as in `pc_ve`, the corrector's a being 1 - beta_i. NFE (1 + corrector_steps) N.
    """
    return _predictor_corrector(model, x, sigmas, extra_args, callback, disable, snr, corrector_steps,
                                noise_sampler, _vp_frame)


SAMPLERS: dict[str, Sampler] = {"pc_ve": pc_ve, "pc_vp": pc_vp}
