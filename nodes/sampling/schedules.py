"""Sigma schedules: pure functions returning a descending 1-D float32 tensor that ends in 0.

Two kinds:
- closed forms over a sigma range, `f(steps, sigma_min, sigma_max, ...)` (k-diffusion's karras,
  exponential, polyexponential, vp; kl_optimal; sgm's EDM discretization);
- schedules of a model, `f(model_sampling, steps)`, that read its training table or timesteps
  (normal, sgm_uniform, simple, ddim_uniform, beta, linear_quadratic, sgm's legacy DDPM).

`SCHEDULES` maps every name a KSampler accepts to a `(model_sampling, steps) -> sigmas` function;
the nodes build their choice lists from it, so a schedule added there appears everywhere.
`scheduled_sigmas` adds ComfyUI's `denoise` handling on top. Numbers match ComfyUI's, its quirks
included (docs/parity.md).
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch
from torch import Tensor

from .model_sampling import ModelSampling

Schedule = Callable[[ModelSampling, int], Tensor]


def append_zero(sigmas: Tensor) -> Tensor:
    """The schedule with the final sigma 0 appended."""
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _from_list(sigmas: list[float]) -> Tensor:
    return torch.tensor(sigmas, dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# Closed forms over a sigma range


def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """Karras et al. (2022) eq. 5: sigma_i = (max^(1/rho) + i/(n-1) (min^(1/rho) - max^(1/rho)))^rho."""
    ramp = torch.linspace(0, 1, steps)
    max_inv_rho, min_inv_rho = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return append_zero((max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho)


def edm_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """sgm's EDMDiscretization: the Karras schedule with EDM's defaults (0.002, 80, rho 7)."""
    return karras_sigmas(steps, sigma_min, sigma_max, rho)


def exponential_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Sigmas evenly spaced in log-sigma from sigma_max to sigma_min."""
    return append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps).exp())


def polyexponential_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 1.0) -> Tensor:
    """log sigma = log sigma_min + r^rho (log sigma_max - log sigma_min), r from 1 to 0 (k-diffusion)."""
    ramp = torch.linspace(1, 0, steps) ** rho
    log_min, log_max = math.log(sigma_min), math.log(sigma_max)
    return append_zero((ramp * (log_max - log_min) + log_min).exp())


def vp_sigmas(steps: int, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3) -> Tensor:
    """The continuous VP-SDE (Song et al. 2021): sigma(t) = sqrt(exp(beta_d t^2/2 + beta_min t) - 1), t: 1 -> eps_s."""
    t = torch.linspace(1, eps_s, steps)
    return append_zero(torch.special.expm1(beta_d * t**2 / 2 + beta_min * t).sqrt())


def kl_optimal_sigmas(steps: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Sigmas evenly spaced in arctan(sigma) (Sabour et al. 2024, "Align Your Steps", KL-optimal)."""
    # ComfyUI divides by steps - 1 and yields NaN for one step; one step is just sigma_max.
    ramp = torch.arange(steps, dtype=torch.float32) / max(steps - 1, 1)
    return append_zero((ramp * math.atan(sigma_min) + (1 - ramp) * math.atan(sigma_max)).tan())


# ----------------------------------------------------------------------------------------------
# Schedules of a model


def _timestep_spaced(model_sampling: ModelSampling, steps: int, sgm: bool) -> Tensor:
    """Sigmas at timesteps evenly spaced from t(sigma_max) to t(sigma_min) (sgm: the last one left out)."""
    start = model_sampling.timestep(torch.tensor(model_sampling.sigma_max))
    end = model_sampling.timestep(torch.tensor(model_sampling.sigma_min))
    if sgm:
        return append_zero(model_sampling.sigma(torch.linspace(float(start), float(end), steps + 1)[:-1]))
    if math.isclose(float(model_sampling.sigma(end)), 0.0, abs_tol=1e-5):
        # The table already reaches zero: the last timestep is the final 0.
        return model_sampling.sigma(torch.linspace(float(start), float(end), steps + 1))
    return append_zero(model_sampling.sigma(torch.linspace(float(start), float(end), steps)))


def normal_sigmas(model_sampling: ModelSampling, steps: int) -> Tensor:
    """Timesteps linspace(t_max, t_min, steps) mapped to sigma (k-diffusion's get_sigmas, diffusers' linspace)."""
    return _timestep_spaced(model_sampling, steps, sgm=False)


def sgm_uniform_sigmas(model_sampling: ModelSampling, steps: int) -> Tensor:
    """Timesteps linspace(t_max, t_min, steps + 1) without the last, mapped to sigma (sgm's uniform)."""
    return _timestep_spaced(model_sampling, steps, sgm=True)


def simple_sigmas(model_sampling: ModelSampling, steps: int) -> Tensor:
    """Every (table size / steps)-th table sigma from the top (diffusers' "trailing" spacing)."""
    table = model_sampling.sigmas
    stride = len(table) / steps
    return _from_list([float(table[-(1 + int(i * stride))]) for i in range(steps)] + [0.0])


def ddim_uniform_sigmas(model_sampling: ModelSampling, steps: int) -> Tensor:
    """Table sigmas at t = 1, 1 + k, 1 + 2k, ... with k = table size // steps (DDIM's uniform spacing).

    This is diffusers' "leading" spacing with steps_offset 1. Like ComfyUI it walks the whole table,
    so a k that does not divide the table size adds steps (7 asked, 8 given).
    """
    table = model_sampling.sigmas
    table_reaches_zero = math.isclose(float(table[1]), 0.0, abs_tol=1e-5)
    stride = max(len(table) // (steps + table_reaches_zero), 1)
    picked = [float(s) for s in table[1::stride].flip(0)]
    return _from_list(picked if table_reaches_zero else picked + [0.0])


def beta_sigmas(model_sampling: ModelSampling, steps: int, alpha: float = 0.6, beta: float = 0.6) -> Tensor:
    """Timesteps at Beta(alpha, beta) quantiles (Lee et al. 2024, "Beta sampling is all you need").

    t_i = round(ppf(1 - i/steps) * (table size - 1)); repeated timesteps are dropped, as ComfyUI does.
    """
    table = model_sampling.sigmas
    quantiles = 1 - torch.arange(steps, dtype=torch.float64) / steps
    timesteps = torch.round(beta_quantile(quantiles, alpha, beta) * (len(table) - 1)).long()
    timesteps = torch.unique_consecutive(timesteps)
    return append_zero(table[timesteps].float())


def linear_quadratic_sigmas(model_sampling: ModelSampling, steps: int, threshold_noise: float = 0.025,
                            linear_steps: int | None = None) -> Tensor:
    """Mochi's schedule (Genmo 2024): sigma_max times 1 - (linear, then quadratic) levels.

    The level rises linearly to threshold_noise over the first `linear_steps` (half) of the steps,
    then along the quadratic that continues it smoothly up to 1.
    """
    if steps == 1:
        return _from_list([model_sampling.sigma_max, 0.0])
    linear_steps = steps // 2 if linear_steps is None else linear_steps
    quadratic_steps = steps - linear_steps
    # The quadratic a i^2 + b i + c joins the line at i = linear_steps with equal slope, and reaches 1 at i = steps.
    gap = linear_steps - threshold_noise * steps
    a = gap / (linear_steps * quadratic_steps**2)
    b = threshold_noise / linear_steps - 2 * gap / quadratic_steps**2
    c = a * linear_steps**2
    levels = ([i * threshold_noise / linear_steps for i in range(linear_steps)]
              + [a * i**2 + b * i + c for i in range(linear_steps, steps)] + [1.0])
    return _from_list([1.0 - level for level in levels]) * model_sampling.sigma_max


def legacy_ddpm_sigmas(model_sampling: ModelSampling, steps: int) -> Tensor:
    """sgm's LegacyDDPMDiscretization: table sigmas at t = floor(T-1 - k (T-1)/steps), k = 0..steps-1."""
    table = model_sampling.sigmas
    last = len(table) - 1
    if steps > len(table):
        raise ValueError(f"legacy_ddpm needs steps <= {len(table)}, got {steps}")
    timesteps = (torch.arange(steps, dtype=torch.float64) * (-last / steps) + last).floor().long()
    return append_zero(table[timesteps].float())


def _range_schedule(closed_form: Callable[[int, float, float], Tensor]) -> Schedule:
    """A closed-form schedule over the model's sigma range."""

    def schedule(model_sampling: ModelSampling, steps: int) -> Tensor:
        return closed_form(steps, model_sampling.sigma_min, model_sampling.sigma_max)

    schedule.__name__ = closed_form.__name__
    schedule.__doc__ = f"{closed_form.__doc__} Over the model's sigma range."
    return schedule


# ----------------------------------------------------------------------------------------------
# Fixed tables: Align Your Steps and SD-Turbo

# Sabour et al. (2024), "Align Your Steps": 10-step noise levels optimized per model (NVIDIA's tables).
AYS_NOISE_LEVELS: dict[str, tuple[float, ...]] = {
    "SD1": (14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092,
            0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582),
    "SDXL": (14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141,
             0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582),
    "SVD": (700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002),
}


def loglinear_interp(levels: Tensor, count: int) -> Tensor:
    """A descending sequence resampled to `count` points, interpolating log values over an even grid."""
    xs = torch.linspace(0, 1, len(levels), dtype=torch.float64)
    new_xs = torch.linspace(0, 1, count, dtype=torch.float64)
    ys = levels.double().log().flip(0)
    index = torch.searchsorted(xs, new_xs, right=True).clamp(1, len(xs) - 1)
    w = (new_xs - xs[index - 1]) / (xs[index] - xs[index - 1])
    return (ys[index - 1] + w * (ys[index] - ys[index - 1])).exp().flip(0)


def align_your_steps_sigmas(model_type: Literal["SD1", "SDXL", "SVD"], steps: int, denoise: float = 1.0) -> Tensor:
    """The AYS noise levels for SD1, SDXL or SVD, log-linearly interpolated to `steps` (ComfyUI's node).

    denoise < 1 keeps the last round(steps * denoise) steps; the final level is replaced by 0.
    """
    if denoise <= 0.0:
        return torch.zeros(0)
    kept = steps if denoise >= 1.0 else round(steps * denoise)
    levels = torch.tensor(AYS_NOISE_LEVELS[model_type], dtype=torch.float64)
    if steps + 1 != len(levels):
        levels = loglinear_interp(levels, steps + 1)
    sigmas = levels[-(kept + 1):].float()
    sigmas[-1] = 0.0
    return sigmas


def sd_turbo_sigmas(model_sampling: ModelSampling, steps: int, denoise: float = 1.0) -> Tensor:
    """SD-Turbo's timesteps 999, 899, ..., 99 from index 10 - int(10 * denoise), mapped to sigma."""
    start = 10 - int(10 * denoise)
    timesteps = (torch.arange(10, 0, -1) * 100 - 1)[start:start + steps]
    return append_zero(model_sampling.sigma(timesteps.float()))


# ----------------------------------------------------------------------------------------------
# The Beta distribution's quantile (for `beta_sigmas`), without scipy


def regularized_incomplete_beta(x: Tensor, a: float, b: float, max_terms: int = 500) -> Tensor:
    """I_x(a, b), the Beta(a, b) CDF, from its continued fraction (DLMF 8.17.22) by Lentz's method.

    The fraction converges fast for x below the mean (a + 1) / (a + b + 2); above it we use
    I_x(a, b) = 1 - I_{1-x}(b, a). Computed in float64.
    """
    x = x.double()
    flip = x > (a + 1) / (a + b + 2)
    xs = torch.where(flip, 1 - x, x).clamp(1e-300, 1.0)
    p = torch.where(flip, torch.tensor(b, dtype=torch.float64), torch.tensor(a, dtype=torch.float64))
    q = torch.where(flip, torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    log_front = (p * xs.log() + q * torch.log1p(-xs) + torch.lgamma(p + q) - torch.lgamma(p) - torch.lgamma(q)
                 - p.log())
    fraction = _incomplete_beta_fraction(xs, p, q, max_terms)
    value = log_front.exp() * fraction
    value = torch.where(flip, 1 - value, value)
    return torch.where(x <= 0, torch.zeros_like(value), torch.where(x >= 1, torch.ones_like(value), value))


def _incomplete_beta_fraction(x: Tensor, a: Tensor, b: Tensor, max_terms: int) -> Tensor:
    """1 / (1 + d1 / (1 + d2 / (1 + ...))) with d_2m = m (b - m) x / ((a + 2m - 1)(a + 2m)) and
    d_2m+1 = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)), evaluated by modified Lentz."""
    tiny = 1e-300

    def guard(v: Tensor) -> Tensor:
        return torch.where(v.abs() < tiny, torch.full_like(v, tiny), v)

    c = torch.ones_like(x)
    d = 1 / guard(1 - (a + b) * x / (a + 1))
    result = d
    for m in range(1, max_terms + 1):
        for coefficient in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 / guard(1 + coefficient * d)
            c = guard(1 + coefficient / c)
            delta = c * d
            result = result * delta
        if bool(((delta - 1).abs() < 1e-15).all()):
            break
    return result


def beta_quantile(q: Tensor, alpha: float, beta: float) -> Tensor:
    """The Beta(alpha, beta) quantile (inverse CDF) of q in [0, 1], by bisection to float64 precision."""
    q = q.double()
    low, high = torch.zeros_like(q), torch.ones_like(q)
    for _ in range(64):
        mid = (low + high) / 2
        below = regularized_incomplete_beta(mid, alpha, beta) < q
        low, high = torch.where(below, mid, low), torch.where(below, high, mid)
    result = torch.where(q >= 1, torch.ones_like(q), torch.where(q <= 0, torch.zeros_like(q), (low + high) / 2))
    # A symmetric Beta's median is exactly 1/2; bisection would land an ulp either side of it, and the
    # beta schedule's rounding of 999/2 would then depend on which side.
    return torch.where((q == 0.5) & torch.tensor(alpha == beta), torch.full_like(q, 0.5), result)


# ----------------------------------------------------------------------------------------------
# The named schedules

# Every KSampler scheduler name: ComfyUI's, in its order, then ours. The fixed-range schedules go
# under names that say what they suit: `vp` is the VP SDE's own range, the Align-Your-Steps tables
# were optimized for SD1 and SDXL (KSampler's denoise applies on top).
SCHEDULES: dict[str, Schedule] = {
    "simple": simple_sigmas,
    "sgm_uniform": sgm_uniform_sigmas,
    "karras": _range_schedule(karras_sigmas),
    "exponential": _range_schedule(exponential_sigmas),
    "ddim_uniform": ddim_uniform_sigmas,
    "beta": beta_sigmas,
    "normal": normal_sigmas,
    "linear_quadratic": linear_quadratic_sigmas,
    "kl_optimal": _range_schedule(kl_optimal_sigmas),
    "polyexponential": _range_schedule(polyexponential_sigmas),
    "legacy_ddpm": legacy_ddpm_sigmas,
    "vp": lambda model_sampling, steps: vp_sigmas(steps),
    "align_your_steps_sd1": lambda model_sampling, steps: align_your_steps_sigmas("SD1", steps),
    "align_your_steps_sdxl": lambda model_sampling, steps: align_your_steps_sigmas("SDXL", steps),
}


def scheduled_sigmas(model_sampling: ModelSampling, scheduler: str, steps: int, denoise: float = 1.0,
                     discard_penultimate: bool = False) -> Tensor:
    """KSampler's / BasicScheduler's sigmas: for denoise < 1, the last steps + 1 of int(steps / denoise).

    denoise <= 0 gives an empty schedule. `discard_penultimate` computes one step more and drops the
    second-to-last sigma, as ComfyUI's KSampler does for dpm_2, dpm_2_ancestral and uni_pc.
    """
    if scheduler not in SCHEDULES:
        raise ValueError(f"unknown scheduler {scheduler!r}: expected one of {', '.join(SCHEDULES)}")
    if denoise <= 0.0:
        return torch.zeros(0)
    total = steps if denoise > 0.9999 else int(steps / denoise)
    sigmas = SCHEDULES[scheduler](model_sampling, total + int(discard_penultimate))
    if discard_penultimate:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas[-(steps + 1):]
