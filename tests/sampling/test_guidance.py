"""Classifier-free guidance: batching, the CFG formula, areas, masks, strengths, timestep ranges."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.nodes.sampling.guidance import crossattn_inputs, guided_denoiser, resolve_conditioning
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling
from sigmagraph.nodes.sampling.samplers.common import bind_predictor

SD = discrete_model_sampling()
B, C, H, W = 2, 4, 16, 16


class ToyModel:
    """x0 = the mean of the entry's token embeddings, everywhere; records every call."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, x, sigma, **inputs):
        self.calls.append({"x": x.shape, "sigma": sigma.clone(), **{k: v.clone() for k, v in inputs.items()}})
        value = inputs["c_crossattn"].mean(dim=(1, 2))
        return value.reshape(-1, 1, 1, 1).expand(x.shape).clone()


def entry(value: float, tokens: int = 77, **options):
    """A CONDITIONING entry whose toy prediction is `value`."""
    return [torch.full((1, tokens, 8), float(value)), options]


def run(positive, negative, cfg=7.5, sigma=1.0, **kwargs):
    model = ToyModel()
    denoiser = guided_denoiser(model, positive, negative, cfg, (B, C, H, W), SD.percent_to_sigma, **kwargs)
    x = torch.randn(B, C, H, W, generator=torch.Generator().manual_seed(0))
    return denoiser, model, x, torch.full((B,), float(sigma))


def test_cond_and_uncond_in_one_batched_call():
    denoiser, model, x, sigma = run([entry(3.0)], [entry(1.0)], cfg=7.5)
    out = denoiser(x, sigma)
    assert len(model.calls) == 1 and model.calls[0]["x"][0] == 2 * B
    assert model.calls[0]["sigma"].tolist() == [1.0] * (2 * B)
    # The batch is [uncond, cond], as in ComfyUI and sgm.
    assert model.calls[0]["c_crossattn"][:B].mean() == 1.0 and model.calls[0]["c_crossattn"][B:].mean() == 3.0
    torch.testing.assert_close(out, torch.full_like(x, 1.0 + 7.5 * (3.0 - 1.0)))


def test_cfg_one_skips_the_uncond_pass():
    denoiser, model, x, sigma = run([entry(3.0)], [entry(1.0)], cfg=1.0)
    torch.testing.assert_close(denoiser(x, sigma), torch.full_like(x, 3.0))
    assert len(model.calls) == 1 and model.calls[0]["x"][0] == B


def test_with_uncond_for_cfg_pp_always_evaluates_both():
    denoiser, model, x, sigma = run([entry(3.0)], [entry(1.0)], cfg=1.0)
    guided, uncond = bind_predictor(denoiser, x, {"seed": 5}, cfg_pp=True)(x, sigma)
    assert len(model.calls) == 1 and model.calls[0]["x"][0] == 2 * B
    torch.testing.assert_close(guided, torch.full_like(x, 3.0))
    torch.testing.assert_close(uncond, torch.full_like(x, 1.0))
    assert "seed" not in model.calls[0]  # sampler extras are not model inputs


def test_without_negative_only_the_conditioning_runs():
    denoiser, model, x, sigma = run([entry(2.0)], None, cfg=8.0)
    guided, uncond = denoiser.with_uncond(x, sigma)
    torch.testing.assert_close(guided, torch.full_like(x, 2.0))
    assert uncond is guided and model.calls[0]["x"][0] == B


def test_cfg_formula_on_random_predictions():
    g = torch.Generator().manual_seed(3)
    cond_x0, uncond_x0 = torch.randn(B, C, H, W, generator=g), torch.randn(B, C, H, W, generator=g)

    def model(x, sigma, c_crossattn):
        is_cond = c_crossattn[:, 0, 0].reshape(-1, 1, 1, 1) > 0
        return torch.where(is_cond, cond_x0.repeat(2, 1, 1, 1), uncond_x0.repeat(2, 1, 1, 1))

    denoiser = guided_denoiser(model, [entry(1.0)], [entry(-1.0)], 5.5, (B, C, H, W))
    out = denoiser(torch.zeros(B, C, H, W), torch.ones(B))
    torch.testing.assert_close(out, uncond_x0 + 5.5 * (cond_x0 - uncond_x0))


def test_token_lengths_are_repeated_to_their_least_common_multiple():
    denoiser, model, x, sigma = run([entry(3.0, tokens=77)], [entry(1.0, tokens=154)])
    out = denoiser(x, sigma)
    assert len(model.calls) == 1
    crossattn = model.calls[0]["c_crossattn"]
    assert crossattn.shape == (2 * B, 154, 8)
    torch.testing.assert_close(out, torch.full_like(x, 1.0 + 7.5 * 2.0))  # repetition changes nothing
    positive = torch.arange(77 * 8, dtype=torch.float32).reshape(1, 77, 8)
    denoiser, model, x, sigma = run([[positive, {}]], [entry(1.0, tokens=231)])
    denoiser(x, sigma)
    assert model.calls[0]["c_crossattn"].shape == (2 * B, 231, 8)
    torch.testing.assert_close(model.calls[0]["c_crossattn"][B], torch.cat([positive[0]] * 3))
    # lcm(77, 385) / 77 = 5 repeats is too many: two calls instead.
    denoiser, model, x, sigma = run([entry(3.0, tokens=77)], [entry(1.0, tokens=385)])
    denoiser(x, sigma)
    assert [call["c_crossattn"].shape[1] for call in model.calls] == [385, 77]


def test_strengths_weight_entries_of_one_list():
    denoiser, model, x, sigma = run([entry(1.0, strength=1.0), entry(5.0, strength=3.0)], [entry(0.0)], cfg=1.0)
    torch.testing.assert_close(denoiser(x, sigma), torch.full_like(x, (1.0 + 3 * 5.0) / 4))
    assert len(model.calls) == 1 and model.calls[0]["x"][0] == 2 * B


def test_area_blending_with_feathered_edges():
    # An 8x8 area at (4, 4) in a 16x16 latent: inner edges ramp over min(8, 8 // 4) = 2 pixels: 1/2, 1.
    area = (8, 8, 4, 4)
    denoiser, model, x, sigma = run([entry(1.0), entry(5.0, area=area)], [entry(0.0)], cfg=1.0)
    out = denoiser(x, sigma)[0, 0]
    ramp = torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 0.5])
    weight = torch.zeros(H, W)
    weight[4:12, 4:12] = ramp[:, None] * ramp[None, :]
    torch.testing.assert_close(out, (1.0 + 5.0 * weight) / (1.0 + weight))
    # The area entry ran on its crop of x, in a second call (cfg 1: no uncond).
    assert sorted(tuple(call["x"]) for call in model.calls) == [(B, C, 8, 8), (B, C, H, W)]


def test_area_on_the_border_is_not_feathered_there_and_percentages_resolve():
    denoiser, model, x, sigma = run([entry(1.0), entry(3.0, area=("percentage", 0.5, 1.0, 0.0, 0.0))], None)
    out = denoiser(x, sigma)[0, 0]
    ramp = torch.tensor([1.0, 1, 1, 1, 1, 1, 1, 0.5])  # only the bottom edge is inside the latent
    expected = torch.ones(H, W)
    expected[:8] = ((1.0 + 3.0 * ramp) / (1.0 + ramp))[:, None]
    torch.testing.assert_close(out, expected)


def test_each_area_gets_a_counterpart_in_the_other_list():
    # The positive area (8, 8, 4, 4) gets a negative counterpart with the inputs of the smallest negative
    # entry covering it (the full-latent area -3.0 here); the negative area gets a positive counterpart
    # from the positive entry without area. Counterparts carry the weights of the entry they mirror.
    positive = [entry(1.0), entry(5.0, area=(8, 8, 4, 4))]
    negative = [entry(-1.0), entry(-3.0, area=(16, 16, 0, 0))]
    denoiser, model, x, sigma = run(positive, negative, cfg=2.0)
    assert [(c.area, float(c.inputs["c_crossattn"].mean())) for c in denoiser.positive[2:]] == [((16, 16, 0, 0), 1.0)]
    assert [(c.area, float(c.inputs["c_crossattn"].mean())) for c in denoiser.negative[2:]] == [((8, 8, 4, 4), -3.0)]
    out = denoiser(x, sigma)[0, 0]
    cond_centre, uncond_centre = (1.0 + 5.0 + 1.0) / 3, (-1.0 - 3.0 - 3.0) / 3
    cond_corner, uncond_corner = (1.0 + 1.0) / 2, (-1.0 - 3.0) / 2
    assert torch.isclose(out[8, 8], torch.tensor(uncond_centre + 2.0 * (cond_centre - uncond_centre)))
    assert torch.isclose(out[0, 0], torch.tensor(uncond_corner + 2.0 * (cond_corner - uncond_corner)))
    # Full-latent entries in one call, the 8x8 ones in another, cond and uncond together in each.
    assert sorted(tuple(call["x"]) for call in model.calls) == [(2 * B, C, 8, 8), (4 * B, C, H, W)]


def test_masks_with_strength_and_bounds():
    mask = torch.zeros(64, 64)
    mask[:, 32:] = 1.0  # right half, at 4x the latent size: resized to the latent
    denoiser, model, x, sigma = run([entry(1.0), entry(4.0, mask=mask, mask_strength=0.5)], None)
    out = denoiser(x, sigma)[0, 0]
    torch.testing.assert_close(out[:, :7], torch.ones(H, 7))
    torch.testing.assert_close(out[:, 9:], torch.full((H, 7), (1.0 + 4.0 * 0.5) / 1.5))
    bounded = resolve_conditioning([entry(4.0, mask=mask, set_area_to_bounds=True)], (B, C, H, W))[0]
    assert bounded.area == (16, 8, 0, 8) and bounded.weight.shape == (1, 1, 16, 8)


def test_timestep_ranges_switch_entries_on_and_off():
    start, end = SD.percent_to_sigma(0.0), SD.percent_to_sigma(0.5)
    positive = [entry(1.0), entry(5.0, start_percent=0.5, end_percent=1.0)]
    high, low = SD.percent_to_sigma(0.3), SD.percent_to_sigma(0.7)
    assert start > high > end > low
    denoiser, model, x, _ = run(positive, None)
    torch.testing.assert_close(denoiser(x, torch.full((B,), high)), torch.full_like(x, 1.0))
    torch.testing.assert_close(denoiser(x, torch.full((B,), low)), torch.full_like(x, 3.0))
    # With no active entry the prediction is 0, as in ComfyUI.
    denoiser, model, x, _ = run([entry(5.0, start_percent=0.5)], None)
    torch.testing.assert_close(denoiser(x, torch.full((B,), high)), torch.zeros_like(x))
    assert model.calls == []
    with pytest.raises(ValueError, match="percent_to_sigma"):
        resolve_conditioning([entry(1.0, start_percent=0.2)], (B, C, H, W))


def test_custom_encoder_and_batch_fitting():
    def encode(cond, options):
        return {**crossattn_inputs(cond, options), "y": options["pooled_output"]}

    seen = []

    def model(x, sigma, c_crossattn, y):
        seen.append((c_crossattn.shape, y.shape))
        return x * 0

    pooled = torch.ones(1, 12)
    denoiser = guided_denoiser(model, [entry(1.0, pooled_output=pooled)], [entry(0.0, pooled_output=pooled)], 3.0,
                               (3, C, H, W), encode=encode)
    denoiser(torch.zeros(3, C, H, W), torch.ones(3))
    assert seen == [((6, 77, 8), (6, 12))]
