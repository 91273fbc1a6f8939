"""RePaint: the time-jump schedule against diffusers' RePaintScheduler, and inpainting measured on a mixture
whose pixels depend on each other (so the known region says which component the unknown one is from)."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.nodes.sampling import model_sampling as ms
from sigmagraph.nodes.sampling.analytic import GaussianMixture
from sigmagraph.nodes.sampling.repaint import jump_schedule, repaint
from sigmagraph.nodes.sampling.sample import run_sampler
from sigmagraph.nodes.sampling.samplers import SAMPLERS
from sigmagraph.nodes.sampling.schedules import karras_sigmas


@pytest.mark.parametrize("steps,jump_length,jump_n_sample", [(250, 10, 10), (20, 5, 3), (30, 7, 4), (50, 10, 1),
                                                             (10, 10, 10)])
def test_the_jump_schedule_is_diffusers_repaint_schedule(steps, jump_length, jump_n_sample):
    from diffusers.schedulers.scheduling_repaint import RePaintScheduler

    scheduler = RePaintScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(steps, jump_length=jump_length, jump_n_sample=jump_n_sample)
    stride = 1000 // steps
    # diffusers' pipeline: a timestep below the last is a model step t -> t - 1, above it an undo_step
    # t - 1 -> t; either way the image is then at level t - 1, which is our sigma index steps - t.
    timesteps = [steps] + [int(t) // stride for t in scheduler.timesteps]
    assert jump_schedule(steps, jump_length, jump_n_sample) == [steps - t for t in timesteps]


def test_the_paper_settings_descend_ten_times_through_each_jump():
    path = jump_schedule(250, 10, 10)
    down = sum(b > a for a, b in zip(path, path[1:]))
    up = sum(b < a for a, b in zip(path, path[1:]))
    # 24 jump points (t = 0, 10, ..., 230) each send the run 9 times back up 10 levels.
    assert (up, down) == (24 * 9 * 10, 250 + 24 * 9 * 10) and path[0] == 0 and path[-1] == 250


def test_without_jumps_repaint_is_euler_ancestral():
    mixture = GaussianMixture.random(0)
    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * 14.6
    sigmas = karras_sigmas(12, 0.03, 14.6)
    ours = repaint(mixture, x, sigmas, {"seed": 5}, jump_length=3, jump_n_sample=1)
    assert torch.equal(ours, SAMPLERS["euler_ancestral"](mixture, x, sigmas, {"seed": 5}))


PIXELS = 16  # one channel of 4 x 4: the mixture is over whole latents, so pixels are coupled
MEANS = torch.stack([torch.ones(PIXELS), -torch.ones(PIXELS)]).double() * 0.8
STD = 0.3
LATENT_MIXTURE = GaussianMixture(torch.tensor([0.5, 0.5], dtype=torch.float64), MEANS,
                                 torch.tensor([STD, STD], dtype=torch.float64))


def latent_denoiser(x, sigma, **_):
    """The exact denoiser of a mixture over whole 4 x 4 latents."""
    return LATENT_MIXTURE.denoise(x.reshape(x.shape[0], PIXELS), sigma).reshape(x.shape)


def test_repaint_keeps_the_known_region_and_agrees_with_it_better_than_plain_masked_sampling():
    torch.manual_seed(0)
    batch = 400
    source = MEANS[0] + STD * torch.randn(PIXELS, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    latent = source.reshape(1, 1, 4, 4).float().expand(batch, 1, 4, 4).contiguous()
    mask = torch.zeros(1, 4, 4)
    mask[:, :, 2:] = 1  # repaint the right half
    unknown = mask[0].bool()
    # The posterior of the unknown half given the known one: component weights from the known pixels.
    known_values = source.reshape(4, 4)[~unknown]
    log_weights = torch.stack([-((known_values - m.reshape(4, 4)[~unknown]) ** 2).sum() / (2 * STD**2) for m in MEANS])
    posterior_mean = (torch.softmax(log_weights, 0)[:, None] * MEANS.reshape(2, 4, 4)[:, unknown]).sum(0)

    sampling = ms.ve_model_sampling(0.01, 80.0)
    sigmas = karras_sigmas(20, 0.01, 80.0)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))

    def error(sampler, **params):
        out = run_sampler(latent_denoiser, sampling, sampler, sigmas, latent, noise, seed=3, noise_mask=mask, **params)
        assert torch.equal(out[:, 0][:, ~unknown], latent[:, 0][:, ~unknown])  # the known half is the source
        return float((out[:, 0][:, unknown].double().mean(0) - posterior_mean).pow(2).mean().sqrt())

    plain = error(SAMPLERS["euler_ancestral"])
    resampled = error(repaint, jump_length=4, jump_n_sample=10)
    assert resampled < 0.5 * plain, (resampled, plain)  # measured: 0.086 against 0.30


def test_the_repaint_node_inpaints_a_masked_latent_and_keeps_the_rest(builtin_session):
    from sigmagraph.engine.testing import output, run

    wf = {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1}},
        "4": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 2, "height": 4}},
        "5": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 4, "height": 4}},
        "6": {"class_type": "MaskComposite", "inputs": {"destination": ["5", 0], "source": ["4", 0], "x": 2, "y": 0,
                                                        "operation": "add"}},
        "7": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["3", 0], "mask": ["6", 0]}},
        "8": {"class_type": "SamplerRePaint", "inputs": {"jump_length": 3, "jump_n_sample": 2, "s_noise": 1.0}},
        "9": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 9,
                                                         "denoise": 1.0}},
        "10": {"class_type": "SamplerCustom", "inputs": {
            "model": ["1", 0], "add_noise": True, "noise_seed": 2, "cfg": 1.0, "positive": ["2", 0],
            "negative": ["2", 0], "sampler": ["8", 0], "sigmas": ["9", 0], "latent_image": ["7", 0]}},
        "11": {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["10", 0]}},
        "12": {"class_type": "PreviewImage", "inputs": {"images": ["11", 0]}},
    }
    events = []
    result = builtin_session.run(wf, on_event=lambda e, d: events.append((e, d)))
    assert result.ok, result.error
    out = output(builtin_session, result, "10")["samples"][0]
    assert torch.equal(out[:, :, :2], torch.zeros(4, 4, 2))  # the kept half is the (empty) source
    assert out[:, :, 2:].abs().min() > 0  # the masked half was generated
    # progress follows the sigma index: down the schedule, back up after each jump (at steps 0 and 3 from the end)
    path = jump_schedule(9, 3, 2)
    values = [d["value"] for e, d in events if e == "progress" and d["node"] == "10"]
    assert values == [i + 1 for i, j in zip(path, path[1:]) if j > i] and max(values) == 9
    assert sorted(set(values)) == list(range(1, 10)) and len(values) == 9 + 2 * 3
