"""Perp-Neg guidance (Armandpour et al. 2023): the negative prompt acts only through its part orthogonal to the positive.

With the x0 predictions of the positive, negative and empty prompts, both prompts' directions are
taken from the empty prediction, pos = cond - empty and neg = uncond - empty, and only the part of
`neg` perpendicular to `pos` is subtracted: x0 = empty + cfg (pos - neg_scale perp). A negative
prompt that overlaps the positive (a "side view" against a "front view") then no longer cancels
what the positive asks for. The projection is over the whole batch tensor, as in ComfyUI.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

from torch import Tensor

from .guidance import CfgHook, Condition, ConditionedModel, GuidanceStep, ModelWrapper, predict_conditions


def perp_neg(cond: Tensor, uncond: Tensor, empty: Tensor, neg_scale: float, cfg: float) -> Tensor:
    """The Perp-Neg x0 from the positive, negative and empty prompts' x0 predictions."""
    pos = cond - empty
    neg = uncond - empty
    perp = neg - (neg * pos).sum() / pos.norm() ** 2 * pos
    return empty + cfg * (pos - neg_scale * perp)


class PerpNegDenoiser:
    """The denoiser of Perp-Neg guidance: one batched evaluation of the three prompts per step.

    As in ComfyUI, the negative pass is skipped at neg_scale 0 and the empty one too at cfg 1 (their
    predictions are then zeros); a model's CFG function does not apply (Perp-Neg is the blend), its
    post-CFG hooks do.
    """

    def __init__(self, model: ConditionedModel, positive: list[Condition], negative: list[Condition],
                 empty: list[Condition], cfg: float, neg_scale: float, post_cfg: Sequence[CfgHook] = (),
                 model_wrapper: ModelWrapper | None = None, run: Any = None):
        self.model, self.positive, self.negative, self.empty = model, positive, negative, empty
        self.cfg, self.neg_scale = float(cfg), float(neg_scale)
        self.post_cfg, self.model_wrapper, self.run = tuple(post_cfg), model_wrapper, run

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        skip_negative = math.isclose(self.neg_scale, 0.0)
        skip_empty = skip_negative and math.isclose(self.cfg, 1.0)
        lists = [self.positive, [] if skip_negative else self.negative, [] if skip_empty else self.empty]
        cond, uncond, empty = predict_conditions(self.model, lists, x, sigma, self.model_wrapper)
        step = GuidanceStep(x, sigma, cond, uncond, self.cfg, perp_neg(cond, uncond, empty, self.neg_scale, self.cfg),
                            self.positive, None if skip_negative else self.negative)
        for hook in self.post_cfg:
            step = replace(step, denoised=hook(step))
        return step.denoised
