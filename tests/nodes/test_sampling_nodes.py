"""The sampling nodes against references written out in the test: noise, schedules, loops."""

from __future__ import annotations

import math

import pytest
import torch

from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES

SEED = 1234


def base(sampler="euler", scheduler="karras", steps=12, denoise=1.0, cfg=1.0, size=64, batch=1):
    return {
        "1": {"class_type": "GaussianMixtureModel",
              "inputs": {"seed": 0, "components": 3, "channels": 4, "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": batch}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": SEED, "steps": steps, "cfg": cfg,
                                                   "sampler_name": sampler, "scheduler": scheduler,
                                                   "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "denoise": denoise}},
        "5": {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["4", 0]}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }


def latent_of(session, workflow, node="4", slot=0):
    """Runs the workflow and returns the LATENT output of a node (from the session's cache)."""
    result = session.run(workflow)
    assert result.ok, result.error
    return session.executor.cache.get(result.keys[node]).outputs[slot][0]["samples"]


def karras(steps, sigma_min=0.0291675, sigma_max=14.614642, rho=7.0):
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, s.new_zeros(1)])


def reference_euler(sigmas, shape, seed=SEED):
    """Euler on the exact mixture, from ComfyUI's initial noise, written out independently."""
    model = analytic_model(0, 3, 4, 1.0, "eps")
    mixture_x0 = model.denoiser()
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    x = noise.double() * math.sqrt(1 + float(sigmas[0]) ** 2)
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        sig = torch.full((shape[0],), float(s), dtype=torch.float64)
        d = (x - mixture_x0(x, sig)) / s
        x = x + d * (s_next - s)
    return x


def test_ksampler_matches_reference_loop(builtin_session):
    out = latent_of(builtin_session, base())
    ref = reference_euler(karras(12), (1, 4, 8, 8))
    assert torch.allclose(out.double(), ref, atol=2e-4)


def test_two_stage_advanced_equals_one_run(builtin_session):
    wf = base(sampler="euler", scheduler="normal", steps=10)
    one = latent_of(builtin_session, wf)
    common = {"model": ["1", 0], "noise_seed": SEED, "steps": 10, "cfg": 1.0, "sampler_name": "euler",
              "scheduler": "normal", "positive": ["2", 0], "negative": ["2", 0]}
    wf["7"] = {"class_type": "KSamplerAdvanced", "inputs": {**common, "add_noise": "enable", "latent_image": ["3", 0],
               "start_at_step": 0, "end_at_step": 4, "return_with_leftover_noise": "enable"}}
    wf["8"] = {"class_type": "KSamplerAdvanced", "inputs": {**common, "add_noise": "disable", "latent_image": ["7", 0],
               "start_at_step": 4, "end_at_step": 10000, "return_with_leftover_noise": "disable"}}
    wf["5"]["inputs"]["samples"] = ["8", 0]
    two = latent_of(builtin_session, wf, node="8")
    assert torch.allclose(one, two, atol=1e-5)


def test_denoise_keeps_last_steps_of_longer_schedule(builtin_session):
    wf = base(sampler="euler", scheduler="karras", steps=6, denoise=0.5)
    out = latent_of(builtin_session, wf)
    sigmas = karras(12)[-7:]  # int(6 / 0.5) = 12 sigmas, keep the last 7; the latent is zeros
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(SEED)).double()
    model = analytic_model(0, 3, 4, 1.0, "eps").denoiser()
    x = noise * sigmas[0]  # not max denoise: plain sigma scaling
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        x = x + (x - model(x, torch.full((1,), float(s), dtype=torch.float64))) / s * (s_next - s)
    assert torch.allclose(out.double(), x, atol=2e-4)


def test_custom_advanced_equals_ksampler(builtin_session):
    wf = base(sampler="dpmpp_2m", scheduler="exponential", steps=8)
    ref = latent_of(builtin_session, wf)
    wf.update({
        "10": {"class_type": "RandomNoise", "inputs": {"noise_seed": SEED}},
        "11": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                     "cfg": 1.0}},
        "12": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
        "13": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "exponential", "steps": 8,
                                                          "denoise": 1.0}},
        "14": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["10", 0], "guider": ["11", 0],
                                                                 "sampler": ["12", 0], "sigmas": ["13", 0],
                                                                 "latent_image": ["3", 0]}},
    })
    wf["5"]["inputs"]["samples"] = ["14", 0]
    assert torch.equal(latent_of(builtin_session, wf, node="14"), ref)


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m_sde", "euler"])
def test_batch_images_do_not_depend_on_neighbours(builtin_session, sampler):
    batch = latent_of(builtin_session, base(batch=3, sampler=sampler, steps=5))
    single = latent_of(builtin_session, base(batch=1, sampler=sampler, steps=5))
    assert torch.equal(batch[0], single[0])  # image 0 of a batch = the single image
    from sigmagraph.nodes.guiders import Guider, SamplerChoice, SeededNoise

    model = analytic_model(0, 3, 4, 1.0, "eps")
    cond = [[torch.zeros(1, 1, 1), {}]]
    third, _ = Guider(model, cond, cond, 1.0).sample(
        SeededNoise(SEED), {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [2]}, SamplerChoice(sampler),
        SCHEDULES["karras"](model.model_sampling, 5))
    assert torch.allclose(batch[2], third["samples"][0], atol=1e-6)  # image 2 = the single run with batch_index [2]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_runs_in_ksampler(builtin_session, name):
    out = latent_of(builtin_session, base(sampler=name, scheduler="karras", steps=4, size=16))
    assert out.shape == (1, 4, 2, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_runs_in_ksampler(builtin_session, name):
    out = latent_of(builtin_session, base(sampler="euler", scheduler=name, steps=4, size=16))
    assert torch.isfinite(out).all()


def test_split_and_flip_sigmas(builtin_session):
    from sigmagraph.nodes.packs.schedulers import FlipSigmas, SplitSigmas, SplitSigmasDenoise

    s = torch.tensor([3.0, 2.0, 1.0, 0.5, 0.0])
    high, low = SplitSigmas(s, 2)
    assert high.tolist() == [3.0, 2.0, 1.0] and low.tolist() == [1.0, 0.5, 0.0]
    high, low = SplitSigmasDenoise(s, 0.25)
    assert high.tolist() == [3.0, 2.0, 1.0, 0.5] and low.tolist() == [0.5, 0.0]
    assert torch.allclose(FlipSigmas(s), torch.tensor([0.0001, 0.5, 1.0, 2.0, 3.0]))


def test_inpainting_keeps_unmasked_region(builtin_session):
    from sigmagraph.nodes.guiders import Guider, SamplerChoice, SeededNoise

    model = analytic_model(0, 3, 4, 1.0, "eps")
    original = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    mask = torch.zeros(1, 8, 8)
    mask[:, :, 4:] = 1.0
    cond = [[torch.zeros(1, 1, 1), {}]]
    out, _ = Guider(model, cond, cond, 1.0).sample(SeededNoise(3), {"samples": original, "noise_mask": mask},
                                                   SamplerChoice("euler"), karras(6).float())
    assert torch.allclose(out["samples"][..., :4], original[..., :4], atol=1e-6)
    assert not torch.allclose(out["samples"][..., 4:], original[..., 4:], atol=1e-2)
