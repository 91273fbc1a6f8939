"""A sampler and a schedule registered by a pack are selectable by name, give the expected result, and the
sampler keeps the sampler contract."""

from __future__ import annotations

import math
import sys
import textwrap

import pytest
import torch

from sigmagraph.engine import discovery
from sigmagraph.engine.testing import output, pack_session, run
from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES
from sigmagraph.nodes.sampling.contract import check_sampler

PACK = """
    import torch
    from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES
    from sigmagraph.nodes.sampling.samplers.common import bind_denoiser


    def euler_by_hand(model, x, sigmas, extra_args=None, callback=None, disable=None):
        denoise = bind_denoiser(model, x, extra_args)
        for i in range(len(sigmas) - 1):
            denoised = denoise(x, sigmas[i])
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x


    def linear_in_sigma(model_sampling, steps):
        sigmas = torch.linspace(model_sampling.sigma_max, model_sampling.sigma_min, steps)
        return torch.cat([sigmas, torch.zeros(1)])


    SAMPLERS["euler_by_hand"] = euler_by_hand
    SCHEDULES["linear_in_sigma"] = linear_in_sigma
"""


@pytest.fixture
def extended(tmp_path):
    samplers, schedules = dict(SAMPLERS), dict(SCHEDULES)
    (tmp_path / "my_sampling.py").write_text(textwrap.dedent(PACK))
    yield pack_session(tmp_path / "my_sampling.py", tmp_path)
    for mapping, saved in ((SAMPLERS, samplers), (SCHEDULES, schedules)):
        mapping.clear()
        mapping.update(saved)
    for name in [m for m in sys.modules if m.startswith(discovery.PACKS_NAMESPACE)]:
        del sys.modules[name]


def test_custom_sampler_and_schedule_in_ksampler(extended):
    catalogue = extended.registry.catalogue(extended.config)
    assert "euler_by_hand" in catalogue["KSampler"]["input"]["required"]["sampler_name"][0]
    assert "euler_by_hand" in catalogue["KSamplerSelect"]["input"]["required"]["sampler_name"][0]
    assert "linear_in_sigma" in catalogue["BasicScheduler"]["input"]["required"]["scheduler"][0]
    workflow = {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 5, "steps": 8, "cfg": 1.0,
                                                   "sampler_name": "euler_by_hand", "scheduler": "linear_in_sigma",
                                                   "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "denoise": 1.0}},
        "5": {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["4", 0]}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }
    result = run(extended, workflow)
    got = output(extended, result, "4")["samples"].double()
    # Expected: the same Euler steps on sigma_max..sigma_min of SD's table, from ComfyUI's initial noise.
    sigma_max, sigma_min = 14.614642, 0.0291675
    sigmas = torch.cat([torch.linspace(sigma_max, sigma_min, 8, dtype=torch.float64), torch.zeros(1)])
    denoise = analytic_model(0, 3, 4, 1.0, "eps").denoiser()
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)).double() * math.sqrt(1 + sigma_max**2)
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (x - denoise(x, torch.full((1,), float(s), dtype=torch.float64))) / s * (s_next - s)
    assert torch.allclose(got, x, atol=1e-4)
    check_sampler(SAMPLERS["euler_by_hand"], nfe_per_step=1)
