"""Sigmagraph's built-in nodes as ComfyUI-classic classes, for the `nodes` and `comfy_extras` facades.

Packs subclass these classes (SaveImage, LoraLoader, VAEDecode...) and call them directly
(`nodes.VAEDecode().decode(vae, samples)`). Each class is generated from the node's spec: its
INPUT_TYPES, RETURN_TYPES, CATEGORY... and ComfyUI's FUNCTION, a method that takes ComfyUI's
arguments in ComfyUI's order. A call converts the arguments from ComfyUI's shapes (values.py),
supplies the hidden RunContext (the running node's, or one over the active Config), runs the
spec's function, and returns a tuple, or {"ui": ..., "result": ...} for output nodes, as ComfyUI.

SaveImage and PreviewImage are the exception: packs rely on their instance attributes
(output_dir, type, prefix_append, compress_level), so their method is written out once here.
"""

from __future__ import annotations

import inspect
import random
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

import torch
from PIL.PngImagePlugin import PngInfo

from sigmagraph.engine import ALWAYS_RUN, Config, Hidden, NodeSpec
from sigmagraph.engine.discovery import load_packs
from sigmagraph.engine.node import normalize_result
from sigmagraph.engine.spec import ComboInput, InputSpec, OutputSpec, SocketInput
from sigmagraph.nodes.packs.image_output import png_metadata, save_images

from . import folders, state
from .values import from_comfy, to_comfy


@dataclass(frozen=True)
class ComfyName:
    """Where ComfyUI defines a core node, and how its method is called."""

    module: str | None  # the ComfyUI module that defines the class (None: Sigmagraph's own node)
    function: str  # the class's FUNCTION
    leading: tuple[str, ...] = ()  # arguments ComfyUI's method takes first (the model before the data)
    choice_lists: tuple[tuple[str, str], ...] = ()  # (class attribute, combo input): choices packs read off the class


NODES = "nodes"
SAMPLING = "comfy_extras.nodes_custom_sampler"
MODEL_ADVANCED = "comfy_extras.nodes_model_advanced"
SDXL = "comfy_extras.nodes_clip_sdxl"
MASK = "comfy_extras.nodes_mask"
AYS = "comfy_extras.nodes_align_your_steps"
UPSCALE = "comfy_extras.nodes_upscale_model"
LATENT = "comfy_extras.nodes_latent"
SD3 = "comfy_extras.nodes_sd3"
FLUX = "comfy_extras.nodes_flux"
PERP_NEG = "comfy_extras.nodes_perpneg"

COMFY_NAMES: dict[str, ComfyName] = {
    "CLIPTextEncode": ComfyName(NODES, "encode", ("clip",)),
    "CLIPSetLastLayer": ComfyName(NODES, "set_last_layer"),
    "ConditioningCombine": ComfyName(NODES, "combine"),
    "ConditioningConcat": ComfyName(NODES, "concat"),
    "ConditioningSetArea": ComfyName(NODES, "append"),
    "ConditioningSetTimestepRange": ComfyName(NODES, "set_range"),
    "ConditioningZeroOut": ComfyName(NODES, "zero_out"),
    "VAEDecode": ComfyName(NODES, "decode", ("vae",)),
    "VAEDecodeTiled": ComfyName(NODES, "decode", ("vae",)),
    "VAEEncode": ComfyName(NODES, "encode", ("vae",)),
    "VAEEncodeTiled": ComfyName(NODES, "encode", ("vae",)),
    "VAEEncodeForInpaint": ComfyName(NODES, "encode", ("vae",)),
    "CheckpointLoaderSimple": ComfyName(NODES, "load_checkpoint"),
    "UNETLoader": ComfyName(NODES, "load_unet"),
    "VAELoader": ComfyName(NODES, "load_vae"),
    "CLIPLoader": ComfyName(NODES, "load_clip"),
    "DualCLIPLoader": ComfyName(NODES, "load_clip"),
    "LoraLoader": ComfyName(NODES, "load_lora"),
    "LoraLoaderModelOnly": ComfyName(NODES, "load_lora_model_only"),
    "ControlNetLoader": ComfyName(NODES, "load_controlnet"),
    "DiffControlNetLoader": ComfyName(NODES, "load_controlnet"),
    "ControlNetApply": ComfyName(NODES, "apply_controlnet"),
    "ControlNetApplyAdvanced": ComfyName(NODES, "apply_controlnet"),
    "EmptyLatentImage": ComfyName(NODES, "generate"),
    "LatentUpscale": ComfyName(NODES, "upscale", choice_lists=(("upscale_methods", "upscale_method"),
                                                               ("crop_methods", "crop"))),
    "LatentUpscaleBy": ComfyName(NODES, "upscale", choice_lists=(("upscale_methods", "upscale_method"),)),
    "LatentFromBatch": ComfyName(NODES, "frombatch"),
    "RepeatLatentBatch": ComfyName(NODES, "repeat"),
    "SetLatentNoiseMask": ComfyName(NODES, "set_mask"),
    "SaveLatent": ComfyName(NODES, "save"),
    "LoadLatent": ComfyName(NODES, "load"),
    "KSampler": ComfyName(NODES, "sample"),
    "KSamplerAdvanced": ComfyName(NODES, "sample"),
    "SaveImage": ComfyName(NODES, "save_images"),
    "PreviewImage": ComfyName(NODES, "save_images"),
    "LoadImage": ComfyName(NODES, "load_image"),
    "LoadImageMask": ComfyName(NODES, "load_image"),
    "ImageScale": ComfyName(NODES, "upscale", choice_lists=(("upscale_methods", "upscale_method"),
                                                            ("crop_methods", "crop"))),
    "ImageScaleBy": ComfyName(NODES, "upscale", choice_lists=(("upscale_methods", "upscale_method"),)),
    "ImageInvert": ComfyName(NODES, "invert"),
    "ImageBatch": ComfyName(NODES, "batch"),
    "CLIPVisionLoader": ComfyName(NODES, "load_clip"),
    "CLIPVisionEncode": ComfyName(NODES, "encode"),
    "UpscaleModelLoader": ComfyName(UPSCALE, "load_model"),
    "ImageUpscaleWithModel": ComfyName(UPSCALE, "upscale"),
    "CLIPTextEncodeSDXL": ComfyName(SDXL, "encode"),
    "CLIPTextEncodeSDXLRefiner": ComfyName(SDXL, "encode", ("clip",)),
    "SolidMask": ComfyName(MASK, "solid"),
    "MaskComposite": ComfyName(MASK, "combine"),
    "ModelSamplingDiscrete": ComfyName(MODEL_ADVANCED, "patch"),
    "ModelSamplingSD3": ComfyName(MODEL_ADVANCED, "patch"),
    "ModelSamplingFlux": ComfyName(MODEL_ADVANCED, "patch"),
    "ModelSamplingAuraFlow": ComfyName(MODEL_ADVANCED, "patch_aura"),
    "TripleCLIPLoader": ComfyName(SD3, "load_clip"),
    "EmptySD3LatentImage": ComfyName(SD3, "generate"),
    "CLIPTextEncodeSD3": ComfyName(SD3, "encode", ("clip",)),
    "SkipLayerGuidanceSD3": ComfyName(SD3, "skip_guidance_sd3"),
    "CLIPTextEncodeFlux": ComfyName(FLUX, "encode", ("clip",)),
    "FluxGuidance": ComfyName(FLUX, "append"),
    "FluxKontextImageScale": ComfyName(FLUX, "scale"),
    "FluxKontextMultiReferenceLatentMethod": ComfyName(FLUX, "append"),
    "AlignYourStepsScheduler": ComfyName(AYS, "get_sigmas"),
    "PerpNegGuider": ComfyName(PERP_NEG, "get_guider"),
    **{name: ComfyName(LATENT, "op") for name in (
        "LatentAdd", "LatentSubtract", "LatentMultiply", "LatentInterpolate", "LatentBatchSeedBehavior")},
    "LatentBatch": ComfyName(LATENT, "batch"),
    "LatentConcat": ComfyName(LATENT, "execute"),
    "LatentCut": ComfyName(LATENT, "execute"),
    "SamplerCustom": ComfyName(SAMPLING, "sample"),
    "SamplerCustomAdvanced": ComfyName(SAMPLING, "sample"),
    "CFGGuider": ComfyName(SAMPLING, "get_guider"),
    "BasicGuider": ComfyName(SAMPLING, "get_guider"),
    "RandomNoise": ComfyName(SAMPLING, "get_noise"),
    "DisableNoise": ComfyName(SAMPLING, "get_noise"),
    **{name: ComfyName(SAMPLING, "get_sampler") for name in (
        "KSamplerSelect", "SamplerEulerAncestral", "SamplerEulerAncestralCFGPP", "SamplerLMS", "SamplerDPMPP_2S_Ancestral",
        "SamplerDPMPP_SDE", "SamplerDPMPP_2M_SDE", "SamplerDPMPP_3M_SDE", "SamplerDPMAdaptative")},
    **{name: ComfyName(SAMPLING, "get_sigmas") for name in (
        "BasicScheduler", "KarrasScheduler", "ExponentialScheduler", "PolyexponentialScheduler", "VPScheduler",
        "BetaSamplingScheduler", "SDTurboScheduler", "SplitSigmas", "SplitSigmasDenoise", "FlipSigmas")},
}
OWN_NODE = ComfyName(None, "run")  # a node ComfyUI does not have: only in NODE_CLASS_MAPPINGS


class ImageSaver:
    """ComfyUI's SaveImage behaviour; packs subclass it and set output_dir, type, prefix_append, compress_level."""

    def __init__(self) -> None:
        import folder_paths  # the facade, so a pack's monkeypatched output directory is honoured

        self.output_dir = folder_paths.get_output_directory()
        self.type = "output"
        self.prefix_append = ""
        self.compress_level = 4

    def save_images(self, images: torch.Tensor, filename_prefix: str = "ComfyUI", prompt: dict | None = None,
                    extra_pnginfo: dict | None = None) -> dict[str, Any]:
        """Writes each image as a new PNG under output_dir; ComfyUI's {"ui": {"images": [...]}}.

        The prefix takes ComfyUI's %width%, %date%-style and %batch_num% variables. PNGs are
        written at Sigmagraph's compression level whatever `compress_level` says: it changes
        the size of the file, never its pixels.
        """
        from comfy.cli_args import args

        prefix = folders.expand_prefix(filename_prefix + self.prefix_append, images[0].shape[1], images[0].shape[0])
        metadata = PngInfo() if args.disable_metadata else png_metadata(prompt, extra_pnginfo)
        saved = []
        for index, image in enumerate(images):
            saved += save_images(image[None], Path(self.output_dir), prefix.replace("%batch_num%", str(index)),
                                 self.type, metadata)
        return {"ui": {"images": saved}}


class ImagePreviewer(ImageSaver):
    """ComfyUI's PreviewImage behaviour: SaveImage into the temporary folder under a random prefix."""

    def __init__(self) -> None:
        import folder_paths

        self.output_dir = folder_paths.get_temp_directory()
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        self.compress_level = 1


WRITTEN_OUT: dict[str, type] = {"SaveImage": ImageSaver, "PreviewImage": ImagePreviewer}


def _input_types(spec: NodeSpec) -> dict[str, Any]:
    """The spec's INPUT_TYPES for the active Config; the RunContext is supplied, not declared."""
    declared = spec.catalogue_entry(state.config())["input"]
    hidden = {name: kind for name, kind in declared.pop("hidden", {}).items() if kind != Hidden.CONTEXT.value}
    return {**declared, "hidden": hidden} if hidden else declared


def _default(inp: InputSpec) -> Any:
    """The value ComfyUI's method assumes when the argument is left out (empty: none)."""
    if isinstance(inp, SocketInput):
        return None if inp.optional else inspect.Parameter.empty
    if isinstance(inp, ComboInput) and inp.default is None:
        return None if inp.optional else inspect.Parameter.empty
    return inp.default


def _signature(spec: NodeSpec, leading: tuple[str, ...]) -> inspect.Signature:
    """ComfyUI's method signature: `leading` first, then the inputs, then the hidden ones (default None).

    An argument has its default only when every later one has one too, as Python requires;
    inputs whose names are not identifiers (V3's "format.bit_depth") are taken as **inputs.
    """
    named = [i for i in spec.inputs if i.name.isidentifier()]
    ordered = sorted(named, key=lambda i: i.name not in leading)  # stable: the rest keep their order
    defaults = [(i.name, _default(i)) for i in ordered]
    defaults += [(name, None) for name, kind in spec.hidden.items() if kind is not Hidden.CONTEXT]
    parameters, trailing = [], True
    for name, default in reversed(defaults):
        trailing = trailing and default is not inspect.Parameter.empty
        parameters.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=default if trailing else inspect.Parameter.empty))
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    rest = [inspect.Parameter("inputs", inspect.Parameter.VAR_KEYWORD)] if len(named) < len(spec.inputs) else []
    return inspect.Signature([self_parameter, *reversed(parameters), *rest])


def _outgoing(output: OutputSpec, value: Any) -> Any:
    return [to_comfy(output.type, v) for v in value] if output.is_list else to_comfy(output.type, value)


def call(spec: NodeSpec, arguments: dict[str, Any]) -> Any:
    """Runs `spec` on ComfyUI-shaped arguments by input name (defaults for those left out); returns ComfyUI's shape."""
    values = {}
    for inp in spec.inputs:
        default = _default(inp)
        value = arguments.get(inp.name, None if default is inspect.Parameter.empty else default)
        values[inp.name] = from_comfy(inp.type, value) if isinstance(inp, SocketInput) and value is not None else value
    for name, kind in spec.hidden.items():
        values[name] = state.run_context() if kind is Hidden.CONTEXT else arguments.get(name)
    out = normalize_result(spec, spec.function(**values))
    result = tuple(_outgoing(output, value) for output, value in zip(spec.outputs, out.result))
    if out.ui is None:
        return result
    return {"ui": out.ui, "result": result} if result else {"ui": out.ui}


def _method(spec: NodeSpec, name: ComfyName) -> Callable[..., Any]:
    signature = _signature(spec, name.leading)

    def method(*args: Any, **kwargs: Any) -> Any:
        arguments = dict(signature.bind(*args, **kwargs).arguments)
        arguments.update(arguments.pop("inputs", {}))
        return call(spec, arguments)

    method.__signature__ = signature  # type: ignore[attr-defined]
    method.__name__ = method.__qualname__ = name.function
    method.__doc__ = spec.description
    return method


def _is_changed(spec: NodeSpec) -> classmethod:
    """ComfyUI's IS_CHANGED from the spec's fingerprint (NaN: run every time)."""
    fingerprint = spec.fingerprint
    takes_config = "config" in inspect.signature(fingerprint).parameters

    def IS_CHANGED(cls: type, **inputs: Any) -> Any:  # noqa: N802 - ComfyUI's name
        value = fingerprint(**inputs, **({"config": state.config()} if takes_config else {}))
        return float("nan") if isinstance(value, str) and value == ALWAYS_RUN else value

    return classmethod(IS_CHANGED)


def node_class(spec: NodeSpec) -> type:
    """The ComfyUI-classic class of a node spec."""
    name = COMFY_NAMES.get(spec.name, OWN_NODE)
    base = WRITTEN_OUT.get(spec.name, object)
    attributes: dict[str, Any] = {
        "__module__": name.module or NODES,
        "__doc__": spec.description,
        "INPUT_TYPES": classmethod(lambda cls: _input_types(spec)),
        "RETURN_TYPES": tuple(o.type for o in spec.outputs),
        "RETURN_NAMES": tuple(o.name for o in spec.outputs),
        "OUTPUT_IS_LIST": tuple(o.is_list for o in spec.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip or "" for o in spec.outputs),
        "FUNCTION": name.function,
        "CATEGORY": spec.category,
        "DESCRIPTION": spec.description,
        "OUTPUT_NODE": spec.output_node,
        "INPUT_IS_LIST": spec.input_is_list,
        "NOT_IDEMPOTENT": spec.not_idempotent,
        "DEPRECATED": spec.deprecated,
        "EXPERIMENTAL": spec.experimental,
    }
    combos = {inp.name: inp for inp in spec.inputs if isinstance(inp, ComboInput)}
    for attribute, input_name in name.choice_lists:
        attributes[attribute] = list(combos[input_name].choices)
    if spec.fingerprint is not None:
        attributes["IS_CHANGED"] = _is_changed(spec)
    if not hasattr(base, name.function):
        attributes[name.function] = _method(spec, name)
    return type(spec.name, (base,), attributes)


@cache
def builtin_specs() -> dict[str, NodeSpec]:
    """The specs of Sigmagraph's built-in nodes (custom packs are not loaded: they may be importing us)."""
    return load_packs(Config(disable_custom_nodes=True)).nodes


@cache
def core_classes() -> dict[str, type]:
    """Every built-in node as a ComfyUI-classic class, by node name (built once, shared by the facades)."""
    return {name: node_class(spec) for name, spec in builtin_specs().items()}


def classes_in(module: str) -> dict[str, type]:
    """The core classes ComfyUI defines in `module` ("nodes", "comfy_extras.nodes_mask"...)."""
    return {name: cls for name, cls in core_classes().items() if COMFY_NAMES.get(name, OWN_NODE).module == module}


def define_in(namespace: dict[str, Any]) -> dict[str, type]:
    """Puts the core classes of the module with these globals into it; returns them (its NODE_CLASS_MAPPINGS)."""
    classes = classes_in(namespace["__name__"])
    namespace.update(classes)
    return classes


def display_names() -> dict[str, str]:
    """The display name of every built-in node."""
    return {name: spec.display_name for name, spec in builtin_specs().items()}


def common_ksampler(model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                    positive: Any, negative: Any, latent: dict[str, Any], denoise: float = 1.0,
                    disable_noise: bool = False, start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> tuple[dict[str, Any]]:
    """ComfyUI's nodes.common_ksampler: one sampling run, through Sigmagraph's KSampler or KSamplerAdvanced.

    A run over part of the schedule, or without initial noise, is KSamplerAdvanced's. With
    denoise < 1 ComfyUI's schedule is the last `steps` of int(steps / denoise), so the step
    range moves by the steps skipped.
    """
    classes = core_classes()
    if start_step is None and last_step is None and not disable_noise:
        return classes["KSampler"]().sample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                            latent, denoise)
    if denoise <= 0.0:
        return ({**latent},)  # an empty schedule: ComfyUI hands the latent back
    total = steps if denoise > 0.9999 else int(steps / denoise)  # ComfyUI's KSampler's rule
    skipped = total - steps
    return classes["KSamplerAdvanced"]().sample(
        model, "disable" if disable_noise else "enable", seed, total, cfg, sampler_name, scheduler, positive, negative,
        latent, skipped + (start_step or 0), total if last_step is None else skipped + last_step,
        "disable" if force_full_denoise else "enable")
