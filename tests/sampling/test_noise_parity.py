"""Sampler noise against ComfyUI's code path, reproduced here with torch and torchsde directly.

ComfyUI (comfy/samplers.py `CFGGuider.inner_sample`) puts the KSampler / RandomNoise seed itself in
`extra_args["seed"]`. Its ancestral samplers draw from `default_noise_sampler`: on the CPU, a
`torch.Generator("cpu")` seeded with seed + 1 and one `randn(x.shape, dtype=x.dtype)` per step.
Its SDE samplers draw from `BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed, cpu=True)`:
one torchsde tree over [smallest non-zero sigma, largest sigma] with w0 = zeros like x, queried
with float32 times, increments divided by sqrt|t1 - t0|.
"""

from __future__ import annotations

import pytest
import torch
import torchsde

from sigmagraph.nodes.sampling.samplers import dpmpp, euler
from sigmagraph.nodes.sampling.samplers.common import brownian_or_default, noise_sampler_or_default

SD_SIGMAS = torch.tensor([14.6146, 9.6826, 6.6780, 4.7746, 3.5221, 2.6666, 2.0606, 1.6156, 1.2768, 1.0097,
                          0.7913, 0.6056, 0.4397, 0.2780, 0.0292, 0.0])  # SD's 15-step normal schedule, float32


def comfyui_cpu_ancestral_noise(x: torch.Tensor, seed: int):
    """ComfyUI's default_noise_sampler for x on the CPU."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed + 1)
    return lambda sigma, sigma_next: torch.randn(x.size(), dtype=x.dtype, layout=x.layout, device=x.device,
                                                 generator=generator)


class ComfyUICpuBrownian:
    """ComfyUI's BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed, cpu=True) with the identity transform."""

    def __init__(self, x: torch.Tensor, sigma_min: torch.Tensor, sigma_max: torch.Tensor, seed):
        self.batched = isinstance(seed, list)
        w0 = torch.zeros_like(x)[0] if self.batched else torch.zeros_like(x)
        self.trees = [torchsde.BrownianTree(sigma_min.cpu(), w0.cpu(), sigma_max.cpu(), entropy=s)
                      for s in (seed if self.batched else [seed])]

    def __call__(self, sigma, sigma_next):
        lo, hi, sign = (sigma, sigma_next, 1) if sigma < sigma_next else (sigma_next, sigma, -1)
        w = torch.stack([tree(lo.cpu().float(), hi.cpu().float()) for tree in self.trees]).to(sigma.dtype) * sign
        w = w if self.batched else w[0]
        return w / (sigma_next - sigma).abs().sqrt()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1234, 2**63 + 5])
def test_ancestral_noise_is_comfyuis_cpu_stream(dtype, seed):
    x = torch.zeros((2, 4, 8, 8), dtype=dtype)
    ours = noise_sampler_or_default(None, x, {"seed": seed})
    theirs = comfyui_cpu_ancestral_noise(x, seed)
    for sigma, sigma_next in zip(SD_SIGMAS[:-1], SD_SIGMAS[1:]):
        assert torch.equal(ours(sigma, sigma_next), theirs(sigma, sigma_next))


def test_euler_ancestral_draws_comfyuis_noise_by_default(mixture):
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3)) * SD_SIGMAS[0]
    by_default = euler.euler_ancestral(mixture, x, SD_SIGMAS, {"seed": 42}, disable=True)
    given = euler.euler_ancestral(mixture, x, SD_SIGMAS, {"seed": 42}, disable=True,
                                  noise_sampler=comfyui_cpu_ancestral_noise(x, 42))
    assert torch.equal(by_default, given)


@pytest.mark.filterwarnings("ignore:Should have:UserWarning")  # torchsde clamping ComfyUI's unrounded queries
@pytest.mark.parametrize("seed", [7, [7, 8]], ids=["one_tree", "tree_per_item"])
def test_brownian_noise_is_comfyuis_cpu_tree(seed):
    x = torch.zeros((2, 4, 8, 8), dtype=torch.float32)
    ours = brownian_or_default(None, x, SD_SIGMAS, {"seed": seed})
    theirs = ComfyUICpuBrownian(x, SD_SIGMAS[SD_SIGMAS > 0].min(), SD_SIGMAS.max(), seed)
    # Every step of a schedule, and the midpoints dpmpp_sde asks for in between.
    queries = [(s, s_next) for s, s_next in zip(SD_SIGMAS[:-2], SD_SIGMAS[1:-1])]
    queries += [(s, (s * s_next).sqrt()) for s, s_next in zip(SD_SIGMAS[:-2], SD_SIGMAS[1:-1])]
    for sigma, sigma_next in queries:
        assert torch.equal(ours(sigma, sigma_next), theirs(sigma, sigma_next))


def test_a_tree_per_item_is_that_items_own_tree():
    x = torch.zeros((2, 4, 8, 8), dtype=torch.float32)
    pair = brownian_or_default(None, x, SD_SIGMAS, {"seed": [7, 8]})
    alone = brownian_or_default(None, x[1:], SD_SIGMAS, {"seed": 8})
    assert torch.equal(pair(SD_SIGMAS[2], SD_SIGMAS[3])[1], alone(SD_SIGMAS[2], SD_SIGMAS[3])[0])


@pytest.mark.filterwarnings("ignore:Should have:UserWarning")
def test_dpmpp_2m_sde_draws_comfyuis_brownian_noise_by_default(mixture):
    x = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(3)) * SD_SIGMAS[0]
    by_default = dpmpp.dpmpp_2m_sde(mixture, x, SD_SIGMAS, {"seed": 42}, disable=True)
    given = dpmpp.dpmpp_2m_sde(mixture, x, SD_SIGMAS, {"seed": 42}, disable=True,
                               noise_sampler=ComfyUICpuBrownian(x, SD_SIGMAS[-2], SD_SIGMAS[0], 42))
    assert torch.equal(by_default, given)


def test_brownian_increments_are_standard_normal_and_consistent_across_step_sizes():
    """Unit variance per step, and one path: the increment over two steps is the sum of the two."""
    x = torch.zeros((4, 4, 32, 32), dtype=torch.float64)
    noise = brownian_or_default(None, x, SD_SIGMAS, {"seed": 3})
    a, b, c = SD_SIGMAS[3], SD_SIGMAS[4], SD_SIGMAS[5]
    first, second, both = noise(a, b), noise(b, c), noise(a, c)
    assert abs(float(first.std()) - 1) < 0.03 and abs(float(first.mean())) < 0.03
    # The increments come back in the sigmas' dtype (float32 here), as in ComfyUI.
    torch.testing.assert_close(both * (a - c).sqrt(), first * (a - b).sqrt() + second * (b - c).sqrt(),
                               rtol=1e-5, atol=1e-5)
