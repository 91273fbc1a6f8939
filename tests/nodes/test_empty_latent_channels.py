"""A latent's channels against the model's: an empty one made for another model is widened (ComfyUI's
fix_empty_latent_channels); a non-empty one is refused with the reason."""

from __future__ import annotations

import torch

from sigmagraph.engine.testing import output, pack_session, run


def mixture(channels: int) -> dict:
    return {"class_type": "GaussianMixtureModel", "inputs": {"seed": 3, "components": 3, "channels": channels,
                                                             "spread": 1.0, "prediction_type": "flow"}}


def ksampler(model: str, latent: str) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": [model, 0], "seed": 5, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
        "positive": ["cond", 0], "negative": ["cond", 0], "latent_image": [latent, 0], "denoise": 1.0}}


BASE = {"model": mixture(16), "small": mixture(4), "cond": {"class_type": "NoConditioning", "inputs": {}},
        "empty": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "wide": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}


def sampled(session, latent: str) -> torch.Tensor:
    workflow = {**BASE, "sample": ksampler("model", latent),
                "show": {"class_type": "PreviewAny", "inputs": {"source": ["sample", 0]}}}
    return output(session, run(session, workflow), "sample")["samples"]


def test_an_empty_four_channel_latent_samples_like_the_models_own_empty_latent(tmp_path):
    session = pack_session(tmp_path=tmp_path)
    from_sd, own = sampled(session, "empty"), sampled(session, "wide")
    assert from_sd.shape == own.shape == (1, 16, 8, 8)
    assert torch.equal(from_sd, own)


def test_a_non_empty_latent_of_other_channels_is_refused(tmp_path):
    session = pack_session(tmp_path=tmp_path)
    workflow = {**BASE, "first": ksampler("small", "empty"), "second": ksampler("model", "first"),
                "show": {"class_type": "PreviewAny", "inputs": {"source": ["second", 0]}}}
    result = session.run(session.validate(workflow))
    assert result.status == "error" and result.error["node_id"] == "second"
    assert "4 channels but the model expects 16" in result.error["exception_message"]
