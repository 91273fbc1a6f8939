"""Stable Diffusion 3 nodes (ComfyUI's nodes_sd3): three-prompt text encoding and skip-layer guidance."""

from __future__ import annotations

from torch import Tensor

from sigmagraph.engine import Combo, Float, Socket, String, node

from ..diffusion_model import DiffusionModel
from ..models.mmdit import MMDiT
from ..models.runtime import DiffusionNetwork, padded_windows
from ..models.tokenizer import TokenWindows
from ..sampling.guidance import CfgHook, GuidanceStep, predict_conditions
from ..sampling.model_sampling import NetworkDenoiser
from .conditioning import PROMPT
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack


@node(returns=["CONDITIONING"], category="advanced/conditioning", display_name="CLIPTextEncodeSD3")
def CLIPTextEncodeSD3(clip=Socket("CLIP"), clip_l: str = PROMPT, clip_g: str = PROMPT, t5xxl: str = PROMPT,
                      empty_padding=Combo(["none", "empty_prompt"], default="none")):
    """Encodes a prompt per SD3 encoder; with empty_padding "none" an empty prompt leaves its encoder out.

    An encoder left out adds no tokens (and zeros to the pooled vector); CLIP-L and bigG are padded
    with empty-prompt windows to the same count, as ComfyUI does.
    """
    texts = {"clip_l": clip_l, "clip_g": clip_g, "t5xxl": t5xxl}
    tokens = {}
    for part in clip.parts:
        text = texts[part.slot.name]
        omitted = empty_padding == "none" and not text
        tokens[part.slot.name] = (TokenWindows((), (), part.tokenizer.pad_token) if omitted
                                  else part.tokenizer.tokenize_with_weights(text))
    clips = [name for name in ("clip_l", "clip_g") if name in tokens]
    count = max((len(tokens[name].ids) for name in clips), default=0)
    for name in clips:
        tokens[name] = padded_windows(tokens[name], count, clip.part(name).tokenizer)
    cond, pooled = clip.encode_tokens(tokens)
    return [[cond, {"pooled_output": pooled}]]


def parse_layers(text: str) -> tuple[int, ...]:
    """Block indices written as "7, 8, 9" (ComfyUI's format)."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def skip_layer_guidance(model: DiffusionModel, blocks: tuple[int, ...], scale: float, start_percent: float,
                        end_percent: float) -> CfgHook:
    """The post-CFG hook of skip-layer guidance (Stability's SLG, as ComfyUI's SkipLayerGuidanceDiT).

    While sigma lies between the sigmas at start_percent and end_percent, the positive prompt is
    predicted again with `blocks` left out (x0_skip), and the guided x0 moves away from it:
    x0 += scale (x0_cond - x0_skip).
    """
    if not isinstance(model.network, DiffusionNetwork) or not isinstance(model.network.managed.module, MMDiT):
        raise ValueError(f"SkipLayerGuidanceSD3 skips MMDiT joint blocks; this MODEL ({model.family}) has none")
    depth = model.network.managed.module.config.depth
    if any(not 0 <= block < depth for block in blocks):
        raise ValueError(f"layers {blocks}: this MMDiT has joint blocks 0 to {depth - 1}")
    skipping = NetworkDenoiser(model.network.with_module_options(skip_blocks=blocks), model.model_sampling)
    sigma_start = model.model_sampling.percent_to_sigma(start_percent)
    sigma_end = model.model_sampling.percent_to_sigma(end_percent)

    def hook(step: GuidanceStep) -> Tensor:
        sigma = float(step.sigma.reshape(-1)[0])
        if scale <= 0 or not sigma_end <= sigma <= sigma_start:
            return step.denoised
        (skipped,) = predict_conditions(skipping, [step.positive], step.x, step.sigma)
        return step.denoised + (step.cond - skipped) * scale

    return hook


@node(returns=["MODEL"], category="advanced/guidance", display_name="SkipLayerGuidanceSD3")
def SkipLayerGuidanceSD3(model=Socket("MODEL"), layers: str = String("7, 8, 9"),
                         scale: float = Float(3.0, min=0.0, max=10.0, step=0.1),
                         start_percent: float = Float(0.01, min=0.0, max=1.0, step=0.001),
                         end_percent: float = Float(0.15, min=0.0, max=1.0, step=0.001)):
    """Skip-layer guidance for SD3.5: steers away from a prediction made without some joint blocks (7-9 for Medium)."""
    return model.with_post_cfg(skip_layer_guidance(model, parse_layers(layers), scale, start_percent, end_percent))
