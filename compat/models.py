"""ComfyUI's model objects (comfy.model_base): a MODEL's `patcher.model` as ComfyUI code reads it.

`BaseModel.of(model)` views a Sigmagraph DiffusionModel the way packs read ComfyUI's: its
model_sampling and latent_format objects, model_type and model_config, `apply_model(x, sigma,
**c)` (the unguided denoiser, x0 out), `process_latent_in/out`, the network's module as
`diffusion_model`. The class says the family, for packs' isinstance checks (SDXL, SDXLRefiner);
the other ComfyUI class names exist for those checks and match no Sigmagraph family yet.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sigmagraph.nodes.diffusion_model import DiffusionModel
from sigmagraph.nodes.sampling.model_sampling import (ContinuousNoiseLevels, FlowNoiseLevels, ModelSampling,
                                                      NetworkDenoiser)

from .latents import comfy_latent_format
from .model_sampling import comfy_model_sampling

# Keys of ComfyUI's `c` dict that carry options for its own model code, not network inputs.
COMFY_ONLY_INPUTS = frozenset({"transformer_options", "control"})


class ModelType(enum.Enum):
    EPS = 1
    V_PREDICTION = 2
    V_PREDICTION_EDM = 3
    STABLE_CASCADE = 4
    EDM = 5
    FLOW = 6
    V_PREDICTION_CONTINUOUS = 7
    FLUX = 8
    IMG_TO_IMG = 9
    FLOW_COSMOS = 10


def model_type(model_sampling: ModelSampling) -> ModelType:
    """ComfyUI's ModelType of a parametrization (Flux-style flow for a timestep multiplier of 1)."""
    if model_sampling.prediction == "flow":
        multiplier = getattr(model_sampling.levels, "multiplier", 1000.0)
        return ModelType.FLUX if multiplier == 1.0 else ModelType.FLOW
    return {"v_prediction": ModelType.V_PREDICTION, "edm": ModelType.EDM}.get(model_sampling.prediction,
                                                                                ModelType.EPS)


def sampling_settings(model_sampling: ModelSampling) -> dict[str, Any]:
    """ComfyUI's `model_config.sampling_settings`: what its model-sampling classes build the schedule from.

    A discrete model reports none: ComfyUI's defaults are SD's schedule, the one of every
    Sigmagraph family.
    """
    levels = model_sampling.levels
    if isinstance(levels, FlowNoiseLevels):
        if levels.multiplier == 1.0:
            return {"shift": math.log(levels.shift)}  # ModelSamplingFlux's shift is mu
        return {"shift": levels.shift, "multiplier": levels.multiplier}
    if isinstance(levels, ContinuousNoiseLevels):
        return {"sigma_min": levels.sigma_min, "sigma_max": levels.sigma_max, "sigma_data": model_sampling.sigma_data}
    return {}


@dataclass
class ModelConfig:
    """The parts of ComfyUI's model_config (supported_models) that packs read."""

    sampling_settings: dict[str, Any] = field(default_factory=dict)
    unet_config: dict[str, Any] = field(default_factory=dict)
    latent_format: type | None = None
    manual_cast_dtype: torch.dtype | None = None
    supported_inference_dtypes: tuple[torch.dtype, ...] = (torch.float32,)


class BaseModel(torch.nn.Module):
    """A Sigmagraph DiffusionModel as ComfyUI's model object (`ModelPatcher.model`)."""

    def __init__(self, source: DiffusionModel):
        super().__init__()
        self.source = source
        self.model_sampling = comfy_model_sampling(source.model_sampling)
        self.latent_format = comfy_latent_format(source.latent_format)
        self.model_type = model_type(source.model_sampling)
        module = getattr(getattr(source.network, "managed", None), "module", None)
        self.diffusion_model = module if isinstance(module, torch.nn.Module) else None  # the UNet, if it has one
        config = getattr(module, "config", None)
        self.model_config = ModelConfig(sampling_settings(source.model_sampling),
                                        dict(vars(config)) if config is not None else {}, type(self.latent_format))
        self.device = source.device
        self.current_patcher = None
        self._denoiser: NetworkDenoiser | None = None

    @staticmethod
    def of(source: DiffusionModel) -> "BaseModel":
        """The model object of a DiffusionModel, of its family's class."""
        return FAMILY_CLASSES.get(source.family, BaseModel)(source)

    def denoiser(self) -> NetworkDenoiser:
        """The unguided denoiser, readied once per view (a view lives for one node's call)."""
        if self._denoiser is None:
            self._denoiser = self.source.denoiser()
        return self._denoiser

    def apply_model(self, x: Tensor, t: Tensor, c_concat: Tensor | None = None, c_crossattn: Tensor | None = None,
                    control: Any = None, transformer_options: dict | None = None, **kwargs: Any) -> Tensor:
        """The denoised x0 at noise level t (ComfyUI passes sigma as t), the conditioning as network inputs."""
        inputs = {"c_concat": c_concat, "c_crossattn": c_crossattn, **kwargs}
        return self.denoiser()(x, t, **{k: v for k, v in inputs.items()
                                        if v is not None and k not in COMFY_ONLY_INPUTS})

    def process_latent_in(self, latent: Tensor) -> Tensor:
        return self.source.latent_format.process_in(latent)

    def process_latent_out(self, latent: Tensor) -> Tensor:
        return self.source.latent_format.process_out(latent)

    def get_dtype(self) -> torch.dtype:
        return getattr(self.source.network, "dtype", torch.float32)


def _family_class(name: str, base: type = BaseModel) -> type:
    return type(name, (base,), {"__doc__": f"ComfyUI's {name} model class, for isinstance checks.",
                                "__module__": __name__})


SDXLRefiner = _family_class("SDXLRefiner")
SDXL = _family_class("SDXL")
Flux = _family_class("Flux")
# ComfyUI's other model classes that packs test models against; no Sigmagraph family is one of them yet.
OTHER_CLASSES = {name: _family_class(name) for name in (
    "SD21UNCLIP", "SD_X4Upscaler", "StableCascade_C", "StableCascade_B", "SD3", "AuraFlow", "HunyuanDiT", "PixArt",
    "GenmoMochi", "LTXV", "HunyuanVideo", "CosmosVideo", "CosmosPredict2", "Lumina2", "WAN21", "WAN22", "HiDream",
    "QwenImage", "Anima", "Omnigen2", "HunyuanImage21", "ACEStep", "StableAudio1")}
OTHER_CLASSES["Chroma"] = _family_class("Chroma", Flux)

FAMILY_CLASSES: dict[str, type[BaseModel]] = {"SDXL": SDXL, "SDXL refiner": SDXLRefiner}
