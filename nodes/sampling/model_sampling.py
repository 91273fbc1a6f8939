"""Model parametrizations: how a network's raw output, its timestep input and the noise level sigma relate.

Samplers work in one convention (Karras et al. 2022): x = x0 + sigma * n, and a denoiser returns x0.
A trained network sees something else — a scaled input, a timestep, and it predicts eps, v, x0 or a
velocity. A `ModelSampling` is that translation, made of two independent parts:

- the noise levels (`DiscreteNoiseLevels`, `ContinuousNoiseLevels`, `FlowNoiseLevels`): the training
  range of sigma, its table, and the sigma <-> network-timestep conversion;
- the prediction type: the preconditioning D(x) = c_skip x + c_out F(c_in x, c_noise) of the network F.

`NetworkDenoiser(net, model_sampling)` composes the two into the samplers' `model(x, sigma, **cond) -> x0`.
Rectified-flow models keep their own convention x = (1 - sigma) x0 + sigma n with sigma in [0, 1]; the
samplers' Euler step is then exactly the flow ODE step, so only the initial noise scaling differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

import torch
from torch import Tensor

from .broadcast import per_batch

Prediction = Literal["eps", "v_prediction", "x0", "lcm", "edm", "ve", "flow"]
PREDICTIONS: tuple[str, ...] = ("eps", "v_prediction", "x0", "lcm", "edm", "ve", "flow")
BetaSchedule = Literal["scaled_linear", "linear", "cosine"]

# Returned by percent_to_sigma(0): above any sigma, so a timestep range starting at 0% is always open.
SIGMA_ABOVE_ALL = 999999999.9
# Zero terminal SNR leaves alpha_bar_T = 0 and sigma_T infinite, which the sigma-space samplers cannot
# start from; ComfyUI substitutes this alpha_bar (sigma_T ~ 4518.8), and so do we for parity.
ZSNR_TERMINAL_ALPHA_CUMPROD = 4.8973451890853435e-08
# Latent consistency models are distilled on 50 of the 1000 training timesteps (Luo et al. 2023).
LCM_ORIGINAL_STEPS = 50


# ----------------------------------------------------------------------------------------------
# Discrete-time VP training schedules


def beta_schedule(name: BetaSchedule, timesteps: int = 1000, linear_start: float = 0.00085,
                  linear_end: float = 0.012) -> Tensor:
    """The training betas (float64): diffusers' `scaled_linear` (SD), `linear` or `cosine` (squaredcos_cap_v2).

    `scaled_linear` is what ComfyUI and CompVis call "linear": linspace(sqrt(start), sqrt(end))**2.
    """
    if name == "scaled_linear":
        return torch.linspace(linear_start**0.5, linear_end**0.5, timesteps, dtype=torch.float64) ** 2
    if name == "linear":
        return torch.linspace(linear_start, linear_end, timesteps, dtype=torch.float64)
    if name == "cosine":
        # Nichol & Dhariwal (2021) eq. 17 with s = 0.008, betas capped at 0.999.
        t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        alpha_bar = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {name!r}: expected scaled_linear, linear or cosine")


def rescale_zero_terminal_snr(alphas_cumprod: Tensor) -> Tensor:
    """Lin et al. (2023) Algorithm 1: shift and scale sqrt(alpha_bar) so the last step has SNR exactly 0."""
    root = alphas_cumprod.sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * (first / (first - last))
    return root**2


def discrete_sigmas(betas: Tensor, zsnr: bool = False) -> Tensor:
    """The sigma table sqrt((1 - alpha_bar) / alpha_bar) of a beta schedule, ascending in t (float32)."""
    alphas_cumprod = torch.cumprod(1 - betas.double(), dim=0)
    if zsnr:
        alphas_cumprod = rescale_zero_terminal_snr(alphas_cumprod)
        alphas_cumprod[-1] = ZSNR_TERMINAL_ALPHA_CUMPROD
    return ((1 - alphas_cumprod) / alphas_cumprod).sqrt().float()


# ----------------------------------------------------------------------------------------------
# Noise levels: the training range of sigma and the network's timestep input


class NoiseLevels(Protocol):
    """The sigma range a model was trained on and its sigma <-> timestep conversion."""

    @property
    def sigmas(self) -> Tensor:
        """An ascending table of training sigmas (float32), used by the table-based schedules."""

    def timestep(self, sigma: Tensor) -> Tensor:
        """The network's timestep (c_noise) for sigma."""

    def sigma(self, timestep: Tensor) -> Tensor:
        """The training sigma at a timestep."""

    def percent_to_sigma(self, percent: float) -> float:
        """The sigma at a fraction of the sampling run (0 = start, 1 = end)."""


def _as_tensor(value: Tensor | float) -> Tensor:
    return value if isinstance(value, Tensor) else torch.tensor(float(value))


@dataclass(frozen=True, eq=False)
class DiscreteNoiseLevels:
    """A discrete-time VP model: table index i is the network timestep i * stride + stride - 1.

    `timestep(sigma)` is the integer t nearest in log-sigma (ComfyUI, sgm), or with `fractional`
    the t interpolated linearly in log-sigma between its neighbours (k-diffusion, CompVis).
    `stride` > 1 keeps every stride-th level of the table, as distilled models (LCM) do.
    """

    table: Tensor
    stride: int = 1
    fractional: bool = False

    @property
    def sigmas(self) -> Tensor:
        return self.table[self.stride - 1::self.stride]

    def timestep(self, sigma: Tensor) -> Tensor:
        log_sigmas = self.sigmas.log().to(sigma.device)
        log_sigma = sigma.float().log()
        if self.fractional:
            low = (torch.searchsorted(log_sigmas, log_sigma.reshape(-1), right=True) - 1)
            low = low.clamp(0, len(log_sigmas) - 2).reshape(sigma.shape)
            w = ((log_sigma - log_sigmas[low]) / (log_sigmas[low + 1] - log_sigmas[low])).clamp(0, 1)
            index = low + w
        else:
            index = (log_sigma.reshape(-1, 1) - log_sigmas).abs().argmin(dim=1).reshape(sigma.shape).float()
        return (index * self.stride + (self.stride - 1)).to(sigma.dtype)

    def sigma(self, timestep: Tensor) -> Tensor:
        log_sigmas = self.sigmas.log().to(timestep.device)
        index = ((timestep.float() - (self.stride - 1)) / self.stride).clamp(0, len(log_sigmas) - 1)
        low, high = index.floor().long(), index.ceil().long()
        w = index.frac()
        return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return SIGMA_ABOVE_ALL
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * (len(self.table) - 1))))


@dataclass(frozen=True, eq=False)
class ContinuousNoiseLevels:
    """A continuous-time model over [sigma_min, sigma_max] with c_noise = scale * ln(sigma) + shift.

    EDM (Karras et al. 2022, Table 1): scale 1/4, shift 0. VE (Song et al. 2021 as preconditioned in
    EDM): c_noise = ln(sigma / 2). The table of 1000 log-spaced sigmas serves the table-based schedules.
    """

    sigma_min: float
    sigma_max: float
    c_noise_scale: float = 0.25
    c_noise_shift: float = 0.0

    @property
    def sigmas(self) -> Tensor:
        return torch.linspace(math.log(self.sigma_min), math.log(self.sigma_max), 1000).exp()

    def timestep(self, sigma: Tensor) -> Tensor:
        return self.c_noise_scale * sigma.log() + self.c_noise_shift

    def sigma(self, timestep: Tensor) -> Tensor:
        return ((timestep - self.c_noise_shift) / self.c_noise_scale).exp()

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return SIGMA_ABOVE_ALL
        if percent >= 1.0:
            return 0.0
        log_min, log_max = math.log(self.sigma_min), math.log(self.sigma_max)
        return math.exp(log_min + (1.0 - percent) * (log_max - log_min))


def shift_sigma(shift: float, t: Tensor | float) -> Tensor | float:
    """The SD3 resolution shift sigma = shift t / (1 + (shift - 1) t) (Esser et al. 2024, eq. 23)."""
    return t if shift == 1.0 else shift * t / (1 + (shift - 1) * t)


@dataclass(frozen=True, eq=False)
class FlowNoiseLevels:
    """A rectified-flow model: sigma in [0, 1], sigma(t) = shift_sigma(shift, t / multiplier).

    The network's timestep is sigma * multiplier (SD3: 1000; Flux: 1, with shift = exp(mu)). As in
    ComfyUI, `timestep` does not undo the shift: the shifted sigma is what the network was fed.
    """

    shift: float = 1.0
    multiplier: float = 1000.0
    table_size: int = 1000

    @property
    def sigmas(self) -> Tensor:
        # sigma at the timesteps k / N * multiplier, as ComfyUI builds the table (the float32 round trip
        # through the multiplier is kept: it moves some of 10000 levels by an ulp).
        return self.sigma(torch.arange(1, self.table_size + 1, dtype=torch.float32) / self.table_size * self.multiplier)

    def timestep(self, sigma: Tensor) -> Tensor:
        return sigma * self.multiplier

    def sigma(self, timestep: Tensor) -> Tensor:
        return shift_sigma(self.shift, timestep / self.multiplier)

    def percent_to_sigma(self, percent: float) -> float:
        if percent <= 0.0:
            return 1.0
        if percent >= 1.0:
            return 0.0
        return shift_sigma(self.shift, 1.0 - percent)


# ----------------------------------------------------------------------------------------------
# The parametrization


@dataclass(frozen=True, eq=False)
class ModelSampling:
    """Noise levels plus a prediction type: everything needed to turn a network into a denoiser.

    Predictions, with F the raw network output and D = c_skip x + c_out F(c_in x):
    eps (F = noise), v_prediction (F = v, Salimans & Ho 2022), x0 (F = x0), lcm (eps network with
    the consistency boundary condition of Luo et al. 2023), edm (Karras et al. 2022, sigma_data 0.5),
    ve (D = x + sigma F, EDM's VEPrecond), flow (F = noise - x0, the rectified-flow velocity).
    """

    levels: NoiseLevels
    prediction: Prediction = "eps"
    sigma_data: float = 1.0
    _table: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction type {self.prediction!r}: expected one of {', '.join(PREDICTIONS)}")
        object.__setattr__(self, "_table", self.levels.sigmas)

    @property
    def sigmas(self) -> Tensor:
        """The ascending table of training sigmas."""
        return self._table

    @property
    def sigma_min(self) -> float:
        return float(self._table[0])

    @property
    def sigma_max(self) -> float:
        return float(self._table[-1])

    def timestep(self, sigma: Tensor) -> Tensor:
        """The network's timestep input for sigma."""
        return self.levels.timestep(sigma)

    def sigma(self, timestep: Tensor) -> Tensor:
        """The sigma at a network timestep."""
        return self.levels.sigma(timestep)

    def percent_to_sigma(self, percent: float) -> float:
        """The sigma at a fraction of the run, for start/end percent options."""
        return self.levels.percent_to_sigma(percent)

    def is_max_denoise(self, sigma: Tensor | float) -> bool:
        """Whether sampling starting at sigma starts from pure noise (sigma at or above sigma_max)."""
        sigma = float(sigma)
        return math.isclose(sigma, self.sigma_max, rel_tol=1e-5) or sigma > self.sigma_max

    def scalings(self, sigma: Tensor) -> tuple[Tensor | float, Tensor | float, Tensor | float]:
        """(c_skip, c_out, c_in) for sigma, shaped like sigma."""
        sd = self.sigma_data
        c_in = 1 / (sigma**2 + sd**2) ** 0.5
        match self.prediction:
            case "eps":
                return 1.0, -sigma, c_in
            case "v_prediction":
                return sd**2 / (sigma**2 + sd**2), -sigma * sd / (sigma**2 + sd**2) ** 0.5, c_in
            case "edm":
                return sd**2 / (sigma**2 + sd**2), sigma * sd / (sigma**2 + sd**2) ** 0.5, c_in
            case "x0":
                return 0.0, 1.0, c_in
            case "ve":
                return 1.0, sigma, 1.0
            case "flow":
                return 1.0, -sigma, 1.0
            case "lcm":
                # x0 = c_skip(t) x + c_out(t) (x - sigma eps), with t the integer timestep scaled by 10.
                t = self.timestep(sigma) * 10.0
                skip = 0.25 / (t**2 + 0.25)
                out = t / (t**2 + 0.25) ** 0.5
                return skip + out, -out * sigma, c_in

    def calculate_input(self, sigma: Tensor, x: Tensor) -> Tensor:
        """The network's input c_in * x."""
        return x * per_batch(self.scalings(sigma)[2], x)

    def calculate_denoised(self, sigma: Tensor, model_output: Tensor, x: Tensor) -> Tensor:
        """The denoised x0 = c_skip * x + c_out * model_output."""
        c_skip, c_out, _ = self.scalings(sigma)
        return x * per_batch(c_skip, x) + model_output * per_batch(c_out, x)

    def noise_scaling(self, sigma: Tensor | float, noise: Tensor, latent: Tensor, max_denoise: bool = False) -> Tensor:
        """The sampler's starting x: latent noised to sigma.

        Flow: sigma * noise + (1 - sigma) * latent. Otherwise latent + sigma * noise, with the noise
        scaled by sqrt(1 + sigma^2) when starting from pure noise (ComfyUI and sgm do this; diffusers
        only for "leading" spacing), which matches the variance of VP data noised to sigma.
        """
        sigma = per_batch(_as_tensor(sigma).to(noise.device), noise)
        if self.prediction == "flow":
            return sigma * noise + (1.0 - sigma) * latent
        scale = (1.0 + sigma**2).sqrt() if max_denoise else sigma
        return noise * scale + latent

    def inverse_noise_scaling(self, sigma: Tensor | float, latent: Tensor) -> Tensor:
        """The inverse of `noise_scaling` for the sampler's result at the last sigma."""
        if self.prediction != "flow":
            return latent
        # Flow results with leftover noise go back to x0 + sigma/(1 - sigma) noise, so that a later
        # `noise_scaling` without new noise restores them exactly.
        return latent / (1.0 - per_batch(_as_tensor(sigma).to(latent.device), latent))


# ----------------------------------------------------------------------------------------------
# Constructors for the model families


def discrete_model_sampling(prediction: Prediction = "eps", beta_schedule_name: BetaSchedule = "scaled_linear",
                            linear_start: float = 0.00085, linear_end: float = 0.012, timesteps: int = 1000,
                            zsnr: bool = False, fractional_timesteps: bool = False) -> ModelSampling:
    """A discrete-time VP model (SD1/SD2/SDXL defaults); `lcm` uses the 50 distilled levels."""
    table = discrete_sigmas(beta_schedule(beta_schedule_name, timesteps, linear_start, linear_end), zsnr)
    stride = timesteps // LCM_ORIGINAL_STEPS if prediction == "lcm" else 1
    return ModelSampling(DiscreteNoiseLevels(table, stride, fractional_timesteps), prediction)


def edm_model_sampling(prediction: Prediction = "edm", sigma_min: float = 0.002, sigma_max: float = 120.0,
                       sigma_data: float | None = None) -> ModelSampling:
    """A continuous EDM-style model; sigma_data defaults to 0.5 for `edm` and 1.0 otherwise."""
    if sigma_data is None:
        sigma_data = 0.5 if prediction == "edm" else 1.0
    return ModelSampling(ContinuousNoiseLevels(sigma_min, sigma_max), prediction, sigma_data)


def ve_model_sampling(sigma_min: float = 0.02, sigma_max: float = 100.0) -> ModelSampling:
    """A variance-exploding score model (NCSN++ as preconditioned by EDM's VEPrecond)."""
    return ModelSampling(ContinuousNoiseLevels(sigma_min, sigma_max, 1.0, -math.log(2.0)), "ve")


def flow_model_sampling(shift: float = 1.0, multiplier: float = 1000.0, table_size: int = 1000) -> ModelSampling:
    """A rectified-flow model (SD3: shift 3, multiplier 1000; Flux: shift exp(mu), multiplier 1, 10000 levels)."""
    return ModelSampling(FlowNoiseLevels(shift, multiplier, table_size), "flow")


# ----------------------------------------------------------------------------------------------
# Network -> denoiser

Network = Callable[..., Tensor]


@dataclass(frozen=True, eq=False)
class NetworkDenoiser:
    """The samplers' `model(x, sigma, **cond) -> x0` for a network `net(x_in, timestep, **cond) -> F`.

    `cond` (e.g. c_crossattn, y) goes to the network untouched; sigma is a [batch] tensor.
    """

    net: Network
    model_sampling: ModelSampling

    def __call__(self, x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        ms = self.model_sampling
        output = self.net(ms.calculate_input(sigma, x), ms.timestep(sigma).float(), **cond)
        return ms.calculate_denoised(sigma, output, x)
