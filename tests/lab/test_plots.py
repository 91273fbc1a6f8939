"""SigmasPlot's curves, NoisedLatent against the closed forms, NoisePreview against a hand-made decode (demo VAE)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sigmagraph.engine.testing import output, run
from sigmagraph.nodes.demo.generate import LOADER, shipped_workflow
from sigmagraph.nodes.packs.lab.drawing import PALETTE

SEED = 5


def analytic(prediction="eps"):
    return {"1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                                   "spread": 1.0, "prediction_type": prediction}}}


def test_sigmas_plot_draws_each_schedule_falling_in_sigma_and_rising_in_log_snr(builtin_session):
    wf = analytic()
    wf["2"] = {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": 10,
                                                          "denoise": 1.0}}
    wf["3"] = {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": 10,
                                                          "denoise": 1.0}}
    wf["4"] = {"class_type": "SigmasPlot", "inputs": {"sigmas": ["2", 0], "sigmas_2": ["3", 0],
                                                      "labels": "karras, normal"}}
    wf["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    image = output(builtin_session, run(builtin_session, wf), "4")[0]
    pixels = (image * 255).round().to(torch.uint8).numpy()
    width = pixels.shape[1] // 2
    for k in range(2):
        colour = np.all(np.abs(pixels.astype(int) - PALETTE[k]) <= 2, axis=-1)
        for panel, falling in ((colour[:, :width], True), (colour[:, width:], False)):
            ys, xs = np.nonzero(panel[:, :width - 120])  # left of the legend
            assert len(xs) > 50
            left, right = ys[xs < xs.min() + 6].mean(), ys[xs > xs.max() - 6].mean()
            # image rows grow downwards: a falling curve starts high (small row) and ends low
            assert (left < right) if falling else (left > right)


@pytest.mark.parametrize("prediction", ["eps", "flow"])
def test_noised_latent_is_the_forward_process_a_sampler_continues(builtin_session, prediction):
    wf = analytic(prediction)
    wf["2"] = {"class_type": "ManualSigmas", "inputs": {"sigmas": "0.9, 0.5, 0.1, 0"}}
    wf["3"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 16, "height": 16, "batch_size": 1}}
    wf["4"] = {"class_type": "NoisedLatent", "inputs": {"model": ["1", 0], "samples": ["3", 0], "sigmas": ["2", 0],
                                                        "noise_seed": SEED}}
    wf["5"] = {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["4", 0]}}
    wf["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}
    noised = output(builtin_session, run(builtin_session, wf), "4")["samples"]
    noise = torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(SEED))
    for k, sigma in enumerate((0.9, 0.5, 0.1, 0.0)):
        # x0 (zeros) + sigma n, and for flow x0 + sigma / (1 - sigma) n, which a flow run at sigma holds
        scale = sigma / (1 - sigma) if prediction == "flow" else sigma
        assert torch.allclose(noised[k:k + 1], noise * scale, atol=1e-6)


def test_noise_preview_is_the_decoded_textbook_strip(builtin_session):
    sigmas = (0.1, 1.0, 14.6)
    wf = {LOADER: shipped_workflow("demo_sd.json")[LOADER]}  # the SD demo: sigma 14.6 is on its schedule
    builtin_session.config.input_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), (200, 60, 40)).save(builtin_session.config.input_dir / "lab_noise_preview.png")
    wf["2"] = {"class_type": "LoadImage", "inputs": {"image": "lab_noise_preview.png"}}
    wf["3"] = {"class_type": "ManualSigmas", "inputs": {"sigmas": ", ".join(map(str, sigmas))}}
    wf["4"] = {"class_type": "NoisePreview", "inputs": {"model": [LOADER, 0], "vae": [LOADER, 2], "image": ["2", 0],
                                                        "sigmas": ["3", 0], "noise_seed": SEED}}
    wf["5"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["2", 0], "vae": [LOADER, 2]}}
    wf["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    wf["7"] = {"class_type": "LatentPreviewImage", "inputs": {"model": [LOADER, 0], "samples": ["5", 0]}}
    wf["8"] = {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}}
    result = run(builtin_session, wf)
    strip = output(builtin_session, result, "4")[0]
    model, vae = output(builtin_session, result, LOADER, 0), output(builtin_session, result, LOADER, 2)
    latent = output(builtin_session, result, "5")["samples"]
    scale = model.latent_format.scale_factor
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(SEED))
    band = 24
    label_width = strip.shape[1] - 3 * 64
    for k, sigma in enumerate(sigmas):
        x_t = (latent * scale + sigma * noise) / (1 + sigma**2) ** 0.5  # sqrt(a) x0 + sqrt(1 - a) n
        expected = vae.decode(x_t / scale)[0]
        cell = strip[band:band + 64, label_width + 64 * k:label_width + 64 * (k + 1)]
        assert (cell - expected.clamp(0, 1)).abs().max() <= 1.5 / 255
    # the first frame is nearly the picture, the last nearly noise
    picture = torch.tensor([0xC8, 0x3C, 0x28]) / 255
    first = strip[band:band + 64, label_width:label_width + 64]
    last = strip[band:band + 64, label_width + 128:label_width + 192]
    assert (first - picture).abs().mean() < (last - picture).abs().mean()
