"""Noise: the seeded initial latent noise and the noise samplers that stochastic samplers draw from.

The contract: every draw comes from a local CPU `torch.Generator` seeded from the run's seed
(never the global RNG, never a device RNG), then moves to the tensor's device, so the same
seed gives the same image on any device. The initial noise is bit-identical to ComfyUI's.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

# A noise sampler returns unit-variance noise shaped like x for the step sigma -> sigma_next.
NoiseSampler = Callable[[Tensor, Tensor], Tensor]

# torchsde's default tolerance, as ComfyUI uses it, and the decimals torchsde rounds times to for it.
BROWNIAN_TOL = 1e-6
BROWNIAN_DIGITS = -int(math.log10(BROWNIAN_TOL))


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


def gaussian_noise_sampler(x: Tensor, seed: int | Sequence[int] | None) -> NoiseSampler:
    """Independent N(0, I) per step, drawn in x's dtype from CPU generators seeded with `seed` (0 when None).

    An int seeds one generator for the whole batch; a sequence seeds one generator per batch item,
    so an item's noise depends only on its own seed and never on its batch neighbours.
    """
    if isinstance(seed, (list, tuple)):
        generators, shape = [cpu_generator(s) for s in seed], (1, *x.shape[1:])
    else:
        generators, shape = [cpu_generator(0 if seed is None else seed)], tuple(x.shape)

    def sample(sigma: Tensor, sigma_next: Tensor) -> Tensor:
        noise = torch.cat([torch.randn(shape, generator=g, dtype=x.dtype, device="cpu") for g in generators])
        return noise.to(x.device)

    return sample


def ancestral_noise_sampler(x: Tensor, seed: int | Sequence[int] | None) -> NoiseSampler:
    """The per-step noise of ancestral samplers: one draw in x's dtype per step, seeded with seed + 1.

    seed + 1 keeps the first step's noise from repeating the initial latent noise; on CPU this is
    ComfyUI's stream bit for bit (docs/parity.md).
    """
    if isinstance(seed, (list, tuple)):
        return gaussian_noise_sampler(x, [s + 1 for s in seed])
    return gaussian_noise_sampler(x, None if seed is None else seed + 1)


class BrownianTreeNoiseSampler:
    """Noise from seeded Brownian trees: (W(t1) - W(t0)) / sqrt|t1 - t0|, with t = transform(sigma).

    Because the same Brownian path is reused at any step size, SDE samplers driven by it converge
    to one image as steps grow. The trees live on the CPU (torchsde), which makes them
    device-independent; `seed` may be a list with one seed (one tree) per batch item. One
    torchsde tree over [t(sigma_min), t(sigma_max)] per seed, queried with float32 times, gives
    ComfyUI's CPU trees bit for bit (docs/parity.md). A seed of None seeds the tree with 0.
    """

    def __init__(self, x: Tensor, sigma_min: float | Tensor, sigma_max: float | Tensor,
                 seed: int | Sequence[int] | None, transform: Callable[[Tensor], Tensor] = lambda sigma: sigma):
        import torchsde  # imported lazily: only SDE samplers need it

        self.transform = transform
        self.device, self.dtype = x.device, x.dtype
        t0, t1 = transform(torch.as_tensor(sigma_min)), transform(torch.as_tensor(sigma_max))
        # A decreasing transform (e.g. t = -log sigma) flips every increment's sign, as in ComfyUI.
        self.orientation = 1 if t0 < t1 else -1
        # float32 bounds, like the float32 query times below (ComfyUI's sigmas are float32 already).
        lo, hi = (t0, t1) if t0 < t1 else (t1, t0)
        lo, hi = lo.detach().cpu().float(), hi.detach().cpu().float()
        self.batched = isinstance(seed, (list, tuple))
        seeds = list(seed) if self.batched else [0 if seed is None else seed]
        w0 = torch.zeros(x.shape[1:] if self.batched else x.shape, dtype=x.dtype, device="cpu")
        self.trees = [torchsde.BrownianTree(lo, w0, hi, entropy=int(s), tol=BROWNIAN_TOL) for s in seeds]

    def __call__(self, sigma: Tensor, sigma_next: Tensor) -> Tensor:
        t0, t1 = self.transform(torch.as_tensor(sigma)), self.transform(torch.as_tensor(sigma_next))
        lo, hi, sign = (t0, t1, 1) if t0 < t1 else (t1, t0, -1)
        # torchsde rounds query times to its tolerance only after checking them against its own
        # (rounded) ends, so the query at sigma_max warns and is clamped; rounding first gives the
        # same times, hence the same noise, without the warning.
        lo, hi = (round(float(t.detach().cpu().float()), BROWNIAN_DIGITS) for t in (lo, hi))
        w = torch.stack([tree(lo, hi) for tree in self.trees]).to(device=t0.device, dtype=t0.dtype)
        w = w * (self.orientation * sign)
        w = w if self.batched else w[0]
        return (w / (t1 - t0).abs().sqrt()).to(device=self.device, dtype=self.dtype)
