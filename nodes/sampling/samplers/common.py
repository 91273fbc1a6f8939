"""The vocabulary every sampler shares: types, the bound model, log-SNR time, derivative, ancestral split, churn.

A sampler is a function `sampler(model, x, sigmas, extra_args=None, callback=None, disable=None,
**params) -> Tensor` where `model(x, sigma, **inputs)` returns the denoised estimate x0 and
`sigma` is a tensor of shape [batch]. `extra_args` holds the model's keyword inputs and, as in
k-diffusion and ComfyUI, the run's `seed` and the model's `model_sampling`, which are the sampler's
alone: samplers call the model through `bind_denoiser` / `bind_predictor`, which leave them out.
Samplers hold no state between runs; they report every step through `callback` (which is also
where the engine raises its interrupt), and draw noise only from explicit noise samplers (see `..noise`).

The model's frame (`Frame`, from `frame_of(extra_args)`) says how x relates to x0 and noise: the
variance-exploding x = x0 + sigma n of eps / v / x0 / EDM models, or the rectified flow's
x = (1 - sigma) x0 + sigma n. The ODE samplers need no frame (their steps read the same in both,
or ComfyUI runs them unchanged on flow models); the ancestral and SDE samplers take ComfyUI's
flow forms from it, so a flow model gets ComfyUI's numbers under the same sampler names.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm, trange

from ..broadcast import append_dims
from ..noise import BrownianTreeNoiseSampler, NoiseSampler, ancestral_noise_sampler

Denoiser = Callable[..., Tensor]
Callback = Callable[[dict[str, Any]], None]
# (x, sigma) -> x0 with sigma a scalar tensor: the model as `bind_denoiser` gives it to a sampler's loop
Denoise = Callable[[Tensor, Tensor], Tensor]
# (x, sigma) -> (guided x0, the x0 whose noise direction renoises x); sigma a scalar tensor
Predictor = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
# (i, x, D(x, sigmas[i])) -> x at sigmas[i + 1] > 0: one step of a `step_loop`
Step = Callable[[int, Tensor, Tensor], Tensor]
# extra_args entries meant for the sampler, never passed to the model
SAMPLER_EXTRAS = frozenset({"seed", "model_sampling"})
# ComfyUI moves a flow schedule's first sigma 1 (infinite log-SNR) to the sigma at this fraction of the run.
FLOW_FIRST_SIGMA_PERCENT = 1e-4


class Sampler(Protocol):
    def __call__(self, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, **params: Any) -> Tensor: ...


def lam_of(sigma: Tensor | float) -> Tensor | float:
    """lambda = -log sigma, the half log-SNR of a variance-exploding model: the time of the exponential integrators."""
    return -torch.log(sigma) if isinstance(sigma, Tensor) else -math.log(sigma)


def sigma_of(lam: Tensor | float) -> Tensor | float:
    """sigma = exp(-lambda), the inverse of `lam_of`."""
    return torch.exp(-lam) if isinstance(lam, Tensor) else math.exp(-lam)


@dataclass(frozen=True)
class Frame:
    """x = alpha(sigma) x0 + sigma n: variance exploding (alpha = 1) or rectified flow (alpha = 1 - sigma).

    The flow frame is ComfyUI's CONST model sampling; its half log-SNR is log((1 - sigma) / sigma).
    """

    flow: bool = False

    def alpha(self, sigma: Tensor) -> Tensor:
        """The signal scale alpha at sigma."""
        return 1 - sigma if self.flow else torch.ones_like(sigma)

    def half_log_snr(self, sigma: Tensor) -> Tensor:
        """lambda = log(alpha / sigma), the time of the exponential integrators (-log sigma when VE)."""
        return -torch.logit(sigma) if self.flow else -torch.log(sigma)

    def sigma_at(self, half_log_snr: Tensor) -> Tensor:
        """The sigma at a half log-SNR, the inverse of `half_log_snr`."""
        return torch.sigmoid(-half_log_snr) if self.flow else torch.exp(-half_log_snr)

    def scaled_sigma(self, sigma: Tensor) -> Tensor:
        """sigma / alpha = e^-lambda: the noise level of the variance-exploding state x / alpha."""
        return sigma / self.alpha(sigma)


VE, FLOW = Frame(flow=False), Frame(flow=True)


def frame_of(extra_args: dict | None) -> Frame:
    """The frame of the model whose `model_sampling` extra_args carries; VE without one."""
    model_sampling = (extra_args or {}).get("model_sampling")
    return FLOW if getattr(model_sampling, "prediction", None) == "flow" else VE


def finite_snr_sigmas(sigmas: Tensor, extra_args: dict | None) -> Tensor:
    """The schedule with a flow model's first sigma 1 moved to percent_to_sigma(1e-4), as ComfyUI's log-SNR samplers do.

    At sigma = 1 the flow's log-SNR is infinite; the model is then called at the moved sigma too.
    """
    if len(sigmas) <= 1 or not frame_of(extra_args).flow or sigmas[0] < 1:
        return sigmas
    sigmas = sigmas.clone()
    sigmas[0] = extra_args["model_sampling"].percent_to_sigma(FLOW_FIRST_SIGMA_PERCENT)
    return sigmas


def model_inputs(extra_args: dict | None) -> dict:
    """The model's keyword inputs: extra_args without the sampler's own entries (the seed)."""
    return {key: value for key, value in (extra_args or {}).items() if key not in SAMPLER_EXTRAS}


def bind_denoiser(model: Denoiser, x: Tensor, extra_args: dict | None) -> Denoise:
    """`denoise(x, sigma)`: the model with sigma broadcast to x's batch and its own inputs bound."""
    s_in = x.new_ones([x.shape[0]])
    inputs = model_inputs(extra_args)
    return lambda x, sigma: model(x, sigma * s_in, **inputs)


def bind_predictor(model: Denoiser, x: Tensor, extra_args: dict | None, cfg_pp: bool) -> Predictor:
    """`predict(x, sigma) -> (guided x0, renoising x0)`: the unconditional x0 renoises for CFG++ (Chung et al. 2024).

    Without CFG++, or when the model is no guider (it has no `with_uncond`), both are the guided x0.
    """
    with_uncond = getattr(model, "with_uncond", None) if cfg_pp else None
    denoise = bind_denoiser(model if with_uncond is None else with_uncond, x, extra_args)
    if with_uncond is not None:
        return denoise

    def predict(x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        denoised = denoise(x, sigma)
        return denoised, denoised

    return predict


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - x0) / sigma (Karras et al. 2022, eq. 4)."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """Splits a step into a deterministic step to sigma_down plus fresh noise of std sigma_up (k-diffusion).

    From sigma_from = inf (a flow model's sigma 1 seen as VE) the bound is NaN and, as Python's
    `min` in ComfyUI, sigma_up falls back to sigma_to: the step renoises x0 completely.
    """
    if not eta or sigma_to == 0:
        return sigma_to, torch.zeros_like(sigma_to)
    bound = eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
    sigma_up = torch.where(bound < sigma_to, bound, sigma_to)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


# (sigma, sigma_next, eta) -> (sigma_down, sigma_up, scale): x_next = scale * (x stepped to sigma_down) + sigma_up n
AncestralSplit = Callable[[Tensor, Tensor, float], tuple[Tensor, Tensor, Tensor | float]]


def ve_ancestral_split(sigma: Tensor, sigma_next: Tensor, eta: float) -> tuple[Tensor, Tensor, float]:
    """k-diffusion's split (`ancestral_step`), nothing rescaled."""
    return (*ancestral_step(sigma, sigma_next, eta), 1.0)


def rf_ancestral_split(sigma: Tensor, sigma_next: Tensor, eta: float) -> tuple[Tensor, Tensor, Tensor]:
    """ComfyUI's rectified-flow split (its `_RF` ancestral samplers).

    sigma_down = sigma_next (1 + (sigma_next / sigma - 1) eta); after the step the signal is scaled
    back by alpha_next / alpha_down and noise of std sqrt(sigma_next^2 - (sigma_down alpha_next /
    alpha_down)^2) brings the noise level to sigma_next: x = alpha_next x0 + sigma_next n again.
    """
    sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
    alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
    sigma_up = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2) ** 0.5
    return sigma_down, sigma_up, alpha_next / alpha_down


def scaled_ancestral_split(frame: Frame) -> AncestralSplit:
    """k-diffusion's split of the variance-exploding state x / alpha, mapped back by alpha_next (ComfyUI's forms).

    sigma_down is then a level of x / alpha, for `scaled_first_order_step`; for VE this is
    `ve_ancestral_split`.
    """
    if not frame.flow:
        return ve_ancestral_split

    def split(sigma: Tensor, sigma_next: Tensor, eta: float) -> tuple[Tensor, Tensor, Tensor]:
        sigma_down, sigma_up = ancestral_step(frame.scaled_sigma(sigma), frame.scaled_sigma(sigma_next), eta)
        alpha_next = frame.alpha(sigma_next)
        return sigma_down, alpha_next * sigma_up, alpha_next

    return split


def ancestral_split(frame: Frame) -> AncestralSplit:
    """The split of the ancestral samplers: k-diffusion's, or ComfyUI's rectified-flow one for flow models."""
    return rf_ancestral_split if frame.flow else ve_ancestral_split


def first_order_step(x: Tensor, sigma: Tensor, sigma_next: Tensor, denoised: Tensor,
                     renoise_from: Tensor | None = None) -> Tensor:
    """Euler = DDIM = DPM-Solver++(1) from sigma to sigma_next: x0 plus the noise estimate rescaled to sigma_next.

    `renoise_from` is the x0 whose noise estimate (x - x0) / sigma is carried: the denoised
    estimate itself unless a CFG++ sampler passes the unconditional one.
    """
    return denoised + to_d(x, sigma, denoised if renoise_from is None else renoise_from) * sigma_next


def scaled_first_order_step(frame: Frame, x: Tensor, sigma: Tensor, scaled_sigma_down: Tensor, denoised: Tensor,
                            renoise_from: Tensor) -> Tensor:
    """`first_order_step` of the variance-exploding state x / alpha to the level scaled_sigma_down of x / alpha.

    Written D + sigma_down (x - alpha U) / sigma, which stays finite at a flow's sigma = 1 (alpha = 0).
    """
    return denoised + scaled_sigma_down * (x - frame.alpha(sigma) * renoise_from) / sigma


def add_noise(x: Tensor, noise_sampler: NoiseSampler, sigma: Tensor, sigma_next: Tensor, std: Tensor | float) -> Tensor:
    """x plus the noise drawn for the step sigma -> sigma_next scaled to `std`; no draw when std is 0."""
    if not std > 0:
        return x
    return x + noise_sampler(sigma, sigma_next) * std


def steps(n: int | None, disable: bool | None) -> Iterable[int]:
    """The step indices, with a terminal progress bar unless disabled (the engine disables it).

    `n = None` counts without end, for adaptive samplers that decide when to stop.
    """
    return trange(n, disable=disable) if n is not None else tqdm(itertools.count(), disable=disable)


def notify(callback: Callback | None, i: int, x: Tensor, sigma: Tensor, sigma_hat: Tensor, denoised: Tensor) -> None:
    """Reports step i to the callback: the engine's progress, previews and interrupt all hang here."""
    if callback is not None:
        callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma_hat, "denoised": denoised})


def step_loop(step: Step, denoise: Denoise, x: Tensor, sigmas: Tensor,
              callback: Callback | None, disable: bool | None) -> Tensor:
    """Evaluates the model at each sigma_i, reports the step and takes `step`; the step to sigma = 0 lands on x0."""
    for i in steps(len(sigmas) - 1, disable):
        denoised = denoise(x, sigmas[i])
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        x = denoised if sigmas[i + 1] == 0 else step(i, x, denoised)
    return x


def noise_sampler_or_default(noise_sampler: NoiseSampler | None, x: Tensor, extra_args: dict | None) -> NoiseSampler:
    """The given noise sampler, else per-step Gaussian noise seeded from extra_args['seed'] as ComfyUI does on CPU."""
    return noise_sampler or ancestral_noise_sampler(x, (extra_args or {}).get("seed"))


def brownian_or_default(noise_sampler: NoiseSampler | None, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                        transform: Callable[[Tensor], Tensor] = lambda sigma: sigma) -> NoiseSampler:
    """The given noise sampler, else a Brownian tree over the schedule seeded from extra_args['seed'].

    The tree spans [smallest non-zero sigma, largest sigma], ComfyUI's choice, so the same seed
    and schedule give ComfyUI's Brownian path.
    """
    if noise_sampler is not None:
        return noise_sampler
    positive = sigmas[sigmas > 0]
    return BrownianTreeNoiseSampler(x, positive.min(), sigmas.max(), (extra_args or {}).get("seed"), transform)


# (predict, x, sigma, sigma_down, D, U) -> x at sigma_down: the deterministic part of an ancestral step
AncestralStep = Callable[[Predictor, Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def first_order_ancestral_step(predict: Predictor, x: Tensor, sigma: Tensor, sigma_down: Tensor, denoised: Tensor,
                               renoise_from: Tensor) -> Tensor:
    """x_down = D + sigma_down (x - U) / sigma: Euler along the renoising direction, as an `AncestralStep`."""
    return first_order_step(x, sigma, sigma_down, denoised, renoise_from)


def ancestral_loop(step: AncestralStep, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None,
                   callback: Callback | None, disable: bool | None, eta: float, s_noise: float,
                   noise_sampler: NoiseSampler | None, cfg_pp: bool = False,
                   split: AncestralSplit = ve_ancestral_split) -> Tensor:
    """Ancestral sampling: a deterministic `step` to sigma_down, scaled, then fresh noise of std sigma_up.

    `split` decides sigma_down, sigma_up and the scale (k-diffusion's by default). `step` gets D,
    the guided x0, and U, the x0 whose noise direction renoises: D itself, or the unconditional
    x0 for CFG++.
    """
    noise_sampler = noise_sampler_or_default(noise_sampler, x, extra_args)
    predict = bind_predictor(model, x, extra_args, cfg_pp)
    for i in steps(len(sigmas) - 1, disable):
        denoised, renoise_from = predict(x, sigmas[i])
        sigma_down, sigma_up, scale = split(sigmas[i], sigmas[i + 1], eta)
        notify(callback, i, x, sigmas[i], sigmas[i], denoised)
        x = step(predict, x, sigmas[i], sigma_down, denoised, renoise_from) * scale
        x = add_noise(x, noise_sampler, sigmas[i], sigmas[i + 1], s_noise * sigma_up)
    return x


def churn(x: Tensor, sigma: Tensor, n_steps: int, noise_sampler: NoiseSampler, s_churn: float, s_tmin: float,
          s_tmax: float, s_noise: float) -> tuple[Tensor, Tensor]:
    """Karras et al. (2022) Algorithm 2 lines 5-6: raises the noise level to sigma_hat = sigma (1 + gamma).

    gamma = min(s_churn / n_steps, sqrt(2) - 1) inside [s_tmin, s_tmax], and fresh noise brings x
    to sigma_hat. Returns (x_hat, sigma_hat); without churn it is (x, sigma), computed and drawn
    from nothing, since a sampler runs this every step.
    """
    if not s_churn or not s_tmin <= float(sigma) <= s_tmax:
        return x, sigma
    sigma_hat = sigma * (min(s_churn / n_steps, math.sqrt(2.0) - 1.0) + 1.0)
    return add_noise(x, noise_sampler, sigma, sigma_hat, s_noise * (sigma_hat**2 - sigma**2) ** 0.5), sigma_hat
