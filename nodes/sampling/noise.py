"""Noise: the seeded initial latent noise and the noise samplers that stochastic samplers draw from.

The contract: every draw comes from a local CPU `torch.Generator` seeded from the run's seed
(never the global RNG, never a device RNG), then moves to the tensor's device, so the same
seed gives the same image on any device. The initial noise is bit-identical to ComfyUI's.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

# A noise sampler returns unit-variance noise shaped like x for the step sigma -> sigma_next.
NoiseSampler = Callable[[Tensor, Tensor], Tensor]


def cpu_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded like `torch.manual_seed(seed)` without touching the global RNG."""
    return torch.Generator("cpu").manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)


def initial_noise(shape: Sequence[int], seed: int, batch_index: Sequence[int] | None = None) -> Tensor:
    """The initial latent noise, identical to ComfyUI's `prepare_noise` (CPU, float32).

    Without `batch_index` the whole batch is one draw; with it, one draw of a single latent per
    index 0..max(batch_index) and the listed ones are picked, so an image's noise depends only
    on its index and never on its batch neighbours.
    """
    generator = cpu_generator(seed)
    if batch_index is None:
        return torch.randn(tuple(shape), generator=generator, dtype=torch.float32, device="cpu")
    single = (1, *shape[1:])
    draws = [torch.randn(single, generator=generator, dtype=torch.float32, device="cpu")
             for _ in range(max(batch_index) + 1)]
    return torch.cat([draws[i] for i in batch_index])


def gaussian_noise_sampler(x: Tensor, seed: int | None) -> NoiseSampler:
    """Independent N(0, I) per step from a CPU generator seeded with `seed` (0 when None)."""
    generator = cpu_generator(0 if seed is None else seed)

    def sample(sigma: Tensor, sigma_next: Tensor) -> Tensor:
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float32, device="cpu")
        return noise.to(device=x.device, dtype=x.dtype)

    return sample


class BrownianTreeNoiseSampler:
    """Noise from a seeded Brownian tree: (W(t1) - W(t0)) / sqrt|t1 - t0|, with t = transform(sigma).

    Because the same Brownian path is reused at any step size, SDE samplers driven by it
    converge to one image as steps grow. The tree lives on the CPU (torchsde), which makes it
    device-independent; `seed` may be a list with one seed per batch item.
    """

    def __init__(self, x: Tensor, sigma_min: float, sigma_max: float, seed: int | Sequence[int] | None,
                 transform: Callable[[Tensor], Tensor] = lambda sigma: sigma):
        import torchsde  # imported lazily: only SDE samplers need it

        self.transform = transform
        self.device, self.dtype = x.device, x.dtype
        t0 = transform(torch.as_tensor(sigma_min, dtype=torch.float64)).float()
        t1 = transform(torch.as_tensor(sigma_max, dtype=torch.float64)).float()
        self.t0, self.t1 = min(t0, t1), max(t0, t1)
        seeds = [0 if seed is None else seed] if seed is None or isinstance(seed, int) else list(seed)
        self.batched = len(seeds) > 1 or not (seed is None or isinstance(seed, int))
        w0 = torch.zeros(x.shape[1:] if self.batched else x.shape, dtype=torch.float32, device="cpu")
        self.trees = [torchsde.BrownianTree(self.t0, w0, self.t1, entropy=int(s), tol=1e-6, pool_size=24,
                                            halfway_tree=True) for s in seeds]

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        t0 = self.transform(torch.as_tensor(sigma, dtype=torch.float64)).float().cpu()
        t1 = self.transform(torch.as_tensor(sigma_next, dtype=torch.float64)).float().cpu()
        lo, hi, sign = (t0, t1, 1.0) if t0 <= t1 else (t1, t0, -1.0)
        w = torch.stack([tree(lo, hi) for tree in self.trees]) * sign
        w = w if self.batched else w[0]
        return (w / (t1 - t0).abs().sqrt()).to(device=self.device, dtype=self.dtype)
