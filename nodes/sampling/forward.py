"""The forward (noising) process at chosen noise levels, in the two forms users meet it.

`noised` is the latent as a sampler starting at sigma holds it (what `noise_scaling` makes),
kept in the LATENT convention so that sampling on from sigma without new noise continues it;
`forward_sample` is the textbook x_t (what an eps or v network is fed, c_in x):
sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) n with alpha_bar = 1 / (1 + sigma^2) for variance-preserving
models, (1 - t) x0 + t n for flow.
"""

from __future__ import annotations

from torch import Tensor

from .model_sampling import ModelSampling


def noised(model_sampling: ModelSampling, latent: Tensor, noise: Tensor, sigma: float) -> Tensor:
    """The latent noised to sigma, as a run stopped at sigma returns it (x0 + sigma n; flow x0 + sigma/(1-sigma) n)."""
    return model_sampling.inverse_noise_scaling(sigma, model_sampling.noise_scaling(sigma, noise, latent))


def forward_sample(model_sampling: ModelSampling, latent: Tensor, noise: Tensor, sigma: float) -> Tensor:
    """The textbook x_t at sigma: (x0 + sigma n) / sqrt(1 + sigma^2); for flow (1 - sigma) x0 + sigma n."""
    x = model_sampling.noise_scaling(sigma, noise, latent)
    return x if model_sampling.prediction == "flow" else x / (1.0 + sigma**2) ** 0.5
