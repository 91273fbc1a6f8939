"""Flux.1 nodes (ComfyUI's nodes_flux and the Kontext edit nodes): guidance, text encoding, reference images.

Flux dev is guidance-distilled: the guidance scale is an input of the network, carried by the
CONDITIONING's `guidance` option (FluxGuidance, CLIPTextEncodeFlux; 3.5 when none is set), and
sampling runs with cfg 1. Kontext edits an image given as reference latents (ReferenceLatent),
which the transformer reads as extra image tokens (models/flux.py, `reference_tokens`).
"""

from __future__ import annotations

from sigmagraph.engine import Combo, Float, Socket, node

from ..resize import resize
from .conditioning import PROMPT, with_options
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

GUIDANCE = Float(3.5, min=0.0, max=100.0, step=0.1)
# The ~1-megapixel sizes (width, height) Kontext was trained at (BFL's reference code, as ComfyUI lists them).
KONTEXT_RESOLUTIONS = ((672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184),
                       (944, 1104), (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752),
                       (1456, 720), (1504, 688), (1568, 672))
# ComfyUI's choices for the reference placement; "uxo/uno" selects the "uxo" placement.
REFERENCE_METHOD_CHOICES = ["offset", "index", "uxo/uno"]


@node(returns=["CONDITIONING"], category="advanced/conditioning/flux", display_name="FluxGuidance")
def FluxGuidance(conditioning=Socket("CONDITIONING"), guidance: float = GUIDANCE):
    """Sets the guidance scale Flux dev was distilled to follow (run the sampler at cfg 1)."""
    return with_options(conditioning, guidance=guidance)


@node(returns=["CONDITIONING"], category="advanced/conditioning/flux", display_name="CLIPTextEncodeFlux")
def CLIPTextEncodeFlux(clip=Socket("CLIP"), clip_l: str = PROMPT, t5xxl: str = PROMPT, guidance: float = GUIDANCE):
    """Encodes separate prompts for Flux's CLIP-L (pooled) and T5-XXL (tokens), with the guidance scale."""
    tokens = {"clip_l": clip.part("clip_l").tokenizer.tokenize_with_weights(clip_l),
              "t5xxl": clip.part("t5xxl").tokenizer.tokenize_with_weights(t5xxl)}
    cond, pooled = clip.encode_tokens(tokens)
    return [[cond, {"pooled_output": pooled, "guidance": guidance}]]


@node(returns=["IMAGE"], category="advanced/conditioning/flux", display_name="FluxKontextImageScale")
def FluxKontextImageScale(image=Socket("IMAGE")):
    """Resizes (Lanczos, centre crop) to the Kontext training size nearest in aspect ratio."""
    aspect = image.shape[2] / image.shape[1]
    _, width, height = min((abs(aspect - w / h), w, h) for w, h in KONTEXT_RESOLUTIONS)
    return resize(image.movedim(-1, 1), width, height, "lanczos", "center").movedim(1, -1)


@node(returns=["CONDITIONING"], category="advanced/conditioning/flux",
      display_name="FluxKontextMultiReferenceLatentMethod")
def FluxKontextMultiReferenceLatentMethod(conditioning=Socket("CONDITIONING"),
                                          reference_latents_method=Combo(REFERENCE_METHOD_CHOICES, default="offset")):
    """How several reference images are placed: side by side (offset), by index, or past the image (uxo)."""
    method = "uxo" if "uxo" in reference_latents_method else reference_latents_method
    return with_options(conditioning, reference_latents_method=method)
