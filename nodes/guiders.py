"""The values behind the NOISE, SAMPLER and GUIDER sockets, and the sampling run they compose.

KSampler is CFGGuider + RandomNoise + KSamplerSelect + BasicScheduler in one node; all the
sampling nodes end in `Guider.sample`, so their behaviour cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from .diffusion_model import DiffusionModel
from .sampling.guidance import Conditioning, guided_denoiser, resolve_conditioning, with_matching_areas
from .sampling.noise import initial_noise
from .sampling.perp_neg import PerpNegDenoiser
from .sampling.sample import run_sampler
from .sampling.samplers import DISCARD_PENULTIMATE_SIGMA, SAMPLERS
from .sampling.samplers.common import Callback, Denoiser, Sampler

# Progress events carry a preview at most this often (seconds): previews cost a projection and a JPEG.
PREVIEW_INTERVAL = 0.25


@dataclass(frozen=True)
class SeededNoise:
    """NOISE: the initial latent noise of a seed (identical to ComfyUI's), or zeros when disabled.

    The seed also seeds the sampler's own noise (ancestral, SDE) even when the initial noise is
    disabled, as in ComfyUI's KSamplerAdvanced with add_noise off (DisableNoise uses seed 0).
    """

    seed: int = 0
    enabled: bool = True

    def generate(self, latent: dict[str, Any]) -> Tensor:
        samples = latent["samples"]
        if not self.enabled:
            return torch.zeros(samples.shape, dtype=torch.float32)
        return initial_noise(samples.shape, self.seed, latent.get("batch_index"))


@dataclass(frozen=True)
class SamplerChoice:
    """SAMPLER: a sampler function by name with its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def function(self) -> Sampler:
        if self.name not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.name!r}: expected one of {', '.join(SAMPLERS)}")
        return SAMPLERS[self.name]

    @property
    def discard_penultimate_sigma(self) -> bool:
        """ComfyUI's KSampler drops the second-to-last sigma for these samplers."""
        return self.name in DISCARD_PENULTIMATE_SIGMA


def sampler_seeds(seed: int, latent: dict[str, Any]) -> int | list[int]:
    """The seed(s) of the sampler's own noise: one per image, so no image depends on its neighbours.

    A single image uses the seed itself (ComfyUI's numbers); in a batch, image k uses seed + k, where
    k is its batch index, so a batch image equals the single run with `batch_index` [k] (docs/parity.md).
    """
    indices = latent.get("batch_index")
    if indices is None and latent["samples"].shape[0] == 1:
        return seed
    return [seed + k for k in (indices or range(latent["samples"].shape[0]))]


ProgressCallback = Callable[[int, int, Tensor], None]  # (step, total, preview RGB [B, H, W, 3]) -> None


@dataclass(frozen=True, eq=False)
class SamplingRun:
    """A run as its sampler may see it through the denoiser (`GuidedDenoiser.run`).

    ComfyUI packs' samplers read the model, its CFG scale and the run's noise through their model argument.
    """

    guider: "Guider"
    noise: Tensor  # the initial noise, unscaled
    latent: Tensor  # the latent sampling starts from, in the model's space
    seed: int | list[int]  # the seed(s) of the sampler's own noise
    sigmas: Tensor


@dataclass(frozen=True, eq=False)
class Guider:
    """GUIDER: a model with its conditioning and CFG scale (negative None = no guidance)."""

    model: DiffusionModel
    positive: Conditioning
    negative: Conditioning | None = None
    cfg: float = 1.0

    def denoiser(self, latent_shape: Sequence[int], run: SamplingRun) -> Denoiser:
        """The guided denoiser of a run on a latent of this shape."""
        return guided_denoiser(self.model.denoiser(), self.positive, self.negative, self.cfg, latent_shape,
                               self.model.model_sampling.percent_to_sigma, self.model.encode_condition,
                               self.model.cfg_function, self.model.post_cfg, self.model.model_wrapper, run)

    def sample(self, noise: SeededNoise, latent: dict[str, Any], sampler: SamplerChoice, sigmas: Tensor,
               progress: ProgressCallback | None = None,
               on_step: Callback | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Samples `latent` along `sigmas`; returns (output, denoised_output) LATENTs.

        `progress` gets each step's number with an occasional preview, `on_step` the sampler's own report.
        """
        fmt = self.model.latent_format
        samples = latent["samples"]
        if samples.shape[1] != fmt.channels:
            if torch.count_nonzero(samples):
                raise ValueError(f"the latent has {samples.shape[1]} channels but the model expects {fmt.channels}; "
                                 f"use a latent made for this model")
            # An empty latent made for another model (EmptyLatentImage before an SD3 or Flux model): its zeros
            # in the model's channel count, as ComfyUI's fix_empty_latent_channels does.
            samples = samples.new_zeros(samples.shape[0], fmt.channels, *samples.shape[2:])
            latent = {**latent, "samples": samples}
        device = self.model.device
        model_latent = fmt.process_in(samples.to(device=device, dtype=torch.float32))
        initial = noise.generate(latent).to(device)
        seed = sampler_seeds(noise.seed, latent)
        denoiser = self.denoiser(model_latent.shape, SamplingRun(self, initial, model_latent, seed, sigmas))
        last_denoised: list[Tensor] = []
        steps = max(len(sigmas) - 1, 0)
        last_preview = [0.0]

        def callback(info: dict[str, Any]) -> None:
            last_denoised[:] = [info["denoised"]]
            if on_step is not None:
                on_step(info)
            if progress is None:
                return
            now = time.monotonic()
            preview = None
            if now - last_preview[0] >= PREVIEW_INTERVAL or info["i"] + 1 == steps:
                last_preview[0] = now
                preview = fmt.preview_rgb(info["denoised"].float())
            progress(info["i"] + 1, steps, preview)

        mask = latent.get("noise_mask")
        out = run_sampler(denoiser, self.model.model_sampling, sampler.function, sigmas, model_latent, initial,
                          seed=seed, noise_mask=None if mask is None else mask.to(device),
                          callback=callback, **sampler.params)
        denoised = last_denoised[0] if last_denoised else out
        return ({**latent, "samples": fmt.process_out(out).cpu()},
                {**latent, "samples": fmt.process_out(denoised).cpu()})


@dataclass(frozen=True, eq=False)
class PerpNegGuider(Guider):
    """GUIDER of Perp-Neg guidance: `negative` pushes away only where it is orthogonal to `positive` (perp_neg.py)."""

    empty: Conditioning = ()
    neg_scale: float = 1.0

    def denoiser(self, latent_shape: Sequence[int], run: SamplingRun) -> Denoiser:
        model = self.model

        def resolve(conditioning: Conditioning, prompt_type: str) -> list:
            return resolve_conditioning(conditioning, latent_shape, model.encode_condition,
                                        model.model_sampling.percent_to_sigma, prompt_type)

        positive, negative = with_matching_areas(resolve(self.positive, "positive"),
                                                 resolve(self.negative or [], "negative"))
        return PerpNegDenoiser(model.denoiser(), positive, negative, resolve(self.empty, "negative"), self.cfg,
                               self.neg_scale, model.post_cfg, model.model_wrapper, run)
