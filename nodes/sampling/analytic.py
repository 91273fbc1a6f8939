"""An exact denoiser: data drawn per latent pixel from an isotropic Gaussian mixture.

Each latent pixel's channel vector x0 ~ sum_k w_k N(mu_k, s_k^2 I), independently. For the
variance-exploding corruption x = x0 + sigma * n the posterior mean is closed-form:

    p(k | x) ∝ w_k N(x; mu_k, (s_k^2 + sigma^2) I)
    E[x0 | x] = sum_k p(k | x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k))

so every sampler can be run against ground truth, at any latent size, with no weights:
`probability_flow_solution` gives the exact ODE trajectory a deterministic sampler should follow,
`sliced_wasserstein` how far a stochastic sampler's samples are from the mixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .broadcast import append_dims, per_batch


@dataclass(frozen=True)
class GaussianMixture:
    """Mixture weights [K], means [K, C] and per-component standard deviations [K] (float64)."""

    weights: Tensor
    means: Tensor
    stds: Tensor

    @classmethod
    def random(cls, seed: int, components: int = 3, channels: int = 4, spread: float = 1.0) -> "GaussianMixture":
        """A seeded mixture: means ~ N(0, spread^2), stds in [0.1, 0.5] * spread, Dirichlet-like weights."""
        g = torch.Generator("cpu").manual_seed(seed)
        means = torch.randn(components, channels, generator=g, dtype=torch.float64) * spread
        stds = (0.1 + 0.4 * torch.rand(components, generator=g, dtype=torch.float64)) * spread
        weights = -torch.rand(components, generator=g, dtype=torch.float64).log()
        return cls(weights / weights.sum(), means, stds)

    @property
    def channels(self) -> int:
        return self.means.shape[1]

    def sample(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        """Exact samples of shape [B, C, *spatial] (float64)."""
        b, c, *spatial = shape
        n = b * int(torch.tensor(spatial).prod()) if spatial else b
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        x = self.means[k] + self.stds[k, None] * torch.randn(n, c, generator=generator, dtype=torch.float64)
        return x.reshape(b, *spatial, c).movedim(-1, 1)

    def denoise(self, x: Tensor, sigma: Tensor) -> Tensor:
        """E[x0 | x0 + sigma n = x] for x [B, C, ...] and sigma [B] (computed in float64)."""
        dtype = x.dtype
        xc = x.double().movedim(1, -1).unsqueeze(-2)  # [B, ..., 1, C]
        s2 = append_dims(sigma.double(), x.ndim) ** 2  # [B, 1.., 1] to broadcast over [.., K]
        var = self.stds**2 + s2  # [B, 1.., K]
        diff = xc - self.means  # [B, ..., K, C]
        log_p = self.weights.log() - 0.5 * (diff**2).sum(-1) / var - 0.5 * self.channels * var.log()
        resp = torch.softmax(log_p, dim=-1).unsqueeze(-1)  # [B, ..., K, 1]
        shrink = (self.stds**2 / var).unsqueeze(-1)
        posterior = self.means + shrink * diff
        return (resp * posterior).sum(-2).movedim(-1, 1).to(dtype)

    def __call__(self, x: Tensor, sigma: Tensor, **extra) -> Tensor:
        """The denoiser convention of the samplers: model(x, sigma) -> x0."""
        return self.denoise(x, sigma)


def mixture_network(mixture: GaussianMixture, model_sampling) -> Callable[..., Tensor]:
    """The exact network `net(x_in, timestep) -> F` of a mixture under any parametrization.

    It inverts the parametrization: recovers sigma from the timestep and x from c_in * x, takes the
    exact x0, and returns the raw output F with c_skip * x + c_out * F = x0. For rectified flow,
    x = (1 - sigma) x0 + sigma n is the variance-exploding x / (1 - sigma) at sigma / (1 - sigma).
    """

    flow = model_sampling.prediction == "flow"

    def net(x_in: Tensor, timestep: Tensor, **inputs: Tensor) -> Tensor:
        # A flow network is fed sigma * multiplier (the shift only shapes the schedule), see FlowNoiseLevels.
        sigma = timestep / model_sampling.levels.multiplier if flow else model_sampling.sigma(timestep)
        sigma = sigma.to(x_in.dtype)
        c_skip, c_out, c_in = (per_batch(c, x_in) for c in model_sampling.scalings(sigma))
        x = x_in / c_in
        if flow:
            keep = (1 - sigma).clamp_min(1e-6)
            x0 = mixture.denoise(x / per_batch(keep, x), sigma / keep)
        else:
            x0 = mixture.denoise(x, sigma)
        return (x0 - c_skip * x) / c_out

    return net


def probability_flow_solution(denoiser: Callable[..., Tensor], x: Tensor, sigma_start: float, sigma_end: float = 0.0,
                              steps: int = 2000) -> Tensor:
    """The probability-flow ODE dx/dsigma = (x - D(x, sigma)) / sigma solved by classic RK4 in lambda = log sigma.

    In lambda the ODE reads dx/dlambda = x - D(x, e^lambda): smooth down to tiny sigmas, so this
    reference (float64) is accurate to well below any sampler's error. A final sigma of 0 is
    reached by integrating to 1e-5 and applying the denoiser (the remaining step is O(1e-10)).
    """
    x = x.double()
    lam_start = torch.tensor(float(sigma_start), dtype=torch.float64).log()
    lam_end = torch.tensor(max(float(sigma_end), 1e-5), dtype=torch.float64).log()
    h = (lam_end - lam_start) / steps
    ones = x.new_ones(x.shape[0])

    def f(xv: Tensor, lam: Tensor) -> Tensor:
        return xv - denoiser(xv, lam.exp() * ones)

    lam = lam_start
    for _ in range(steps):
        k1 = f(x, lam)
        k2 = f(x + h / 2 * k1, lam + h / 2)
        k3 = f(x + h / 2 * k2, lam + h / 2)
        k4 = f(x + h * k3, lam + h)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        lam = lam + h
    if sigma_end == 0:
        x = denoiser(x, lam_end.exp() * ones)
    return x


def vectors(x: Tensor) -> Tensor:
    """[B, C, *spatial] -> [B * pixels, C]: one sample of the mixture per latent pixel."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def sorted_projections(samples: Tensor, directions: Tensor) -> Tensor:
    """The samples [N, C] projected on unit directions [D, C], sorted per direction: [N, D]."""
    return (samples @ directions.T).sort(0).values


def sliced_wasserstein(samples: Tensor, target: Tensor, directions: Tensor) -> float:
    """The mean over directions of the 1-Wasserstein distance between projections of samples [N, C] and a target.

    `target` is the target's `sorted_projections` (it may hold more samples), computed once for many runs.
    """
    projections = sorted_projections(samples, directions)
    quantiles = ((torch.arange(len(projections), dtype=torch.float64) + 0.5) / len(projections) * len(target)).long()
    return float((projections - target[quantiles]).abs().mean())
