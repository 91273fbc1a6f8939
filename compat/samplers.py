"""The SAMPLER facade: ComfyUI's KSAMPLER, its model_k, and the sampler and scheduler registries.

A ComfyUI sampler is a k-diffusion function `fn(model_k, x, sigmas, extra_args, callback, disable,
**extra_options)` where model_k (KSamplerX0Inpaint) is the run's denoiser seen through ComfyUI's
chain: `model_k.inner_model` is the CFGGuider (cfg, model_patcher, model_options, conds), whose
`inner_model` is the model object (model_sampling, latent_format). `comfy_sampler(fn)` makes such
a function a Sigmagraph sampler: it finds the run behind the denoiser it is given (the
GuidedDenoiser's `run`) and builds that chain; extra_args are ComfyUI's (model_options, seed,
denoise_mask). A pack's KSAMPLER becomes a `PackSampler`, a SamplerChoice running it; a
Sigmagraph sampler reaches packs as KSAMPLER(its function, its parameters) and comes back as itself.

A name a pack adds to ComfyUI's registries becomes a Sigmagraph one: `sample_<name>` set on
comfy.k_diffusion.sampling (with the name in KSampler.SAMPLERS) is registered in SAMPLERS, a
handler put in SCHEDULER_HANDLERS in SCHEDULES, so KSampler and KSamplerSelect offer them.
"""

from __future__ import annotations

import functools

import logging
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor

from sigmagraph.nodes.guiders import SamplerChoice, SamplingRun
from sigmagraph.nodes.sampling.model_sampling import ModelSampling
from sigmagraph.nodes.sampling.sample import InpaintDenoiser
from sigmagraph.nodes.sampling.samplers import SAMPLERS
from sigmagraph.nodes.sampling.samplers.common import Callback, Denoiser
from sigmagraph.nodes.sampling.samplers.common import Sampler as SamplerFunction
from sigmagraph.nodes.sampling.schedules import SCHEDULES

from . import state
from .guiders import CFGGuider, PackGuider, comfy_guider, guidance, predicts_as, run_options
from .model_sampling import comfy_model_sampling, native

log = logging.getLogger("sigmagraph.compat")

BUILTIN_SAMPLERS = frozenset(SAMPLERS)
BUILTIN_SCHEDULES = frozenset(SCHEDULES)
# The samplers ComfyUI does not define in k_diffusion.sampling (its ddim and uni_pc live elsewhere).
NOT_K_DIFFUSION = frozenset({"ddim", "uni_pc", "uni_pc_bh2"})
PACK_SAMPLERS: dict[str, Callable[..., Tensor]] = {}  # name -> the pack's k-diffusion function

# ComfyUI's KSampler.SAMPLERS / SCHEDULERS: the names Sigmagraph offers; packs extend these lists.
SAMPLER_NAMES: list[str] = list(SAMPLERS)
KSAMPLER_NAMES: list[str] = [name for name in SAMPLER_NAMES if name not in NOT_K_DIFFUSION]


# ------------------------------------------------------------------------------------------------
# model_k: the run's denoiser through ComfyUI's chain


class KSamplerX0Inpaint:
    """ComfyUI's model_k: `model_k(x, sigma, denoise_mask, model_options, seed) -> x0` through its guider.

    With a denoise_mask the region outside it follows the original latent noised with `noise`
    (Sigmagraph's InpaintDenoiser).
    """

    def __init__(self, model: CFGGuider, sigmas: Tensor):
        self.inner_model = model
        self.sigmas = sigmas
        self.latent_image: Tensor | None = None
        self.noise: Tensor | None = None

    def _model_sampling(self) -> ModelSampling:
        return native(self.inner_model.inner_model.model_sampling)

    def _masked(self, denoise: Denoiser, denoise_mask: Tensor | None) -> Denoiser:
        if denoise_mask is None:
            return denoise
        return InpaintDenoiser(denoise, self._model_sampling(), self.latent_image, self.noise, denoise_mask)

    def __call__(self, x: Tensor, sigma: Tensor, denoise_mask: Tensor | None = None, model_options: dict | None = None,
                 seed: int | None = None) -> Tensor:
        def guided(x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
            return self.inner_model(x, sigma, model_options=model_options or {}, seed=seed)

        return self._masked(guided, denoise_mask)(x, sigma)

    @property
    def with_uncond(self) -> Callable[..., tuple[Tensor, Tensor]] | None:
        """(guided x0, unconditional x0), for Sigmagraph's CFG++ samplers; None when a pack's guider predicts."""
        guider = self.inner_model
        if not predicts_as(guider, CFGGuider):
            return None

        def with_uncond(x: Tensor, sigma: Tensor, denoise_mask: Tensor | None = None,
                        model_options: dict | None = None, seed: int | None = None) -> tuple[Tensor, Tensor]:
            denoiser = guidance(guider.inner_model, guider.conds["positive"], guider.conds.get("negative"),
                                guider.cfg, model_options or {})
            return self._masked(denoiser, denoise_mask).with_uncond(x, sigma)

        return with_uncond


def _run_of(model: Denoiser) -> tuple[Any, SamplingRun]:
    """The denoiser that carries the run (a GuidedDenoiser, or a pack guider's PredictNoise) and its run."""
    found = model
    while found is not None and getattr(found, "run", None) is None:
        found = getattr(found, "denoiser", None)
    if found is None:
        raise TypeError("a ComfyUI sampler runs only inside a Sigmagraph sampling run (Guider.sample), where its "
                        "model argument carries the run")
    return found, found.run


def k_model(model: Denoiser, sigmas: Tensor, extra_args: dict | None) -> tuple[KSamplerX0Inpaint, dict[str, Any]]:
    """(model_k, ComfyUI's extra_args) for a sampler given Sigmagraph's denoiser of a run."""
    guided, run = _run_of(model)
    guider = comfy_guider(run.guider)
    if not isinstance(run.guider, PackGuider):  # a pack's guider is bound when its run begins
        guider.bind(run.guider.model, {"positive": guided.positive,
                                       **({} if guided.negative is None else {"negative": guided.negative})})
    model_k = KSamplerX0Inpaint(guider, sigmas)
    inpaint = model if isinstance(model, InpaintDenoiser) else None
    model_k.latent_image = run.latent if inpaint is None else inpaint.latent
    model_k.noise = run.noise if inpaint is None else inpaint.noise
    seed = (extra_args or {}).get("seed", run.seed)
    comfy_args = {"model_options": run_options(guider, sigmas), "seed": seed[0] if isinstance(seed, list) else seed,
                  "denoise_mask": None if inpaint is None else inpaint.mask}
    return model_k, comfy_args


@functools.cache
def with_model_frame(function: SamplerFunction) -> SamplerFunction:
    """A Sigmagraph sampler as packs call it, with ComfyUI's extra_args: the model's parametrization, which
    Sigmagraph's samplers read from extra_args["model_sampling"] (a flow model takes the _RF forms), is
    added from model_k. `__wrapped__` is the sampler itself; one wrapper per sampler, so that
    `sampler_object(name).sampler_function is sample_<name>` holds, as in ComfyUI."""
    @functools.wraps(function)
    def sample(model: Any, x: Tensor, sigmas: Tensor, extra_args: dict | None = None, *args: Any,
               **kwargs: Any) -> Tensor:
        if "model_sampling" not in (extra_args or {}):
            # model_k itself, or (through a pack's wrapper of it) the run the pack's sampler serves
            found = model._model_sampling() if isinstance(model, KSamplerX0Inpaint) else state.sampling_model.get()
            if found is not None:
                extra_args = {**(extra_args or {}), "model_sampling": found}
        return function(model, x, sigmas, extra_args, *args, **kwargs)

    return sample


def comfy_sampler(function: Callable[..., Tensor]) -> SamplerFunction:
    """A ComfyUI sampler function (model_k, x, sigmas, extra_args, callback, disable, **options) as a Sigmagraph one."""
    def sample(model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
               callback: Callback | None = None, disable: bool | None = None, **params: Any) -> Tensor:
        model_k, comfy_args = k_model(model, sigmas, extra_args)
        token = state.sampling_model.set(model_k._model_sampling())
        try:
            return function(model_k, x, sigmas, extra_args=comfy_args, callback=callback, disable=disable, **params)
        finally:
            state.sampling_model.reset(token)

    sample.__name__ = sample.__qualname__ = getattr(function, "__name__", "comfy_sampler")
    sample.__doc__ = getattr(function, "__doc__", None)
    return sample


# ------------------------------------------------------------------------------------------------
# KSAMPLER and the SAMPLER value


class Sampler:
    """ComfyUI's Sampler base class."""

    def max_denoise(self, model_wrap: CFGGuider, sigmas: Tensor) -> bool:
        """Whether sampling starts from pure noise (the first sigma at the model's sigma_max)."""
        return native(model_wrap.inner_model.model_sampling).is_max_denoise(sigmas[0])


class KSAMPLER(Sampler):
    """ComfyUI's SAMPLER: a k-diffusion sampler function with its options."""

    def __init__(self, sampler_function: Callable[..., Tensor], extra_options: dict | None = None,
                 inpaint_options: dict | None = None):
        self.sampler_function = sampler_function
        self.extra_options = {} if extra_options is None else extra_options
        self.inpaint_options = {} if inpaint_options is None else inpaint_options
        self.name: str | None = None  # Sigmagraph's name for it, when it is one of SAMPLERS


def ksampler(sampler_name: str, extra_options: dict | None = None, inpaint_options: dict | None = None) -> KSAMPLER:
    """The KSAMPLER of a sampler name (a pack's registered name gives the pack's own function)."""
    if sampler_name not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler_name!r}: expected one of {', '.join(SAMPLERS)}")
    function = PACK_SAMPLERS.get(sampler_name) or with_model_frame(SAMPLERS[sampler_name])
    sampler = KSAMPLER(function, extra_options, inpaint_options)
    sampler.name = sampler_name
    return sampler


@dataclass(frozen=True)
class PackSampler(SamplerChoice):
    """A pack's KSAMPLER as a SAMPLER value; its params are the KSAMPLER's extra_options."""

    comfy: KSAMPLER | None = None

    @property
    def function(self) -> SamplerFunction:
        return comfy_sampler(self.comfy.sampler_function)

    @property
    def discard_penultimate_sigma(self) -> bool:
        return False


def _builtin_name(sampler: KSAMPLER) -> str | None:
    """The Sigmagraph name of a KSAMPLER's function, when it is a built-in sampler."""
    function = getattr(sampler.sampler_function, "__wrapped__", sampler.sampler_function)
    if sampler.name in BUILTIN_SAMPLERS and SAMPLERS[sampler.name] is function:
        return sampler.name
    return next((name for name in BUILTIN_SAMPLERS if SAMPLERS[name] is function), None)


def sampler_value(sampler: Any) -> SamplerChoice:
    """The SAMPLER value of a KSAMPLER: the Sigmagraph sampler it names, else a PackSampler running it."""
    if isinstance(sampler, SamplerChoice):
        return sampler
    name = _builtin_name(sampler) if type(sampler) is KSAMPLER and not sampler.inpaint_options else None
    if name is not None:
        return SamplerChoice(name, dict(sampler.extra_options))
    function = sampler.sampler_function
    label = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"
    return PackSampler(label, dict(sampler.extra_options), comfy=sampler)


def comfy_sampler_value(choice: SamplerChoice) -> KSAMPLER:
    """The KSAMPLER a pack receives for a SAMPLER."""
    if isinstance(choice, PackSampler):
        return choice.comfy
    return ksampler(choice.name, dict(choice.params))


def register_sampler(name: str, function: Callable[..., Tensor]) -> None:
    """Makes a pack's k-diffusion function the sampler `name` of KSampler and KSamplerSelect (not a built-in's)."""
    if name in BUILTIN_SAMPLERS:
        log.warning("a pack set comfy.k_diffusion.sampling.sample_%s; Sigmagraph keeps its own %r sampler", name, name)
        return
    PACK_SAMPLERS[name] = function
    SAMPLERS[name] = comfy_sampler(function)


# ------------------------------------------------------------------------------------------------
# Schedulers


class SchedulerHandler(NamedTuple):
    """A schedule: `handler(model_sampling, steps)`, or `handler(n, sigma_min, sigma_max)` when use_ms is False."""

    handler: Callable[..., Tensor]
    use_ms: bool = True


def _own_handler(name: str) -> SchedulerHandler:
    def handler(model_sampling: Any, steps: int) -> Tensor:
        return SCHEDULES[name](native(model_sampling), steps)

    handler.__name__ = f"{name}_scheduler"
    return SchedulerHandler(handler)


def handler_sigmas(handler: SchedulerHandler, model_sampling: Any, steps: int) -> Tensor:
    """The sigmas a handler gives for a ComfyUI model-sampling object."""
    if handler.use_ms:
        return handler.handler(model_sampling, steps)
    return handler.handler(n=steps, sigma_min=float(model_sampling.sigma_min),
                           sigma_max=float(model_sampling.sigma_max))


class SchedulerHandlers(dict):
    """ComfyUI's SCHEDULER_HANDLERS; a handler a pack adds becomes the Sigmagraph schedule of that name."""

    def __setitem__(self, name: str, handler: SchedulerHandler) -> None:
        super().__setitem__(name, handler)
        if name in BUILTIN_SCHEDULES:
            log.warning("a pack replaced ComfyUI's %r scheduler; Sigmagraph keeps its own", name)
            return

        def schedule(model_sampling: ModelSampling, steps: int) -> Tensor:
            sigmas = handler_sigmas(handler, comfy_model_sampling(model_sampling), steps)
            return torch.as_tensor(sigmas, dtype=torch.float32).cpu()

        SCHEDULES[name] = schedule

    def update(self, *args: Any, **kwargs: Any) -> None:
        for name, handler in dict(*args, **kwargs).items():
            self[name] = handler

    def setdefault(self, name: str, handler: SchedulerHandler | None = None) -> SchedulerHandler:
        if name not in self:
            self[name] = handler
        return self[name]


SCHEDULER_HANDLERS = SchedulerHandlers()
dict.update(SCHEDULER_HANDLERS, {name: _own_handler(name) for name in SCHEDULES})
SCHEDULER_NAMES: list[str] = list(SCHEDULER_HANDLERS)
