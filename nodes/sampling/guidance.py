"""Classifier-free guidance over ComfyUI's CONDITIONING: areas, masks, strengths, timestep ranges.

A CONDITIONING is a list of `[cond_tensor, options]` pairs. The options read here have ComfyUI's
names and meanings:
- `area`: (h, w, y, x) in latent pixels (image pixels / 8), or ("percentage", h, w, y, x) as
  fractions of the latent; the entry predicts only inside it;
- `strength`: its weight against the other entries of the same list;
- `mask` ([B, H, W] or [H, W], any size, resized to the latent) with `mask_strength`, and
  `set_area_to_bounds` (the area becomes the mask's bounding box);
- `start_percent` / `end_percent`: the part of the run in which the entry is active;
- `control`: a ControlNet chain (control.py), which becomes the model input `control`.
Which tensors the model receives is model-specific, so an `encode(cond_tensor, options)` function
turns an entry into the model's keyword inputs; the default gives only `c_crossattn` (SD1/SD2),
an SDXL encoder adds `y` from `pooled_output` and the size options. Besides the entry's own
options, `encode` sees `latent_size` (h, w of the latent being sampled) and `prompt_type`
("positive" or "negative"), which ComfyUI's size and aesthetic-score defaults depend on.

The conditioned model is a denoiser in the samplers' convention whose extra arguments are those
inputs: `model(x, sigma, **inputs) -> x0`, with every input batched along dim 0 like x (a
`model_sampling.NetworkDenoiser` is one). At each call every active entry predicts x0 over its
area, and the entries of one list are blended pixel-wise with their weights (strength x mask, an
8-pixel feathered edge for an area without a mask): x0 = sum_i w_i x0_i / sum_i w_i, and 0 where no
entry is active, as in ComfyUI. All entries of both lists go through as few batched model calls as
their shapes allow: one call of 2B for a plain positive/negative pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .control import CONTROL, control_schedule, with_uncond_controls

Conditioning = Sequence[Sequence[Any]]  # [[cond_tensor, options_dict], ...]
ConditionEncoder = Callable[[Tensor, dict[str, Any]], dict[str, Tensor]]
ConditionedModel = Callable[..., Tensor]
Area = tuple[int, int, int, int]  # h, w, y, x in latent pixels

CROSSATTN = "c_crossattn"
# Token sequences of different lengths share a batch by repetition up to their least common
# multiple; attention over a sequence repeated k times equals attention over the sequence itself.
# Past this factor the longer sequence costs more than a separate call (ComfyUI's limit too).
MAX_CROSSATTN_REPEAT = 4
# Areas without a mask fade in over this many latent pixels on the sides that are not image borders.
AREA_FEATHER = 8
# An area taken from a mask's bounding box is at least this many latent pixels high and wide.
MIN_MASK_AREA = 8


def crossattn_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """The model inputs of an SD1/SD2 entry: the token embeddings as `c_crossattn`."""
    return {CROSSATTN: cond}


@dataclass(frozen=True, eq=False)
class Condition:
    """One CONDITIONING entry resolved for a latent size.

    `weight` is strength x mask x feather over the area: a float, or a [Bm, 1, h, w] tensor.
    The entry is active while sigma_end <= sigma <= sigma_start.
    """

    inputs: dict[str, Tensor]
    area: Area | None = None
    weight: Tensor | float = 1.0
    sigma_start: float = math.inf
    sigma_end: float = 0.0

    def active(self, sigma: float) -> bool:
        """Whether the entry takes part at this sigma."""
        return self.sigma_end <= sigma <= self.sigma_start


# ----------------------------------------------------------------------------------------------
# Resolving CONDITIONING entries


def resolve_conditioning(conditioning: Conditioning, latent_shape: Sequence[int],
                         encode: ConditionEncoder = crossattn_inputs,
                         percent_to_sigma: Callable[[float], float] | None = None,
                         prompt_type: str = "positive") -> list[Condition]:
    """Resolves every entry's area, mask, weight and sigma range for a latent [B, C, H, W]."""
    size = (int(latent_shape[-2]), int(latent_shape[-1]))
    return [_resolve_entry(cond, options, size, encode, percent_to_sigma, prompt_type)
            for cond, options in conditioning]


def _resolve_entry(cond: Tensor, options: dict[str, Any], size: tuple[int, int], encode: ConditionEncoder,
                   percent_to_sigma: Callable[[float], float] | None, prompt_type: str) -> Condition:
    mask = _latent_mask(options["mask"], size) if options.get("mask") is not None else None
    area = _resolve_area(options, mask, size)
    strength = float(options.get("strength", 1.0))
    if mask is not None:
        if area is not None:
            h, w, y, x = area
            mask = mask[:, y:y + h, x:x + w]
        weight: Tensor | float = (mask * float(options.get("mask_strength", 1.0)) * strength).unsqueeze(1)
    elif area is not None:
        weight = _feather(area, size) * strength
    else:
        weight = strength
    sigma_start, sigma_end = _sigma_range(options, percent_to_sigma)
    inputs = encode(cond, {"latent_size": size, "prompt_type": prompt_type, **options})
    if options.get(CONTROL) is not None:
        inputs = {**inputs, CONTROL: control_schedule(options[CONTROL], percent_to_sigma)}
    return Condition(inputs, area, weight, sigma_start, sigma_end)


def _latent_mask(mask: Tensor, size: tuple[int, int]) -> Tensor:
    """The mask as [Bm, H, W] at the latent size (bilinear, as ComfyUI resizes it)."""
    mask = mask.float()
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if tuple(mask.shape[-2:]) != size:
        mask = F.interpolate(mask.unsqueeze(1), size=size, mode="bilinear").squeeze(1)
    return mask


def _resolve_area(options: dict[str, Any], mask: Tensor | None, size: tuple[int, int]) -> Area | None:
    """The entry's area in latent pixels, clipped to the latent; None for the whole latent."""
    if options.get("set_area_to_bounds") and mask is not None:
        area = _mask_bounds(mask)
    elif options.get("area") is not None:
        area = tuple(options["area"])
        if area[0] == "percentage":
            h, w, y, x = area[1:]
            area = (max(1, round(h * size[0])), max(1, round(w * size[1])), round(y * size[0]), round(x * size[1]))
    else:
        return None
    h, w, y, x = (int(v) for v in area)
    if not (0 <= y < size[0] and 0 <= x < size[1]):
        raise ValueError(f"conditioning area {area} starts outside the {size[0]}x{size[1]} latent")
    return min(h, size[0] - y), min(w, size[1] - x), y, x


def _mask_bounds(mask: Tensor) -> Area:
    """The bounding box of the mask's nonzero pixels over the batch, at least 8x8 (8x8 at 0, 0 if empty)."""
    rows, cols = torch.nonzero(mask.abs().amax(dim=0), as_tuple=True)
    if len(rows) == 0:
        return MIN_MASK_AREA, MIN_MASK_AREA, 0, 0
    y, x = int(rows.min()), int(cols.min())
    return max(MIN_MASK_AREA, int(rows.max()) - y + 1), max(MIN_MASK_AREA, int(cols.max()) - x + 1), y, x


def _feather(area: Area, size: tuple[int, int]) -> Tensor:
    """[1, 1, h, w] weights ramping up over the area's inner edges (the sides not on the latent border)."""
    h, w, y, x = area
    return (_edge_ramp(h, y, size[0])[:, None] * _edge_ramp(w, x, size[1])[None, :])[None, None]


def _edge_ramp(length: int, offset: int, full: int) -> Tensor:
    ramp = torch.ones(length)
    width = min(AREA_FEATHER, length // 4)
    if width == 0:
        return ramp
    steps = torch.arange(1, width + 1, dtype=torch.float32) / width
    if offset != 0:
        ramp[:width] *= steps
    if offset + length < full:
        ramp[length - width:] *= steps.flip(0)
    return ramp


def _sigma_range(options: dict[str, Any], percent_to_sigma: Callable[[float], float] | None) -> tuple[float, float]:
    """(sigma_start, sigma_end) from start_percent / end_percent."""
    if "start_percent" not in options and "end_percent" not in options:
        return math.inf, 0.0
    if percent_to_sigma is None:
        raise ValueError("conditioning with start_percent/end_percent needs the model's percent_to_sigma")
    start = percent_to_sigma(float(options["start_percent"])) if "start_percent" in options else math.inf
    end = percent_to_sigma(float(options["end_percent"])) if "end_percent" in options else 0.0
    return start, end


def with_matching_areas(positive: list[Condition],
                        negative: list[Condition]) -> tuple[list[Condition], list[Condition]]:
    """Gives each area entry of one list a counterpart over the same area in the other (as ComfyUI does).

    The counterpart takes the inputs of the smallest entry of the other list that covers the area,
    so cond and uncond are blended over the same regions and the guidance stays balanced there.
    """
    positive, negative = list(positive), list(negative)
    for condition in list(positive):
        _add_counterpart(negative, condition)
    for condition in list(negative):
        _add_counterpart(positive, condition)
    return positive, negative


def _add_counterpart(conditions: list[Condition], condition: Condition) -> None:
    if condition.area is None:
        return
    smallest = None
    for other in conditions:
        if other.area is None:
            if smallest is None:
                smallest = other
        elif _covers(other.area, condition.area) and (
                smallest is None or smallest.area is None or _pixels(other.area) < _pixels(smallest.area)):
            smallest = other
    if smallest is not None and smallest.area != condition.area:
        conditions.append(replace(condition, inputs=smallest.inputs))


def _covers(outer: Area, inner: Area) -> bool:
    oh, ow, oy, ox = outer
    ih, iw, iy, ix = inner
    return iy >= oy and ix >= ox and iy + ih <= oy + oh and ix + iw <= ox + ow


def _pixels(area: Area) -> int:
    return area[0] * area[1]


# ----------------------------------------------------------------------------------------------
# Batched evaluation


@dataclass(frozen=True, eq=False)
class _Chunk:
    """One active entry at one step: its slice of x, its model inputs and where its prediction goes."""

    list_index: int
    x: Tensor
    inputs: dict[str, Tensor]
    area: Area | None
    weight: Tensor | float


def fit_batch(tensor: Tensor, batch: int) -> Tensor:
    """The tensor repeated or cut along dim 0 to `batch` rows."""
    if tensor.shape[0] == batch:
        return tensor
    repeats = math.ceil(batch / tensor.shape[0])
    return tensor.repeat(repeats, *([1] * (tensor.ndim - 1)))[:batch]


def _region(tensor: Tensor, area: Area | None) -> Tensor:
    """The view of a latent-shaped tensor inside the area."""
    if area is None:
        return tensor
    h, w, y, x = area
    return tensor[..., y:y + h, x:x + w]


def _chunk(list_index: int, condition: Condition, x: Tensor, sigma: float) -> _Chunk:
    batch = x.shape[0]
    inputs = {}
    for key, value in condition.inputs.items():
        if not isinstance(value, Tensor):
            # A step-dependent input (ControlNets' schedule): its value now for the entry's slice of x;
            # None leaves it out. It goes to the model call as it is, shared by the chunks batched together.
            value = value.at(sigma, _region(x, condition.area))
            if value is not None:
                inputs[key] = value
            continue
        value = value.to(x.device)
        if value.ndim == x.ndim and value.shape[2:] == x.shape[2:]:  # latent-shaped (c_concat...)
            value = _region(value, condition.area)
        inputs[key] = fit_batch(value, batch)
    weight = condition.weight
    if isinstance(weight, Tensor):
        weight = fit_batch(weight.to(x.device), batch)
    return _Chunk(list_index, _region(x, condition.area), inputs, condition.area, weight)


def _compatible(group: list[_Chunk], chunk: _Chunk) -> bool:
    """Whether the chunk can join the group's model call."""
    first = group[0]
    if chunk.x.shape != first.x.shape or chunk.inputs.keys() != first.inputs.keys():
        return False
    for key, value in chunk.inputs.items():
        reference = first.inputs[key]
        if not isinstance(value, Tensor) or not isinstance(reference, Tensor):
            if value != reference:
                return False
        elif key == CROSSATTN and value.ndim == 3 == reference.ndim:
            if (value.shape[0], value.shape[2]) != (reference.shape[0], reference.shape[2]):
                return False
            lengths = [c.inputs[key].shape[1] for c in group] + [value.shape[1]]
            if math.lcm(*lengths) // min(lengths) > MAX_CROSSATTN_REPEAT:
                return False
        elif value.shape != reference.shape:
            return False
    return True


def _batch_inputs(group: list[_Chunk]) -> dict[str, Tensor]:
    """The group's inputs concatenated along the batch, token sequences repeated to a common length."""
    inputs = {}
    for key in group[0].inputs:
        values = [chunk.inputs[key] for chunk in group]
        if not isinstance(values[0], Tensor):
            inputs[key] = values[0]  # equal in every chunk (_compatible)
            continue
        if key == CROSSATTN and values[0].ndim == 3:
            length = math.lcm(*(v.shape[1] for v in values))
            values = [v.repeat(1, length // v.shape[1], 1) for v in values]
        inputs[key] = torch.cat(values)
    return inputs


def _group(chunks: list[_Chunk]) -> list[list[_Chunk]]:
    """Chunks gathered into as few model calls as their shapes allow (first fit, in order)."""
    groups: list[list[_Chunk]] = []
    for chunk in chunks:
        group = next((g for g in groups if _compatible(g, chunk)), None)
        if group is None:
            groups.append([chunk])
        else:
            group.append(chunk)
    return groups


# (model, x, sigma, inputs, lists) -> x0: runs one batched model call in place of `model(x, sigma, **inputs)`;
# lists[k] is the index of the conditioning list (0 positive, 1 negative) of the batch's k-th chunk
# (ComfyUI's model_function_wrapper).
ModelWrapper = Callable[[ConditionedModel, Tensor, Tensor, dict[str, Tensor], tuple[int, ...]], Tensor]


def predict_conditions(model: ConditionedModel, condition_lists: Sequence[Sequence[Condition]], x: Tensor,
                       sigma: Tensor, wrapper: ModelWrapper | None = None) -> list[Tensor]:
    """The blended x0 prediction of each list of conditions, from batched model calls (through `wrapper`, if any)."""
    sigma_now = float(sigma.reshape(-1)[0])
    chunks = [_chunk(i, condition, x, sigma_now) for i, conditions in enumerate(condition_lists)
              for condition in conditions if condition.active(sigma_now)]
    # Last entries first, as ComfyUI batches them: for a plain pair the batch is [uncond, cond], as in sgm.
    chunks.reverse()
    totals = [torch.zeros_like(x) for _ in condition_lists]
    # A tiny floor rather than zero: pixels no active entry covers come out as 0, not NaN.
    weights = [torch.full_like(x, 1e-37) for _ in condition_lists]
    for group in _group(chunks):
        x_in, sigma_in, inputs = torch.cat([c.x for c in group]), sigma.repeat(len(group)), _batch_inputs(group)
        if wrapper is None:
            outputs = model(x_in, sigma_in, **inputs)
        else:
            outputs = wrapper(model, x_in, sigma_in, inputs, tuple(c.list_index for c in group))
        for chunk, output in zip(group, outputs.chunk(len(group))):
            _region(totals[chunk.list_index], chunk.area).add_(output * chunk.weight)
            _region(weights[chunk.list_index], chunk.area).add_(chunk.weight)
    return [total / weight for total, weight in zip(totals, weights)]


# ----------------------------------------------------------------------------------------------
# The guided denoiser


@dataclass(frozen=True, eq=False)
class GuidanceStep:
    """One step's predictions as a model's CFG hooks see them (ComfyUI's sampler CFG function arguments).

    `uncond` is zeros when the unconditional pass was skipped (cfg 1, no negative), as in ComfyUI;
    `denoised` is the guided x0 so far; `positive` and `negative` are the entries that predicted
    cond and uncond (negative None when that pass was skipped), for hooks that call the model again.
    """

    x: Tensor
    sigma: Tensor
    cond: Tensor
    uncond: Tensor
    cfg: float
    denoised: Tensor
    positive: Sequence[Condition] = ()
    negative: Sequence[Condition] | None = None


CfgHook = Callable[[GuidanceStep], Tensor]  # a step's predictions -> a new guided x0


class GuidedDenoiser:
    """x0 = uncond + cfg (cond - uncond) (Ho & Salimans 2022), in the samplers' convention.

    Call it as `denoiser(x, sigma, **extra)`; `with_uncond` also returns the unconditional x0 (for
    the CFG++ samplers, which always need it). With no negative list (BasicGuider), or cfg == 1 in
    `__call__`, the unconditional pass is skipped. Sampler extras (seed, ...) are not for the model
    and are not passed on. A model's `cfg_function` replaces the CFG blend and its `post_cfg` hooks
    then change the guided x0 in turn (ComfyUI's sampler_cfg_function / sampler_post_cfg_function);
    its `model_wrapper` runs each batched model call. `run` is what the denoiser serves (guiders'
    SamplingRun), for samplers that read the model through it, as ComfyUI packs' samplers do.
    """

    def __init__(self, model: ConditionedModel, positive: list[Condition], negative: list[Condition] | None,
                 cfg: float, cfg_function: CfgHook | None = None, post_cfg: Sequence[CfgHook] = (),
                 model_wrapper: ModelWrapper | None = None, run: Any = None):
        if negative is not None:
            positive, negative = with_matching_areas(positive, negative)
        self.model, self.positive, self.negative, self.cfg = model, positive, negative, float(cfg)
        self.cfg_function, self.post_cfg, self.model_wrapper = cfg_function, tuple(post_cfg), model_wrapper
        self.run = run

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        if self.negative is None or math.isclose(self.cfg, 1.0):
            return self._guide(x, sigma, self._predict([self.positive], x, sigma)[0], None)
        return self.with_uncond(x, sigma)[0]

    def with_uncond(self, x: Tensor, sigma: Tensor, **extra: Any) -> tuple[Tensor, Tensor]:
        """(guided x0, unconditional x0) from one batched evaluation."""
        if self.negative is None:
            denoised = self._predict([self.positive], x, sigma)[0]
            return self._guide(x, sigma, denoised, None), denoised
        cond, uncond = self._predict([self.positive, self.negative], x, sigma)
        return self._guide(x, sigma, cond, uncond), uncond

    def _predict(self, condition_lists: list[list[Condition]], x: Tensor, sigma: Tensor) -> list[Tensor]:
        return predict_conditions(self.model, condition_lists, x, sigma, self.model_wrapper)

    def _guide(self, x: Tensor, sigma: Tensor, cond: Tensor, uncond: Tensor | None) -> Tensor:
        """The guided x0: the CFG blend (or the model's CFG function), then the post-CFG hooks."""
        denoised = cond if uncond is None else uncond + (cond - uncond) * self.cfg
        if self.cfg_function is None and not self.post_cfg:
            return denoised
        step = GuidanceStep(x, sigma, cond, torch.zeros_like(cond) if uncond is None else uncond, self.cfg, denoised,
                            self.positive, None if uncond is None else self.negative)
        for hook in ((self.cfg_function,) if self.cfg_function else ()) + self.post_cfg:
            step = replace(step, denoised=hook(step))
        return step.denoised


def guided_denoiser(model: ConditionedModel, positive: Conditioning, negative: Conditioning | None, cfg: float,
                    latent_shape: Sequence[int], percent_to_sigma: Callable[[float], float] | None = None,
                    encode: ConditionEncoder = crossattn_inputs, cfg_function: CfgHook | None = None,
                    post_cfg: Sequence[CfgHook] = (), model_wrapper: ModelWrapper | None = None,
                    run: Any = None) -> GuidedDenoiser:
    """The CFG denoiser for two CONDITIONING lists (negative None: conditioning only, as BasicGuider).

    `percent_to_sigma` (a ModelSampling's) resolves start/end percents; `encode` builds model inputs;
    `cfg_function`, `post_cfg` and `model_wrapper` are the model's guidance hooks, `run` what the
    denoiser serves (see GuidedDenoiser).
    """
    def resolve(conditioning: Conditioning, prompt_type: str) -> list[Condition]:
        return resolve_conditioning(conditioning, latent_shape, encode, percent_to_sigma, prompt_type)

    return GuidedDenoiser(model, resolve(positive, "positive"),
                          None if negative is None else resolve(with_uncond_controls(positive, negative), "negative"),
                          cfg, cfg_function, post_cfg, model_wrapper, run)
