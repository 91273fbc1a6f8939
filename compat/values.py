"""Sigmagraph values <-> the objects ComfyUI code expects, by socket type, at the boundary of a pack node.

`to_comfy(type, value)` prepares a value a pack receives (a pack node's input, a core node's
output called from a pack); `from_comfy(type, value)` takes back what a pack hands over (its
node's output, a core node's argument). IMAGE, MASK, LATENT dicts, CONDITIONING lists, SIGMAS
and the widget types already have ComfyUI's shapes and pass through, as does any type without
an entry. MODEL, CLIP, VAE, SAMPLER and GUIDER get facades (comfy.model_patcher.ModelPatcher,
comfy.sd.CLIP, comfy.sd.VAE, comfy.samplers.KSAMPLER and CFGGuider): each is one line in CONVERTERS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sigmagraph.engine.spec import InputSpec, SocketInput
from sigmagraph.nodes.diffusion_model import DiffusionModel
from sigmagraph.nodes.guiders import Guider, SamplerChoice
from sigmagraph.nodes.models.clip_vision import VisionOutput
from sigmagraph.nodes.models.clip_vision_model import CLIPVision
from sigmagraph.nodes.models.controlnet import ControlNetNetwork
from sigmagraph.nodes.models.runtime import CLIP as NativeCLIP
from sigmagraph.nodes.models.runtime import VAE as NativeVAE
from sigmagraph.nodes.models.upscale_model import UpscaleModel

from .clip_vae import CLIP, VAE, clip_value, vae_value
from .clip_vision import ClipVisionModel, Output, clip_vision_value, output_value
from .controlnet import ControlNet, controlnet_value
from .guiders import CFGGuider, comfy_guider, guider_value
from .patcher import ModelPatcher, diffusion_model
from .samplers import Sampler, comfy_sampler_value, sampler_value
from .upscale_model import ImageModelDescriptor, upscale_model_value


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Converter:
    """The two directions of one socket type's conversion."""

    to_comfy: Callable[[Any], Any] = _same
    from_comfy: Callable[[Any], Any] = _same


PASS_THROUGH = Converter()


def _facade(native: type, comfy: type, to_comfy: Callable[[Any], Any], from_comfy: Callable[[Any], Any]) -> Converter:
    """Between a Sigmagraph type and its ComfyUI facade; anything else (None, a converted value) passes through."""
    return Converter(lambda value: to_comfy(value) if isinstance(value, native) else value,
                     lambda value: from_comfy(value) if isinstance(value, comfy) else value)

CONVERTERS: dict[str, Converter] = {
    "IMAGE": PASS_THROUGH,  # [B, H, W, C] floats in 0..1 in both
    "MASK": PASS_THROUGH,  # [B, H, W]
    "LATENT": PASS_THROUGH,  # {"samples", "noise_mask"?, "batch_index"?}, unscaled in both
    "CONDITIONING": PASS_THROUGH,  # [[cond, options], ...]
    "SIGMAS": PASS_THROUGH,  # 1-D float tensor ending in 0
    "MODEL": _facade(DiffusionModel, ModelPatcher, ModelPatcher.of, diffusion_model),
    "CLIP": _facade(NativeCLIP, CLIP, CLIP.of, clip_value),
    "VAE": _facade(NativeVAE, VAE, VAE.of, vae_value),
    "SAMPLER": _facade(SamplerChoice, Sampler, comfy_sampler_value, sampler_value),  # KSAMPLER
    "GUIDER": _facade(Guider, CFGGuider, comfy_guider, guider_value),
    "CONTROL_NET": _facade(ControlNetNetwork, ControlNet, ControlNet.of, controlnet_value),
    "UPSCALE_MODEL": _facade(UpscaleModel, ImageModelDescriptor, ImageModelDescriptor.of, upscale_model_value),
    "CLIP_VISION": _facade(CLIPVision, ClipVisionModel, ClipVisionModel.of, clip_vision_value),
    "CLIP_VISION_OUTPUT": _facade(VisionOutput, Output, Output.of, output_value),
}


def to_comfy(socket_type: str, value: Any) -> Any:
    """`value` of `socket_type` in the shape ComfyUI code expects."""
    return CONVERTERS.get(socket_type, PASS_THROUGH).to_comfy(value)


def from_comfy(socket_type: str, value: Any) -> Any:
    """A ComfyUI-shaped `value` of `socket_type` as the Sigmagraph value."""
    return CONVERTERS.get(socket_type, PASS_THROUGH).from_comfy(value)


def input_type(spec: InputSpec) -> str:
    """The socket type of an input: a socket's type, a widget's kind (INT, COMBO...)."""
    return spec.type if isinstance(spec, SocketInput) else spec.kind


def converted(convert: Callable[[str, Any], Any], socket_type: str, value: Any, is_list: bool) -> Any:
    """`convert` (to_comfy or from_comfy) applied to a value, or to each value of a list.

    None (an optional input left out, a lazy one not evaluated) and an ExecutionBlocker (the engine's or
    ComfyUI's, known by name) are no values: they pass as they are.
    """
    if value is None or type(value).__name__ == "ExecutionBlocker":
        return value
    return [converted(convert, socket_type, v, False) for v in value] if is_list else convert(socket_type, value)
