"""Sampling nodes of ComfyUI's templates: a hand-written schedule (ManualSigmas) and CFGNorm guidance."""

from __future__ import annotations

import re

import torch
from torch import Tensor

from sigmagraph.engine import Boolean, Float, Socket, String, node

from ..sampling.guidance import GuidanceStep
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

# ComfyUI's number pattern: signed decimals ("1.", ".5", "-0.25"); any other character separates them.
NUMBER = re.compile(r"[-+]?(?:\d*\.*\d+)")
NORM_EPS = 1e-8  # CFGNorm's guard against a zero guided prediction (post-CFG)
TINY = 1e-12  # its pre-CFG variant's floor on the norm it divides by


@node(returns=["SIGMAS"], category="_for_testing/custom_sampling", display_name="ManualSigmas")
def ManualSigmas(sigmas: str = String("1, 0.5")):
    """The noise levels written in the text (every number in it, e.g. "14.6, 7.0, 0"), as SIGMAS."""
    return torch.tensor([float(number) for number in NUMBER.findall(sigmas)], dtype=torch.float32)


def cfg_norm(step: GuidanceStep, strength: float) -> Tensor:
    """CFGNorm after CFG: the guided x0 shrunk, per pixel, to at most the conditioned x0's norm over channels."""
    cond_norm = torch.norm(step.cond, dim=1, keepdim=True)
    guided_norm = torch.norm(step.denoised, dim=1, keepdim=True)
    return step.denoised * (cond_norm / (guided_norm + NORM_EPS)).clamp(0.0, 1.0) * strength


def cfg_norm_pre(step: GuidanceStep, strength: float) -> Tensor:
    """CFGNorm as the CFG blend: the blended noise rescaled, per pixel, to the conditioned noise's norm.

    In noise terms (x - x0), as ComfyUI's CFG functions see them; strength blends back towards plain CFG.
    """
    cond, uncond = step.x - step.cond, step.x - step.uncond
    blend = uncond + step.cfg * (cond - uncond)
    blend_norm = torch.linalg.vector_norm(blend, dim=1, keepdim=True)
    rescale = torch.where(blend_norm > 0, torch.linalg.vector_norm(cond, dim=1, keepdim=True)
                          / blend_norm.clamp_min(TINY), torch.ones_like(blend_norm))
    noise = strength * blend * rescale + (1.0 - strength) * blend
    return step.x - noise


@node(returns=[("MODEL", "patched_model")], category="advanced/guidance")
def CFGNorm(model=Socket("MODEL"), strength: float = Float(1.0, min=0.0, max=100.0, step=0.01),
            pre_cfg: bool = Boolean(False, optional=True, tooltip="rescale the blended noise before CFG's output, "
                                    "without clamping (can amplify), as models like Lens do")):
    """Keeps CFG from inflating the prediction: its per-pixel norm is held to the conditioned prediction's."""
    if pre_cfg:
        return model.with_cfg_function(lambda step: cfg_norm_pre(step, strength))
    return model.with_post_cfg(lambda step: cfg_norm(step, strength))
