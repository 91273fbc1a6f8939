"""The GUIDER facade: ComfyUI's CFGGuider and guidance functions over Sigmagraph's Guider and GuidedDenoiser.

A CFGGuider holds a ModelPatcher, conditioning and a CFG scale, as ComfyUI's does; packs subclass
it (a new predict_noise) and call `sample`. During a run its `conds` are Sigmagraph's resolved
Conditions and its `inner_model` the run's models.BaseModel, which is what `sampling_function` and
`calc_cond_batch` here take: the CFG of two condition lists, and the blended prediction of each
list, computed by Sigmagraph's guidance with the model_options' hooks.

A GUIDER becomes a Sigmagraph Guider (`guider_value`): the same Guider when the pack only set
conditions and scale, a `PackGuider` whose denoiser is the pack's predict_noise otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import Tensor

from sigmagraph.nodes.diffusion_model import DiffusionModel
from sigmagraph.nodes.guiders import Guider, PerpNegGuider, SamplingRun, SeededNoise
from sigmagraph.nodes.sampling.guidance import (Condition, Conditioning, GuidedDenoiser, predict_conditions,
                                                resolve_conditioning, with_matching_areas)
from sigmagraph.nodes.sampling.control import with_uncond_controls
from sigmagraph.nodes.sampling.perp_neg import PerpNegDenoiser

from .models import BaseModel
from .patcher import ModelPatcher, create_model_options_clone, diffusion_model, hooks

CONVERTED_KEYS = ("cross_attn", "model_conds", "uuid")  # what convert_cond adds to a conditioning entry's options


def convert_cond(cond: Conditioning) -> list[dict[str, Any]]:
    """ComfyUI's form of a CONDITIONING list inside guiders: each entry's options with its tensor as cross_attn."""
    out = []
    for tensor, options in cond:
        entry = {**options, "model_conds": options.get("model_conds", {}), "uuid": uuid.uuid4()}
        if tensor is not None:
            entry["cross_attn"] = tensor
        out.append(entry)
    return out


def conditioning(converted: Sequence[dict[str, Any]]) -> Conditioning:
    """The CONDITIONING list of convert_cond's entries."""
    return [[entry.get("cross_attn"), {k: v for k, v in entry.items() if k not in CONVERTED_KEYS}]
            for entry in converted]


def guidance(model: BaseModel, cond: Sequence[Condition], uncond: Sequence[Condition] | None, cond_scale: float,
             model_options: dict[str, Any]) -> GuidedDenoiser:
    """The CFG denoiser of two condition lists on a model object, with the hooks of `model_options`."""
    cfg_function, post_cfg, wrapper = hooks(model_options, model)
    return GuidedDenoiser(model.denoiser(), list(cond), None if uncond is None else list(uncond), cond_scale,
                          cfg_function, post_cfg, wrapper)


def sampling_function(model: BaseModel, x: Tensor, timestep: Tensor, uncond: Sequence[Condition] | None,
                      cond: Sequence[Condition], cond_scale: float, model_options: dict[str, Any] | None = None,
                      seed: int | None = None) -> Tensor:
    """ComfyUI's guided x0 at noise level `timestep` (sigma): CFG of `cond` and `uncond`, skipped at scale 1."""
    return guidance(model, cond, uncond, cond_scale, model_options or {})(x, timestep)


def calc_cond_batch(model: BaseModel, conds: Sequence[Sequence[Condition] | None], x_in: Tensor, timestep: Tensor,
                    model_options: dict[str, Any] | None = None) -> list[Tensor]:
    """The blended x0 prediction of each list of conditions (zeros for None), in batched model calls."""
    wrapper = hooks(model_options or {}, model)[2]
    return predict_conditions(model.denoiser(), [c or [] for c in conds], x_in, timestep, wrapper)


def resolved(original_conds: dict[str, list[dict]], model: DiffusionModel,
             latent_shape: Sequence[int]) -> dict[str, list[Condition]]:
    """A guider's conditions resolved for a latent, each area matched in the other lists (ComfyUI's process_conds)."""
    plain = {name: conditioning(converted) for name, converted in original_conds.items()}
    if "positive" in plain and "negative" in plain:  # ControlNetApply's control reaches the negative too
        plain["negative"] = with_uncond_controls(plain["positive"], plain["negative"])
    conds = {name: resolve_conditioning(entries, latent_shape, model.encode_condition,
                                        model.model_sampling.percent_to_sigma, name)
             for name, entries in plain.items()}
    if "positive" in conds and "negative" in conds:
        conds["positive"], conds["negative"] = with_matching_areas(conds["positive"], conds["negative"])
    return conds


class CFGGuider:
    """ComfyUI's CFGGuider: subclass it and replace predict_noise to guide differently."""

    def __init__(self, model_patcher: ModelPatcher):
        self.model_patcher = model_patcher
        self.model_options = model_patcher.model_options
        self.original_conds: dict[str, list[dict]] = {}
        self.cfg = 1.0

    def set_conds(self, positive: Conditioning, negative: Conditioning) -> None:
        self.inner_set_conds({"positive": positive, "negative": negative})

    def set_cfg(self, cfg: float) -> None:
        self.cfg = cfg

    def inner_set_conds(self, conds: dict[str, Conditioning]) -> None:
        for name, cond in conds.items():
            self.original_conds[name] = convert_cond(cond)

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.outer_predict_noise(*args, **kwargs)

    def outer_predict_noise(self, x: Tensor, timestep: Tensor, model_options: dict | None = None,
                            seed: int | None = None) -> Tensor:
        return self.predict_noise(x, timestep, model_options or {}, seed)

    def predict_noise(self, x: Tensor, timestep: Tensor, model_options: dict | None = None,
                      seed: int | None = None) -> Tensor:
        """The guided x0 at sigma `timestep` (ComfyUI's name; it returns the denoised latent)."""
        return sampling_function(self.inner_model, x, timestep, self.conds.get("negative"), self.conds.get("positive"),
                                 self.cfg, model_options=model_options, seed=seed)

    def bind(self, model: DiffusionModel, conds: dict[str, list[Condition]]) -> None:
        """Readies the guider for a run of `model` (its patcher's, patches applied): model object and conditions."""
        own = self.model_patcher.model
        self.inner_model = own if getattr(own, "source", None) is model else BaseModel.of(model)
        self.conds = conds

    def sample(self, noise: Tensor, latent_image: Tensor, sampler: Any, sigmas: Tensor,
               denoise_mask: Tensor | None = None, callback: Callable | None = None, disable_pbar: bool = False,
               seed: int | None = None) -> Tensor:
        """Samples `latent_image` (unscaled) from `noise` along `sigmas`; `callback(step, x0, x, total_steps)`."""
        from .samplers import sampler_value  # samplers.py builds its model_k on this module's guiders

        if sigmas.shape[-1] == 0:
            return latent_image
        latent = {"samples": latent_image, **({} if denoise_mask is None else {"noise_mask": denoise_mask})}
        steps = len(sigmas) - 1

        def on_step(info: dict[str, Any]) -> None:
            if callback is not None:
                callback(info["i"], info["denoised"], info["x"], steps)

        out, _ = guider_value(self).sample(GivenNoise(seed or 0, tensor=noise), latent, sampler_value(sampler), sigmas,
                                           on_step=on_step)
        return out["samples"]


class Guider_PerpNeg(CFGGuider):  # noqa: N801 - ComfyUI's name (comfy_extras.nodes_perpneg)
    """ComfyUI's Perp-Neg guider: positive, negative and an empty prompt; Sigmagraph's PerpNegDenoiser."""

    neg_scale = 1.0

    def set_conds(self, positive: Conditioning, negative: Conditioning,  # type: ignore[override]
                  empty_negative_prompt: Conditioning) -> None:
        empty = [[cond, {**options, "prompt_type": "negative"}] for cond, options in empty_negative_prompt]
        self.inner_set_conds({"positive": positive, "empty_negative_prompt": empty, "negative": negative})

    def set_cfg(self, cfg: float, neg_scale: float = 1.0) -> None:  # type: ignore[override]
        self.cfg, self.neg_scale = cfg, neg_scale

    def predict_noise(self, x: Tensor, timestep: Tensor, model_options: dict | None = None,
                      seed: int | None = None) -> Tensor:
        _, post_cfg, wrapper = hooks(model_options or {}, self.inner_model)
        return PerpNegDenoiser(self.inner_model.denoiser(), self.conds.get("positive", []),
                               self.conds.get("negative", []), self.conds.get("empty_negative_prompt", []), self.cfg,
                               self.neg_scale, post_cfg, wrapper)(x, timestep)


@dataclass(frozen=True)
class GivenNoise(SeededNoise):
    """NOISE of a given tensor (ComfyUI's sample functions take the noise itself, with the seed beside it)."""

    tensor: Tensor | None = None

    def generate(self, latent: dict[str, Any]) -> Tensor:
        return self.tensor


def predicts_as(guider: CFGGuider, base: type[CFGGuider]) -> bool:
    """Whether a guider predicts as the class `base` does (a pack's subclass may not)."""
    return isinstance(guider, base) and all(getattr(type(guider), name) is getattr(base, name)
                                            for name in ("__call__", "outer_predict_noise", "predict_noise"))


def run_options(guider: CFGGuider, sigmas: Tensor) -> dict[str, Any]:
    """The model_options of one run of a guider (ComfyUI's extra_args["model_options"]): a copy, with the sigmas."""
    options = create_model_options_clone(guider.model_options)
    options.setdefault("transformer_options", {})["sample_sigmas"] = sigmas
    return options


class PredictNoise:
    """A pack guider's predict_noise as the run's denoiser `model(x, sigma) -> x0`."""

    def __init__(self, guider: CFGGuider, run: SamplingRun):
        self.guider, self.run = guider, run
        self.options = run_options(guider, run.sigmas)
        self.seed = run.seed[0] if isinstance(run.seed, list) else run.seed

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        return self.guider(x, sigma, model_options=self.options, seed=self.seed)


@dataclass(frozen=True, eq=False)
class PackGuider(Guider):
    """A pack's CFGGuider as a Guider: its predict_noise denoises the run."""

    comfy: CFGGuider | None = None

    def denoiser(self, latent_shape: Sequence[int], run: SamplingRun) -> PredictNoise:
        self.comfy.bind(self.model, resolved(self.comfy.original_conds, self.model, latent_shape))
        return PredictNoise(self.comfy, run)


def guider_value(guider: CFGGuider) -> Guider:
    """The Guider of a CFGGuider: a PackGuider when its class predicts differently."""
    patcher = guider.model_patcher
    if guider.model_options is not patcher.model_options:  # the pack gave the guider options of its own
        patcher = patcher.clone()
        patcher.model_options = guider.model_options
    model = diffusion_model(patcher)
    positive = conditioning(guider.original_conds.get("positive", []))
    negative = guider.original_conds.get("negative")
    negative = None if negative is None else conditioning(negative)
    if predicts_as(guider, Guider_PerpNeg):
        empty = conditioning(guider.original_conds.get("empty_negative_prompt", []))
        return PerpNegGuider(model, positive, negative, guider.cfg, empty, guider.neg_scale)
    if predicts_as(guider, CFGGuider):
        return Guider(model, positive, negative, guider.cfg)
    return PackGuider(model, positive, negative, guider.cfg, comfy=guider)


def comfy_guider(guider: Guider) -> CFGGuider:
    """The CFGGuider a pack receives for a GUIDER."""
    if isinstance(guider, PackGuider):
        return guider.comfy
    if isinstance(guider, PerpNegGuider):
        perp_neg = Guider_PerpNeg(ModelPatcher.of(guider.model))
        perp_neg.set_conds(guider.positive, guider.negative or [], guider.empty)
        perp_neg.set_cfg(guider.cfg, guider.neg_scale)
        return perp_neg
    comfy = CFGGuider(ModelPatcher.of(guider.model))
    comfy.inner_set_conds({"positive": guider.positive,
                           **({} if guider.negative is None else {"negative": guider.negative})})
    comfy.set_cfg(guider.cfg)
    return comfy
