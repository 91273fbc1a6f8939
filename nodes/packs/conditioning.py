"""Conditioning nodes: text encoding and the operations on CONDITIONING lists (ComfyUI's names and inputs).

A CONDITIONING is `[[cond [1, T, width], options], ...]`; the options these nodes set are the
ones nodes/sampling/guidance.py and the model families read (pooled_output, width, height,
crop_w/h, target_width/height, aesthetic_score, area, strength, start/end_percent).
"""

from __future__ import annotations

from typing import Any

import torch

from sigmagraph.engine import Float, Int, Socket, String, node

from ..models.runtime import padded_windows
from ..sampling.guidance import Conditioning
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

PROMPT = String("", multiline=True, dynamic_prompts=True)
SIZE = dict(min=0, max=MAX_RESOLUTION)


def with_options(conditioning: Conditioning, **options: Any) -> Conditioning:
    """A copy of the list with `options` set on every entry (the tensors are shared)."""
    return [[cond, {**entry_options, **options}] for cond, entry_options in conditioning]


@node(returns=["CONDITIONING"], category="conditioning", display_name="CLIP Text Encode (Prompt)")
def CLIPTextEncode(text: str = PROMPT, clip=Socket("CLIP")):
    """Encodes a prompt, with ComfyUI's weighting syntax: (word), (word:1.2), \\( for a literal parenthesis."""
    return clip.encode(text)


@node(returns=["CONDITIONING"], category="advanced/conditioning", display_name="CLIPTextEncodeSDXL")
def CLIPTextEncodeSDXL(clip=Socket("CLIP"), width: int = Int(1024, **SIZE), height: int = Int(1024, **SIZE),
                       crop_w: int = Int(0, **SIZE), crop_h: int = Int(0, **SIZE),
                       target_width: int = Int(1024, **SIZE), target_height: int = Int(1024, **SIZE),
                       text_g: str = PROMPT, text_l: str = PROMPT):
    """Encodes separate prompts for SDXL's bigG and CLIP-L, with the size and crop conditioning."""
    names = {part.slot.name: part for part in clip.parts}
    if set(names) != {"clip_l", "clip_g"}:
        raise ValueError(f"CLIPTextEncodeSDXL needs SDXL's two text encoders (clip_l and clip_g); this CLIP "
                         f"({clip.family}) has {', '.join(names)}")
    tokens = {"clip_g": names["clip_g"].tokenizer.tokenize_with_weights(text_g),
              "clip_l": names["clip_l"].tokenizer.tokenize_with_weights(text_l)}
    # The shorter prompt is padded with empty-prompt windows so both encoders give as many tokens.
    count = max(len(windows.ids) for windows in tokens.values())
    tokens = {name: padded_windows(windows, count, names[name].tokenizer) for name, windows in tokens.items()}
    cond, pooled = clip.encode_tokens(tokens)
    return [[cond, {"pooled_output": pooled, "width": width, "height": height, "crop_w": crop_w, "crop_h": crop_h,
                    "target_width": target_width, "target_height": target_height}]]


@node(returns=["CONDITIONING"], category="advanced/conditioning", display_name="CLIPTextEncodeSDXLRefiner")
def CLIPTextEncodeSDXLRefiner(ascore: float = Float(6.0, min=0.0, max=1000.0, step=0.01),
                              width: int = Int(1024, **SIZE), height: int = Int(1024, **SIZE), text: str = PROMPT,
                              clip=Socket("CLIP")):
    """Encodes a prompt for the SDXL refiner with its aesthetic score (about 6 for positive, 2.5 for negative)."""
    return clip.encode(text, aesthetic_score=ascore, width=width, height=height)


@node(returns=["CLIP"], category="conditioning", display_name="CLIP Set Last Layer")
def CLIPSetLastLayer(clip=Socket("CLIP"), stop_at_clip_layer: int = Int(-1, min=-24, max=-1)):
    """Clip skip: text features taken after this block (-1 the last, -2 the penultimate...)."""
    return clip.with_last_layer(stop_at_clip_layer)


@node(returns=["CONDITIONING"], category="conditioning", display_name="Conditioning (Concat)")
def ConditioningConcat(conditioning_to=Socket("CONDITIONING"), conditioning_from=Socket("CONDITIONING")):
    """Appends the tokens of conditioning_from's first entry to every entry of conditioning_to.

    Unlike Combine (two predictions averaged), the model sees both prompts in one cross-attention
    sequence; as in ComfyUI, entries of conditioning_from past the first are not used.
    """
    if not conditioning_from:
        raise ValueError("conditioning_from is empty: it needs one entry whose tokens are appended")
    tokens = conditioning_from[0][0]
    return [[torch.cat((cond, tokens.to(cond)), dim=1), dict(options)] for cond, options in conditioning_to]


@node(returns=["CONDITIONING"], category="conditioning", display_name="Conditioning (Combine)")
def ConditioningCombine(conditioning_1=Socket("CONDITIONING"), conditioning_2=Socket("CONDITIONING")):
    """Both lists as one: their predictions are averaged (by strength and area) at every step."""
    return list(conditioning_1) + list(conditioning_2)


@node(returns=["CONDITIONING"], category="conditioning", display_name="Conditioning (Set Area)")
def ConditioningSetArea(conditioning=Socket("CONDITIONING"), width: int = Int(64, min=64, max=MAX_RESOLUTION, step=8),
                        height: int = Int(64, min=64, max=MAX_RESOLUTION, step=8),
                        x: int = Int(0, min=0, max=MAX_RESOLUTION, step=8),
                        y: int = Int(0, min=0, max=MAX_RESOLUTION, step=8),
                        strength: float = Float(1.0, min=0.0, max=10.0, step=0.01)):
    """Restricts the conditioning to a rectangle of the image (in pixels, multiples of 8)."""
    return with_options(conditioning, area=(height // 8, width // 8, y // 8, x // 8), strength=strength,
                        set_area_to_bounds=False)


@node(returns=["CONDITIONING"], category="advanced/conditioning", display_name="ConditioningSetTimestepRange")
def ConditioningSetTimestepRange(conditioning=Socket("CONDITIONING"),
                                 start: float = Float(0.0, min=0.0, max=1.0, step=0.001),
                                 end: float = Float(1.0, min=0.0, max=1.0, step=0.001)):
    """Makes the conditioning act only between these fractions of the sampling run."""
    return with_options(conditioning, start_percent=start, end_percent=end)


@node(returns=["CONDITIONING"], category="advanced/conditioning", display_name="ConditioningZeroOut")
def ConditioningZeroOut(conditioning=Socket("CONDITIONING")):
    """The conditioning with its embeddings (and pooled output) set to zeros."""
    out = []
    for cond, options in conditioning:
        options = dict(options)
        if options.get("pooled_output") is not None:
            options["pooled_output"] = torch.zeros_like(options["pooled_output"])
        out.append([torch.zeros_like(cond), options])
    return out


@node(returns=["CONDITIONING"], category="advanced/conditioning/edit_models", display_name="ReferenceLatent")
def ReferenceLatent(conditioning=Socket("CONDITIONING"), latent=Socket("LATENT", optional=True)):
    """Adds a reference image (its latent) for an edit model such as Flux Kontext; chain several for several."""
    if latent is None:
        return conditioning
    return [[cond, {**options, "reference_latents": [*options.get("reference_latents", ()), latent["samples"]]}]
            for cond, options in conditioning]
