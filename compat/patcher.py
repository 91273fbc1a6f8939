"""The MODEL facade: ComfyUI's ModelPatcher over a Sigmagraph DiffusionModel, and the way back.

`ModelPatcher.of(model)` is what a pack receives for a MODEL: `model` (a models.BaseModel),
`model_options` and `object_patches`, clone(), the set_model_* methods, add_patches. What a
pack hands back becomes a DiffusionModel again (`diffusion_model(patcher)`), its options turned
into Sigmagraph's own hooks:

- `sampler_cfg_function` -> `cfg_function`, `sampler_post_cfg_function` -> `post_cfg`,
  `model_function_wrapper` -> `model_wrapper`, each called with ComfyUI's arguments
  (`cfg_arguments`, `post_cfg_arguments`, `apply_model_arguments`);
- the object patches `model_sampling` and `latent_format` -> the model's own;
- LoRA weight patches (`add_patches` of comfy.lora's layers) -> LoRA patches of the network.

A model's own hooks appear in model_options as ComfyUI functions that remember the hook, so a
MODEL that passes through a pack unchanged comes back as the very same DiffusionModel. Options
Sigmagraph does not run (attention patches, wrappers, pre-CFG functions...) are named in a warning.
"""

from __future__ import annotations

import copy
import inspect
import logging
import uuid
from dataclasses import replace
from functools import cache
from typing import Any, Callable

import torch
from torch import Tensor

from sigmagraph.nodes.diffusion_model import DiffusionModel
from sigmagraph.nodes.models.lora import LoraAdapter, LoraLayer, LoraPatch
from sigmagraph.nodes.sampling.guidance import CfgHook, ConditionedModel, GuidanceStep, ModelWrapper

from .latents import native_latent_format
from .model_sampling import native as native_model_sampling
from .models import COMFY_ONLY_INPUTS, BaseModel

log = logging.getLogger("sigmagraph.compat")

# model_options entries Sigmagraph turns into its own hooks; `transformer_options` matters only when not empty.
RUN_OPTIONS = frozenset({"sampler_cfg_function", "sampler_post_cfg_function", "model_function_wrapper",
                         "transformer_options"})
UNET_PREFIX = "diffusion_model."


# ------------------------------------------------------------------------------------------------
# ComfyUI's arguments to a model's hooks, from one guidance step


def cfg_arguments(step: GuidanceStep, model: BaseModel, options: dict[str, Any]) -> dict[str, Any]:
    """The args of a sampler_cfg_function: predictions as noise (x - x0) under "cond"/"uncond", and as x0."""
    return {"cond": step.x - step.cond, "uncond": step.x - step.uncond, "cond_scale": step.cfg,
            "timestep": step.sigma, "input": step.x, "sigma": step.sigma, "cond_denoised": step.cond,
            "uncond_denoised": step.uncond, "model": model, "model_options": options, "input_cond": step.positive,
            "input_uncond": step.negative}


def post_cfg_arguments(step: GuidanceStep, model: BaseModel, options: dict[str, Any]) -> dict[str, Any]:
    """The args of a sampler_post_cfg_function: the guided x0 so far, the predictions, and the conditions."""
    return {"denoised": step.denoised, "cond": step.positive, "uncond": step.negative, "cond_scale": step.cfg,
            "model": model, "uncond_denoised": step.uncond, "cond_denoised": step.cond, "sigma": step.sigma,
            "model_options": options, "input": step.x}


def _step(args: dict[str, Any], denoised: Tensor | None, positive: Any, negative: Any) -> GuidanceStep:
    cond, uncond, cfg = args["cond_denoised"], args["uncond_denoised"], args["cond_scale"]
    return GuidanceStep(args["input"], args["sigma"], cond, uncond, cfg,
                        uncond + (cond - uncond) * cfg if denoised is None else denoised, positive or (), negative)


def apply_model_arguments(x: Tensor, sigma: Tensor, inputs: dict[str, Tensor], lists: tuple[int, ...],
                          options: dict[str, Any]) -> dict[str, Any]:
    """The args of a model_function_wrapper: the batch, its sigmas, its inputs (`c`) and which list each chunk is."""
    transformer_options = {**options.get("transformer_options", {}), "cond_or_uncond": list(lists)}
    return {"input": x, "timestep": sigma, "c": {**inputs, "transformer_options": transformer_options},
            "cond_or_uncond": list(lists)}


class _OwnHook:
    """A Sigmagraph hook shown to packs as a ComfyUI function; copies of the options keep the hook itself."""

    def __init__(self, hook: Callable[..., Any]):
        self.hook = hook

    def __deepcopy__(self, memo: dict) -> "_OwnHook":
        return self


class OwnCfgFunction(_OwnHook):
    """A model's cfg_function as ComfyUI's sampler_cfg_function (noise out)."""

    def __call__(self, args: dict[str, Any]) -> Tensor:
        return args["input"] - self.hook(_step(args, None, args.get("input_cond"), args.get("input_uncond")))


class OwnPostCfgFunction(_OwnHook):
    """A model's post_cfg hook as ComfyUI's sampler_post_cfg_function (x0 out)."""

    def __call__(self, args: dict[str, Any]) -> Tensor:
        return self.hook(_step(args, args["denoised"], args.get("cond"), args.get("uncond")))


class OwnModelWrapper(_OwnHook):
    """A model's model_wrapper as ComfyUI's model_function_wrapper."""

    def __call__(self, apply_model: Callable[..., Tensor], args: dict[str, Any]) -> Tensor:
        inputs = {k: v for k, v in args["c"].items() if k not in COMFY_ONLY_INPUTS}
        return self.hook(apply_model, args["input"], args["timestep"], inputs, tuple(args["cond_or_uncond"]))


def cfg_hook(function: Callable[[dict], Tensor], model: BaseModel, options: dict[str, Any]) -> CfgHook:
    """A ComfyUI sampler_cfg_function as a model's cfg_function."""
    if isinstance(function, OwnCfgFunction):
        return function.hook
    return lambda step: step.x - function(cfg_arguments(step, model, options))


def post_cfg_hook(function: Callable[[dict], Tensor], model: BaseModel, options: dict[str, Any]) -> CfgHook:
    """A ComfyUI sampler_post_cfg_function as a model's post_cfg hook."""
    if isinstance(function, OwnPostCfgFunction):
        return function.hook
    return lambda step: function(post_cfg_arguments(step, model, options))


def model_wrapper(function: Callable[[Callable, dict], Tensor], options: dict[str, Any]) -> ModelWrapper:
    """A ComfyUI model_function_wrapper as a model's model_wrapper: `apply_model(x, sigma, **c)` is the model call."""
    if isinstance(function, OwnModelWrapper):
        return function.hook

    def wrapper(model: ConditionedModel, x: Tensor, sigma: Tensor, inputs: dict[str, Tensor],
                lists: tuple[int, ...]) -> Tensor:
        def apply_model(x: Tensor, t: Tensor, **c: Any) -> Tensor:
            return model(x, t, **{k: v for k, v in c.items() if v is not None and k not in COMFY_ONLY_INPUTS})

        return function(apply_model, apply_model_arguments(x, sigma, inputs, lists, options))

    return wrapper


def hooks(options: dict[str, Any], model: BaseModel) -> tuple[CfgHook | None, tuple[CfgHook, ...], ModelWrapper | None]:
    """(cfg_function, post_cfg, model_wrapper) of a model_options dict."""
    cfg = options.get("sampler_cfg_function")
    wrap = options.get("model_function_wrapper")
    return (None if cfg is None else cfg_hook(cfg, model, options),
            tuple(post_cfg_hook(fn, model, options) for fn in options.get("sampler_post_cfg_function", ())),
            None if wrap is None else model_wrapper(wrap, options))


def own_options(model: DiffusionModel) -> dict[str, Any]:
    """The model_options of a DiffusionModel: its own hooks as ComfyUI functions."""
    options: dict[str, Any] = {"transformer_options": {}}
    if model.cfg_function is not None:
        options["sampler_cfg_function"] = OwnCfgFunction(model.cfg_function)
    if model.post_cfg:
        options["sampler_post_cfg_function"] = [OwnPostCfgFunction(hook) for hook in model.post_cfg]
    if model.model_wrapper is not None:
        options["model_function_wrapper"] = OwnModelWrapper(model.model_wrapper)
    return options


# ------------------------------------------------------------------------------------------------
# Weight patches (comfy.lora's layers, added with add_patches)


def _lora_layer(patch: Any, key: str) -> LoraLayer:
    """A weight patch as a LoRA layer: comfy.lora's (a LoraLayer) or ComfyUI's ("lora", (up, down, alpha, ...))."""
    if isinstance(patch, LoraLayer):
        return patch
    if isinstance(patch, tuple) and len(patch) == 2 and patch[0] == "lora":
        up, down, alpha = patch[1][:3]
        return LoraLayer(up, down, None if alpha is None else float(alpha))
    raise ValueError(f"weight patch of {key}: only LoRA layers (comfy.lora.load_lora's) can be applied, "
                     f"not {type(patch).__name__}")


def lora_patches(patches: dict[str, list[tuple]], prefix: str, source: str) -> tuple[LoraPatch, ...]:
    """ModelPatcher.patches under `prefix` as Sigmagraph LoRA patches, one per strength and layer set."""
    groups: list[tuple[float, dict[str, LoraLayer]]] = []
    for key, entries in patches.items():
        if not key.startswith(prefix):
            continue
        for strength_patch, patch, strength_model, offset, function in entries:
            if strength_model != 1.0 or offset is not None or function is not None:
                raise ValueError(f"weight patch of {key}: a strength_model, offset or function other than "
                                 f"ComfyUI's defaults is not supported")
            group = next((layers for strength, layers in groups if strength == strength_patch
                          and key[len(prefix):] not in layers), None)
            if group is None:
                group = {}
                groups.append((float(strength_patch), group))
            group[key[len(prefix):]] = _lora_layer(patch, key)
    return tuple(LoraPatch(LoraAdapter(source, layers), strength) for strength, layers in groups)


# ------------------------------------------------------------------------------------------------
# ModelPatcher


def _patch_setter(name: str) -> Callable[..., None]:
    def setter(self: "ModelPatcher", patch: Any) -> None:
        self.set_model_patch(patch, name)
    setter.__doc__ = f"Adds a transformer_options['patches'][{name!r}] entry (Sigmagraph does not run it)."
    return setter


def _replace_setter(name: str) -> Callable[..., None]:
    def setter(self: "ModelPatcher", patch: Any, block_name: str, number: int,
               transformer_index: int | None = None) -> None:
        self.set_model_patch_replace(patch, name, block_name, number, transformer_index)
    setter.__doc__ = f"Adds a transformer_options['patches_replace'][{name!r}] entry (Sigmagraph does not run it)."
    return setter


class ModelPatcher:
    """ComfyUI's ModelPatcher: a model object with the options, object patches and weight patches of one branch."""

    def __init__(self, model: Any, load_device: Any, offload_device: Any, size: int = 0,
                 weight_inplace_update: bool = False):
        self.model = model
        self.load_device, self.offload_device = load_device, offload_device
        self.size = size
        self.weight_inplace_update = weight_inplace_update
        self.model_options: dict[str, Any] = {"transformer_options": {}}
        self.object_patches: dict[str, Any] = {}
        self.object_patches_backup: dict[str, Any] = {}
        self.patches: dict[str, list[tuple]] = {}
        self.patches_uuid = uuid.uuid4()
        self.backup: dict[str, Any] = {}
        self.weight_wrapper_patches: dict[str, list] = {}
        self.force_cast_weights = False
        self.parent: ModelPatcher | None = None
        self.attachments: dict[str, Any] = {}
        self.additional_models: dict[str, list] = {}
        self.callbacks: dict[str, dict[str, list]] = {}
        self.wrappers: dict[str, dict[str, list]] = {}
        self.injections: dict[str, list] = {}
        self.is_clip = False
        self._lora_cache: dict[str, tuple[uuid.UUID, tuple[LoraPatch, ...]]] = {}

    @classmethod
    def of(cls, model: DiffusionModel) -> "ModelPatcher":
        """The patcher a pack receives for a MODEL."""
        patcher = cls(BaseModel.of(model), model.device, torch.device("cpu"))
        patcher.model_options = own_options(model)
        return patcher

    def model_size(self) -> int:
        if self.size == 0 and isinstance(self.model, torch.nn.Module):
            self.size = sum(t.nelement() * t.element_size() for t in self.model.state_dict().values())
        return self.size

    def model_dtype(self) -> torch.dtype | None:
        get_dtype = getattr(self.model, "get_dtype", None)
        return get_dtype() if get_dtype is not None else None

    def clone(self) -> "ModelPatcher":
        """A patcher of the same model whose options and patches can change without changing this one's."""
        n = copy.copy(self)
        n.model_options = copy.deepcopy(self.model_options)
        n.object_patches = self.object_patches.copy()
        n.patches = {key: entries[:] for key, entries in self.patches.items()}
        n.weight_wrapper_patches = self.weight_wrapper_patches.copy()
        n.attachments = self.attachments.copy()
        n.additional_models = {k: list(v) for k, v in self.additional_models.items()}
        n.callbacks = {k: {k1: c1.copy() for k1, c1 in c.items()} for k, c in self.callbacks.items()}
        n.wrappers = {k: {k1: w1.copy() for k1, w1 in w.items()} for k, w in self.wrappers.items()}
        n.injections = {k: i.copy() for k, i in self.injections.items()}
        n._lora_cache = dict(self._lora_cache)
        n.parent = self
        return n

    def is_clone(self, other: Any) -> bool:
        return getattr(other, "model", None) is self.model

    def clone_has_same_weights(self, clone: "ModelPatcher") -> bool:
        return self.is_clone(clone) and self.patches_uuid == clone.patches_uuid

    # -- sampling options -------------------------------------------------------------------------

    def set_model_sampler_cfg_function(self, sampler_cfg_function: Callable, disable_cfg1_optimization: bool = False):
        """Replaces the CFG blend: `function(args) -> noise` with ComfyUI's args (cond/uncond as noise)."""
        if len(inspect.signature(sampler_cfg_function).parameters) == 3:  # ComfyUI's old (cond, uncond, cond_scale)
            self.model_options["sampler_cfg_function"] = lambda args: sampler_cfg_function(
                args["cond"], args["uncond"], args["cond_scale"])
        else:
            self.model_options["sampler_cfg_function"] = sampler_cfg_function
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_sampler_post_cfg_function(self, post_cfg_function: Callable, disable_cfg1_optimization: bool = False):
        """Adds a hook on the guided x0: `function(args) -> x0`."""
        self.model_options = set_model_options_post_cfg_function(self.model_options, post_cfg_function,
                                                                 disable_cfg1_optimization)

    def set_model_sampler_pre_cfg_function(self, pre_cfg_function: Callable, disable_cfg1_optimization: bool = False):
        """Adds a pre-CFG function (recorded; Sigmagraph does not run them)."""
        self.model_options = set_model_options_pre_cfg_function(self.model_options, pre_cfg_function,
                                                                disable_cfg1_optimization)

    def set_model_sampler_calc_cond_batch_function(self, function: Callable) -> None:
        self.model_options["sampler_calc_cond_batch_function"] = function

    def set_model_unet_function_wrapper(self, unet_wrapper_function: Callable) -> None:
        """Runs each batched model call as `function(apply_model, {"input", "timestep", "c", "cond_or_uncond"})`."""
        self.model_options["model_function_wrapper"] = unet_wrapper_function

    def set_model_denoise_mask_function(self, denoise_mask_function: Callable) -> None:
        self.model_options["denoise_mask_function"] = denoise_mask_function

    def set_model_patch(self, patch: Any, name: str) -> None:
        patches = self.model_options["transformer_options"].setdefault("patches", {})
        patches[name] = patches.get(name, []) + [patch]

    def set_model_patch_replace(self, patch: Any, name: str, block_name: str, number: int,
                                transformer_index: int | None = None) -> None:
        self.model_options = set_model_options_patch_replace(self.model_options, patch, name, block_name, number,
                                                             transformer_index)

    def set_model_compute_dtype(self, dtype: torch.dtype) -> None:
        self.add_object_patch("manual_cast_dtype", dtype)

    # -- object and weight patches ----------------------------------------------------------------

    def add_object_patch(self, name: str, obj: Any) -> None:
        """Replaces the model's attribute `name` (a dotted path) for this patcher's branch."""
        self.object_patches[name] = obj

    def get_model_object(self, name: str) -> Any:
        """The model's attribute at a dotted path, this branch's object patch first."""
        if name in self.object_patches:
            return self.object_patches[name]
        target = self.model
        for part in name.split("."):
            target = getattr(target, part)
        return target

    def model_state_dict(self, filter_prefix: str | None = None) -> dict[str, Tensor]:
        sd = self.model.state_dict()
        return sd if filter_prefix is None else {k: v for k, v in sd.items() if k.startswith(filter_prefix)}

    def add_patches(self, patches: dict[Any, Any], strength_patch: float = 1.0, strength_model: float = 1.0) -> list:
        """Adds weight patches (comfy.lora.load_lora's) by model key; returns the keys the model has."""
        keys = self.model.state_dict().keys()
        added = []
        for k, patch in patches.items():
            key, offset, function = (k, None, None) if isinstance(k, str) else (*k[:2], k[2] if len(k) > 2 else None)
            if key in keys:
                added.append(k)
                self.patches.setdefault(key, []).append((strength_patch, patch, strength_model, offset, function))
        self.patches_uuid = uuid.uuid4()
        return added

    def lora_patches(self, prefix: str, source: str) -> tuple[LoraPatch, ...]:
        """The LoRA layers added under `prefix` as Sigmagraph patches, the same objects while they do not change.

        The same objects let the model manager see that the weights already carry them.
        """
        cached = self._lora_cache.get(prefix)
        if cached is None or cached[0] != self.patches_uuid:
            cached = self._lora_cache[prefix] = (self.patches_uuid, lora_patches(self.patches, prefix, source))
        return cached[1]

    # -- attachments, injections, additional models (recorded; Sigmagraph's sampling does not use them) ---

    def set_attachments(self, key: str, attachment: Any) -> None:
        self.attachments[key] = attachment

    def remove_attachments(self, key: str) -> None:
        self.attachments.pop(key, None)

    def get_attachment(self, key: str) -> Any:
        return self.attachments.get(key)

    def set_injections(self, key: str, injections: list) -> None:
        self.injections[key] = injections

    def remove_injections(self, key: str) -> None:
        self.injections.pop(key, None)

    def get_injections(self, key: str) -> list | None:
        return self.injections.get(key)

    def set_additional_models(self, key: str, models: list) -> None:
        self.additional_models[key] = models

    def remove_additional_models(self, key: str) -> None:
        self.additional_models.pop(key, None)

    def get_additional_models_with_key(self, key: str) -> list:
        return self.additional_models.get(key, [])

    def get_additional_models(self) -> list:
        return [m for models in self.additional_models.values() for m in models]


def keyed_add(table: dict, kind: str, key: str | None, function: Callable) -> None:
    """Adds a function to one of ComfyUI's wrapper or callback tables ({kind: {key: [functions]}})."""
    table.setdefault(kind, {}).setdefault(key, []).append(function)


def keyed_get(table: dict, kind: str, key: str | None) -> list[Callable]:
    """The functions of a table under one kind and key."""
    return list(table.get(kind, {}).get(key, []))


def keyed_all(table: dict, kind: str) -> list[Callable]:
    """The functions of a table under one kind, every key."""
    return [function for functions in table.get(kind, {}).values() for function in functions]


def _add_table_methods(table: str, singular: str) -> None:
    """ModelPatcher's add/remove/get methods of its `callbacks` or `wrappers` table (recorded, not run)."""
    def add(self: ModelPatcher, kind: str, function: Callable) -> None:
        keyed_add(getattr(self, table), kind, None, function)

    def add_with_key(self: ModelPatcher, kind: str, key: str | None, function: Callable) -> None:
        keyed_add(getattr(self, table), kind, key, function)

    def remove_with_key(self: ModelPatcher, kind: str, key: str | None) -> None:
        getattr(self, table).get(kind, {}).pop(key, None)

    def get(self: ModelPatcher, kind: str, key: str | None) -> list[Callable]:
        return keyed_get(getattr(self, table), kind, key)

    def get_all(self: ModelPatcher, kind: str) -> list[Callable]:
        return keyed_all(getattr(self, table), kind)

    for name, method in ((f"add_{singular}", add), (f"add_{singular}_with_key", add_with_key),
                         (f"remove_{table}_with_key", remove_with_key), (f"get_{table}", get),
                         (f"get_all_{table}", get_all)):
        setattr(ModelPatcher, name, method)


_add_table_methods("callbacks", "callback")
_add_table_methods("wrappers", "wrapper")
for _method, _name in (("set_model_attn1_patch", "attn1_patch"), ("set_model_attn2_patch", "attn2_patch"),
                       ("set_model_attn1_output_patch", "attn1_output_patch"),
                       ("set_model_attn2_output_patch", "attn2_output_patch"),
                       ("set_model_input_block_patch", "input_block_patch"),
                       ("set_model_input_block_patch_after_skip", "input_block_patch_after_skip"),
                       ("set_model_output_block_patch", "output_block_patch"),
                       ("set_model_middle_block_after_patch", "middle_block_after_patch"),
                       ("set_model_emb_patch", "emb_patch"),
                       ("set_model_forward_timestep_embed_patch", "forward_timestep_embed_patch"),
                       ("set_model_double_block_patch", "double_block"), ("set_model_post_input_patch", "post_input")):
    setattr(ModelPatcher, _method, _patch_setter(_name))
for _method, _name in (("set_model_attn1_replace", "attn1"), ("set_model_attn2_replace", "attn2")):
    setattr(ModelPatcher, _method, _replace_setter(_name))


def set_model_options_patch_replace(model_options: dict, patch: Any, name: str, block_name: str, number: int,
                                    transformer_index: int | None = None) -> dict:
    """model_options with `patch` replacing block (block_name, number[, transformer_index]) of `name`."""
    to = dict(model_options["transformer_options"])
    replaces = dict(to.get("patches_replace", {}))
    replaces[name] = {**replaces.get(name, {}), (block_name, number, *(() if transformer_index is None
                                                                      else (transformer_index,))): patch}
    to["patches_replace"] = replaces
    model_options["transformer_options"] = to
    return model_options


def set_model_options_post_cfg_function(model_options: dict, post_cfg_function: Callable,
                                        disable_cfg1_optimization: bool = False) -> dict:
    """model_options with one more sampler_post_cfg_function."""
    model_options["sampler_post_cfg_function"] = [*model_options.get("sampler_post_cfg_function", ()),
                                                  post_cfg_function]
    if disable_cfg1_optimization:
        model_options["disable_cfg1_optimization"] = True
    return model_options


def set_model_options_pre_cfg_function(model_options: dict, pre_cfg_function: Callable,
                                       disable_cfg1_optimization: bool = False) -> dict:
    """model_options with one more sampler_pre_cfg_function."""
    model_options["sampler_pre_cfg_function"] = model_options.get("sampler_pre_cfg_function", []) + [pre_cfg_function]
    if disable_cfg1_optimization:
        model_options["disable_cfg1_optimization"] = True
    return model_options


def create_model_options_clone(orig_model_options: dict) -> dict:
    """A copy of model_options whose nested dicts and lists can change without changing the original."""
    def copied(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copied(v) for k, v in value.items()}
        return value.copy() if isinstance(value, list) else value
    return copied(orig_model_options)


# ------------------------------------------------------------------------------------------------
# The way back


def _ignored(patcher: ModelPatcher) -> list[str]:
    """What a patcher asks for that Sigmagraph's sampling does not do."""
    ignored = [key for key in patcher.model_options if key not in RUN_OPTIONS]
    ignored += [f"transformer_options[{key!r}]" for key in patcher.model_options.get("transformer_options", {})]
    ignored += [f"object patch {name!r}" for name in patcher.object_patches
                if name not in ("model_sampling", "latent_format")]
    ignored += [f"{kind} {name!r}" for kind, table in (("wrapper", patcher.wrappers), ("callback", patcher.callbacks))
                for name, keyed in table.items() if any(keyed.values())]
    return ignored


@cache
def _warn_ignored(ignored: tuple[str, ...]) -> None:
    """Warns once per set of options (a pack's node converts its MODEL on every call)."""
    log.warning("a pack set ModelPatcher options Sigmagraph does not run: %s", ", ".join(ignored))


def diffusion_model(patcher: ModelPatcher) -> DiffusionModel:
    """The DiffusionModel a pack's patcher stands for; the one it came from when nothing changed."""
    base = patcher.model
    if not isinstance(base, BaseModel):
        raise TypeError(f"this MODEL wraps a {type(base).__name__}, not a Sigmagraph model; Sigmagraph cannot "
                        f"sample it")
    source = base.source
    model_sampling = native_model_sampling(patcher.get_model_object("model_sampling"))
    latent_format = (native_latent_format(patcher.object_patches["latent_format"])
                     if "latent_format" in patcher.object_patches else source.latent_format)
    seen = base if model_sampling is source.model_sampling else BaseModel.of(
        replace(source, model_sampling=model_sampling))
    cfg_function, post_cfg, wrapper = hooks(patcher.model_options, seen)
    network = source.network
    weights = patcher.lora_patches(UNET_PREFIX, "LoRA (ModelPatcher.add_patches)")
    if weights:
        network = network.with_patches(*weights)
    ignored = _ignored(patcher)
    if ignored:
        _warn_ignored(tuple(ignored))
    same = (model_sampling is source.model_sampling and latent_format is source.latent_format
            and cfg_function is source.cfg_function and wrapper is source.model_wrapper and network is source.network
            and len(post_cfg) == len(source.post_cfg) and all(a is b for a, b in zip(post_cfg, source.post_cfg)))
    if same:
        return source
    return replace(source, model_sampling=model_sampling, latent_format=latent_format, cfg_function=cfg_function,
                   post_cfg=post_cfg, model_wrapper=wrapper, network=network,
                   prepare=network.prepare if weights else source.prepare)
