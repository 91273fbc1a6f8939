"""Perp-Neg guidance: the closed form on vectors, one batched call of the three prompts, ComfyUI's skips."""

from __future__ import annotations

import torch

from sigmagraph.nodes.sampling.guidance import resolve_conditioning
from sigmagraph.nodes.sampling.perp_neg import PerpNegDenoiser, perp_neg

B, C, H, W = 1, 2, 1, 1


class PatternModel:
    """x0 = the entry's first token, as channels; records every call."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x, sigma, **inputs):
        self.batches.append(x.shape[0])
        return inputs["c_crossattn"][:, 0, :C].reshape(-1, C, 1, 1).expand(x.shape).clone()


def entry(*channels: float):
    return [[torch.tensor(channels, dtype=torch.float32).reshape(1, 1, C), {}]]


def denoiser(cfg: float, neg_scale: float, model: PatternModel) -> PerpNegDenoiser:
    lists = [resolve_conditioning(c, (B, C, H, W)) for c in (entry(1.0, 0.0), entry(1.0, 1.0), entry(0.0, 0.0))]
    return PerpNegDenoiser(model, *lists, cfg=cfg, neg_scale=neg_scale)


def test_only_the_perpendicular_part_of_the_negative_pushes_away():
    # pos = (1, 0), neg = (1, 1) from empty = 0: neg's part along pos is dropped, its (0, 1) part is scaled.
    model = PatternModel()
    out = denoiser(cfg=3.0, neg_scale=0.5, model=model)(torch.zeros(B, C, H, W), torch.ones(B))
    torch.testing.assert_close(out.flatten(), torch.tensor([3.0, -1.5]))
    assert model.batches == [3 * B]  # positive, negative and empty in one model call


def test_formula_on_random_predictions_matches_its_definition():
    g = torch.Generator().manual_seed(0)
    cond, uncond, empty = (torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(3))
    pos, neg = cond - empty, uncond - empty
    along = (neg.flatten() @ pos.flatten()) / (pos.flatten() @ pos.flatten()) * pos
    expected = empty + 7.0 * (pos - 1.3 * (neg - along))
    torch.testing.assert_close(perp_neg(cond, uncond, empty, 1.3, 7.0), expected)
    # The part that was removed is orthogonal to pos.
    assert abs(float(((neg - along) * pos).sum())) < 1e-9


def test_neg_scale_zero_skips_the_negative_and_cfg_one_the_empty_prompt():
    model = PatternModel()
    out = denoiser(cfg=2.0, neg_scale=0.0, model=model)(torch.zeros(B, C, H, W), torch.ones(B))
    torch.testing.assert_close(out.flatten(), torch.tensor([2.0, 0.0]))  # empty + cfg * pos
    assert model.batches == [2 * B]
    model = PatternModel()
    out = denoiser(cfg=1.0, neg_scale=0.0, model=model)(torch.zeros(B, C, H, W), torch.ones(B))
    torch.testing.assert_close(out.flatten(), torch.tensor([1.0, 0.0]))
    assert model.batches == [B]
