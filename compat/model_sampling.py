"""ComfyUI's model-sampling classes over Sigmagraph's ModelSampling, and the conversions between them.

ComfyUI splits a parametrization in two: a noise-level class (ModelSamplingDiscrete: the sigma
table and sigma <-> timestep) and a prediction mixin (EPS: how the network's output becomes x0).
Packs combine them (`class ModelSamplingAdvanced(ModelSamplingDiscreteFlow, CONST): pass`), set
their parameters or buffers, and patch a model with the instance. Here the classes keep ComfyUI's
state (the `sigmas` buffer, shift, multiplier, sigma_data) and compute with Sigmagraph's noise
levels built from it; a mixin names a Sigmagraph prediction type. `native(obj)` is the
ModelSampling an instance stands for, `comfy_model_sampling(ms)` the instance that stands for a
ModelSampling (its methods are then the ModelSampling's own, fractional timesteps included).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import Tensor

from sigmagraph.nodes.sampling import model_sampling as ms
from sigmagraph.nodes.sampling.model_sampling import (ContinuousNoiseLevels, DiscreteNoiseLevels, FlowNoiseLevels,
                                                      ModelSampling, NoiseLevels)

# ComfyUI's beta schedule names -> Sigmagraph's (ComfyUI's "linear" is SD's linspace of square roots, squared).
BETA_SCHEDULES = {"linear": "scaled_linear", "sqrt_linear": "linear", "squaredcos_cap_v2": "cosine"}


def _settings(model_config: Any) -> dict[str, Any]:
    return getattr(model_config, "sampling_settings", None) or {}


def _tensor(value: Tensor | float) -> Tensor:
    return value if isinstance(value, Tensor) else torch.tensor(float(value))


# ------------------------------------------------------------------------------------------------
# Prediction mixins: each names the Sigmagraph prediction type; the maths is the ModelSampling's


class _Prediction:
    """How the network's output becomes x0, and how noise is added to a latent (ComfyUI's EPS and friends)."""

    PREDICTION = "eps"
    sigma_data = 1.0

    def calculate_input(self, sigma: Tensor, noise: Tensor) -> Tensor:
        return native(self).calculate_input(sigma, noise)

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, model_input: Tensor) -> Tensor:
        return native(self).calculate_denoised(sigma, model_output, model_input)

    def noise_scaling(self, sigma: Tensor, noise: Tensor, latent_image: Tensor, max_denoise: bool = False) -> Tensor:
        return native(self).noise_scaling(sigma, noise, latent_image, max_denoise)

    def inverse_noise_scaling(self, sigma: Tensor, latent: Tensor) -> Tensor:
        return native(self).inverse_noise_scaling(sigma, latent)


class EPS(_Prediction):
    PREDICTION = "eps"


class V_PREDICTION(EPS):  # noqa: N801 - ComfyUI's names
    PREDICTION = "v_prediction"


class EDM(V_PREDICTION):
    PREDICTION = "edm"


class X0(EPS):
    PREDICTION = "x0"


class CONST(_Prediction):
    PREDICTION = "flow"


PREDICTION_CLASSES = {cls.PREDICTION: cls for cls in (EPS, V_PREDICTION, EDM, X0, CONST)}
_PREDICTION_METHODS = ("calculate_input", "calculate_denoised", "noise_scaling", "inverse_noise_scaling")


# ------------------------------------------------------------------------------------------------
# Noise-level classes


class _NoiseLevelClass(torch.nn.Module, ABC):
    """ComfyUI's noise-level state, computed through the Sigmagraph NoiseLevels `levels()` builds from it."""

    @abstractmethod
    def levels(self) -> NoiseLevels:
        """The Sigmagraph noise levels of this state (each noise-level class builds its own)."""

    def _set_sigmas(self, sigmas: Tensor) -> None:
        self.register_buffer("sigmas", sigmas.float())
        self.register_buffer("log_sigmas", sigmas.log().float())

    @property
    def sigma_min(self) -> Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> Tensor:
        return self.sigmas[-1]

    def timestep(self, sigma: Tensor | float) -> Tensor:
        return self.levels().timestep(_tensor(sigma))

    def sigma(self, timestep: Tensor | float) -> Tensor:
        return self.levels().sigma(_tensor(timestep))

    def percent_to_sigma(self, percent: float) -> float:
        return self.levels().percent_to_sigma(percent)


class ModelSamplingDiscrete(_NoiseLevelClass):
    """A discrete-time VP model: a table of training sigmas, the timestep nearest in log-sigma."""

    def __init__(self, model_config: Any = None, zsnr: bool | None = None):
        super().__init__()
        settings = _settings(model_config)
        self._register_schedule(beta_schedule=settings.get("beta_schedule", "linear"),
                                timesteps=settings.get("timesteps", 1000),
                                linear_start=settings.get("linear_start", 0.00085),
                                linear_end=settings.get("linear_end", 0.012),
                                zsnr=settings.get("zsnr", False) if zsnr is None else zsnr)
        self.sigma_data = 1.0

    def _register_schedule(self, given_betas: Tensor | None = None, beta_schedule: str = "linear",
                           timesteps: int = 1000, linear_start: float = 1e-4, linear_end: float = 2e-2,
                           cosine_s: float = 8e-3, zsnr: bool = False) -> None:
        if given_betas is None:
            if beta_schedule not in BETA_SCHEDULES:
                raise ValueError(f"beta schedule {beta_schedule!r} is not supported: expected one of "
                                 f"{', '.join(BETA_SCHEDULES)}")
            given_betas = ms.beta_schedule(BETA_SCHEDULES[beta_schedule], timesteps, linear_start, linear_end)
        self.num_timesteps = len(given_betas)
        self.linear_start, self.linear_end, self.zsnr = linear_start, linear_end, zsnr
        self.set_sigmas(ms.discrete_sigmas(torch.as_tensor(given_betas), zsnr))

    def set_sigmas(self, sigmas: Tensor) -> None:
        self._set_sigmas(sigmas)

    def levels(self) -> NoiseLevels:
        return DiscreteNoiseLevels(self.sigmas)


class ModelSamplingContinuousEDM(_NoiseLevelClass):
    """A continuous-time model over [sigma_min, sigma_max] with EDM's c_noise = ln(sigma) / 4."""

    def __init__(self, model_config: Any = None):
        super().__init__()
        settings = _settings(model_config)
        self.set_parameters(settings.get("sigma_min", 0.002), settings.get("sigma_max", 120.0),
                            settings.get("sigma_data", 1.0))

    def set_parameters(self, sigma_min: float, sigma_max: float, sigma_data: float) -> None:
        self.sigma_data = sigma_data
        self._set_sigmas(ContinuousNoiseLevels(sigma_min, sigma_max).sigmas)

    def levels(self) -> NoiseLevels:
        return ContinuousNoiseLevels(float(self.sigma_min), float(self.sigma_max))


class ModelSamplingContinuousV(ModelSamplingContinuousEDM):
    """ModelSamplingContinuousEDM with the timestep 2/pi atan(sigma) of continuous v-prediction models."""

    def timestep(self, sigma: Tensor | float) -> Tensor:
        return _tensor(sigma).atan() / math.pi * 2

    def sigma(self, timestep: Tensor | float) -> Tensor:
        return (_tensor(timestep) * math.pi / 2).tan()


def time_snr_shift(alpha: float, t: Tensor | float) -> Tensor | float:
    """SD3's resolution shift of the flow time t (Esser et al. 2024, eq. 23)."""
    return ms.shift_sigma(alpha, t)


class ModelSamplingDiscreteFlow(_NoiseLevelClass):
    """A rectified-flow model: sigma = time_snr_shift(shift, timestep / multiplier)."""

    def __init__(self, model_config: Any = None):
        super().__init__()
        settings = _settings(model_config)
        self.set_parameters(shift=settings.get("shift", 1.0), multiplier=settings.get("multiplier", 1000))

    def set_parameters(self, shift: float = 1.0, timesteps: int = 1000, multiplier: float = 1000) -> None:
        self.shift, self.multiplier = shift, multiplier
        self._set_sigmas(FlowNoiseLevels(shift, multiplier, timesteps).sigmas)

    def levels(self) -> NoiseLevels:
        return FlowNoiseLevels(self.shift, self.multiplier, len(self.sigmas))


class ModelSamplingFlux(_NoiseLevelClass):
    """Flux's flow model: its `shift` is mu, the time shift exp(mu) of a timestep in 0..1."""

    def __init__(self, model_config: Any = None):
        super().__init__()
        self.set_parameters(shift=_settings(model_config).get("shift", 1.15))

    def set_parameters(self, shift: float = 1.15, timesteps: int = 10000) -> None:
        self.shift = shift
        self._set_sigmas(FlowNoiseLevels(math.exp(shift), 1.0, timesteps).sigmas)

    def levels(self) -> NoiseLevels:
        return FlowNoiseLevels(math.exp(self.shift), 1.0, len(self.sigmas))


class StableCascadeSampling(ModelSamplingDiscrete):
    """Stable Cascade's continuous cosine schedule (Würstchen), its log-SNR moved by 2 ln(1 / shift)."""

    def __init__(self, model_config: Any = None):
        torch.nn.Module.__init__(self)
        self.sigma_data = 1.0
        self.set_parameters(_settings(model_config).get("shift", 1.0))

    def set_parameters(self, shift: float = 1.0, cosine_s: float = 8e-3) -> None:
        self.shift, self.cosine_s = shift, torch.tensor(cosine_s)
        self._init_alpha_cumprod = torch.cos(self.cosine_s / (1 + self.cosine_s) * torch.pi * 0.5) ** 2
        self.num_timesteps = 10000
        t = torch.arange(1, self.num_timesteps + 1, dtype=torch.float32) / self.num_timesteps
        self.set_sigmas(self.sigma(t))

    def sigma(self, timestep: Tensor | float) -> Tensor:
        t = _tensor(timestep)
        alpha_cumprod = torch.cos((t + self.cosine_s) / (1 + self.cosine_s) * torch.pi * 0.5) ** 2
        alpha_cumprod = alpha_cumprod / self._init_alpha_cumprod
        if self.shift != 1.0:
            log_snr = (alpha_cumprod / (1 - alpha_cumprod)).log() + 2 * math.log(1.0 / self.shift)
            alpha_cumprod = log_snr.sigmoid()
        alpha_cumprod = alpha_cumprod.clamp(0.0001, 0.9999)
        return ((1 - alpha_cumprod) / alpha_cumprod) ** 0.5

    def timestep(self, sigma: Tensor | float) -> Tensor:
        alpha_cumprod = (1 / (_tensor(sigma) ** 2 + 1)).clamp(0, 1.0)
        angle = ((alpha_cumprod * self._init_alpha_cumprod) ** 0.5).acos() / (torch.pi * 0.5)
        return angle * (1 + self.cosine_s) - self.cosine_s

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return ms.SIGMA_ABOVE_ALL
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor(1.0 - percent)))


# ------------------------------------------------------------------------------------------------
# Conversions


@dataclass(frozen=True, eq=False)
class ComfyNoiseLevels:
    """The NoiseLevels of a ComfyUI model-sampling object, read through its own methods and `sigmas` buffer."""

    source: Any

    @property
    def sigmas(self) -> Tensor:
        return self.source.sigmas.detach().float().cpu()

    def timestep(self, sigma: Tensor) -> Tensor:
        return self.source.timestep(sigma)

    def sigma(self, timestep: Tensor) -> Tensor:
        return self.source.sigma(timestep)

    def percent_to_sigma(self, percent: float) -> float:
        return float(self.source.percent_to_sigma(percent))


def prediction_of(obj: Any) -> str:
    """The Sigmagraph prediction type of a ComfyUI model-sampling object (its mixin's)."""
    prediction = getattr(type(obj), "PREDICTION", None)
    mixin = PREDICTION_CLASSES.get(prediction)
    if mixin is None:
        raise ValueError(f"{type(obj).__name__}: a model_sampling needs one of ComfyUI's prediction classes "
                         f"({', '.join(cls.__name__ for cls in PREDICTION_CLASSES.values())})")
    changed = [name for name in _PREDICTION_METHODS if getattr(type(obj), name) is not getattr(mixin, name)]
    if changed:
        raise ValueError(f"{type(obj).__name__} redefines {', '.join(changed)}; Sigmagraph runs only ComfyUI's own "
                         f"prediction types")
    return prediction


def native(obj: Any) -> ModelSampling:
    """The Sigmagraph ModelSampling a ComfyUI model-sampling object stands for."""
    own = obj.__dict__.get("_native")
    if own is not None:
        return own
    return ModelSampling(ComfyNoiseLevels(obj), prediction_of(obj), float(getattr(obj, "sigma_data", 1.0)))


def _noise_level_class(levels: NoiseLevels) -> type[_NoiseLevelClass]:
    if isinstance(levels, DiscreteNoiseLevels):
        return ModelSamplingDiscrete
    if isinstance(levels, FlowNoiseLevels):
        return ModelSamplingFlux if levels.multiplier == 1.0 else ModelSamplingDiscreteFlow
    return ModelSamplingContinuousEDM


@cache
def _standing_class(base: type[_NoiseLevelClass], mixin: type[_Prediction]) -> type:
    """`class ModelSamplingX(base, mixin)` whose noise levels are those of the ModelSampling it stands for."""
    return type(base.__name__, (base, mixin), {"levels": lambda self: self._native.levels, "__module__": __name__})


def comfy_model_sampling(model_sampling: ModelSampling) -> Any:
    """The ComfyUI model-sampling object of a ModelSampling: its classes, its state and its numbers.

    Its methods are the ModelSampling's (`levels()` is the ModelSampling's own), so a pack that
    reads percent_to_sigma or builds a schedule from it gets Sigmagraph's numbers exactly.
    """
    levels = model_sampling.levels
    if isinstance(levels, ComfyNoiseLevels):
        return levels.source
    base = _noise_level_class(levels)
    cls = _standing_class(base, PREDICTION_CLASSES.get(model_sampling.prediction, EPS))
    instance = cls.__new__(cls)
    torch.nn.Module.__init__(instance)
    instance._set_sigmas(model_sampling.sigmas)
    instance.sigma_data = model_sampling.sigma_data
    if isinstance(levels, FlowNoiseLevels):
        instance.shift = math.log(levels.shift) if base is ModelSamplingFlux else levels.shift
        instance.multiplier = levels.multiplier
    object.__setattr__(instance, "_native", model_sampling)
    return instance
