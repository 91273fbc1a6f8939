"""The sampler contract: what every function in `SAMPLERS` promises, stated per sampler and checkable.

A sampler (see `samplers.common`) calls the model a known number of times per step, reports every
step to the callback once, stops within the step when the callback raises (the engine's
interrupt), never hands the seed or the model sampling to the model, draws its noise only from
generators seeded by extra_args["seed"] (never the global RNG), keeps an image independent of its
batch neighbours, and returns x in its dtype. `CONTRACTS` states the per-sampler part for every built-in sampler
and is the one table of model calls (NFE) per step; `check_sampler` runs any sampler, a pack's
included, on the analytic mixture and raises AssertionError naming the first promise it breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .analytic import GaussianMixture
from .model_sampling import discrete_model_sampling
from .samplers.common import SAMPLER_EXTRAS, Sampler
from .schedules import karras_sigmas

STEPS = 7
SHAPE = (2, 4, 4, 4)
# The model sampling a sampling node passes in extra_args beside the seed: SD's, a variance-exploding frame.
MODEL_SAMPLING = discrete_model_sampling()


@dataclass(frozen=True)
class Contract:
    """The per-sampler part of the contract: model calls for N steps, and whether it draws noise by default."""

    nfe_per_step: int | None = 1  # None: adaptive, it picks its own steps from the error of the whole batch
    nfe_offset: int = 0  # model calls beyond nfe_per_step * N on a schedule ending in 0
    nfe_offset_above_zero: int | None = None  # the same on a schedule ending above 0 (None: nfe_offset)
    stochastic: bool = False  # with its default parameters, another seed gives another result
    own_steps: bool = False  # it takes only the range of sigmas and reports its own steps

    def nfe(self, steps: int, ends_in_zero: bool = True) -> int | None:
        """Model calls for `steps` >= 1 steps (at least one); None for an adaptive sampler."""
        if self.nfe_per_step is None:
            return None
        above_zero = self.nfe_offset if self.nfe_offset_above_zero is None else self.nfe_offset_above_zero
        return max(self.nfe_per_step * steps + (self.nfe_offset if ends_in_zero else above_zero), 1)

    def steps_within(self, budget: int) -> int:
        """The most steps (at least one) whose model calls on a schedule ending in 0 stay within the budget."""
        if self.nfe_per_step is None:
            return budget  # an adaptive sampler uses only the range of the schedule
        return max([n for n in range(1, budget + 1) if self.nfe(n) <= budget], default=1)


_FIRST_ORDER = Contract()
_NOISY = Contract(stochastic=True)
_TWO_CALLS = Contract(2, -1, 0)  # the step to sigma = 0 needs one call, not two
_TWO_CALLS_NOISY = Contract(2, -1, 0, stochastic=True)

CONTRACTS: dict[str, Contract] = {
    "euler": _FIRST_ORDER,
    "euler_cfg_pp": _FIRST_ORDER,
    "euler_ancestral": _NOISY,
    "euler_ancestral_cfg_pp": _NOISY,
    "heun": _TWO_CALLS,
    "heunpp2": Contract(3, -3, -3),
    "dpm_2": _TWO_CALLS,
    "dpm_2_ancestral": _TWO_CALLS_NOISY,
    "lms": _FIRST_ORDER,
    "dpm_fast": Contract(own_steps=True),  # n = len(sigmas) - 1 calls over its own n // 3 + 1 steps
    "dpm_adaptive": Contract(None, own_steps=True),
    "dpmpp_2s_ancestral": _TWO_CALLS_NOISY,
    "dpmpp_2s_ancestral_cfg_pp": _TWO_CALLS_NOISY,
    "dpmpp_sde": _TWO_CALLS_NOISY,
    "dpmpp_sde_gpu": _TWO_CALLS_NOISY,
    "dpmpp_2m": _FIRST_ORDER,
    "dpmpp_2m_cfg_pp": _FIRST_ORDER,
    "dpmpp_2m_sde": _NOISY,
    "dpmpp_2m_sde_gpu": _NOISY,
    "dpmpp_2m_sde_heun": _NOISY,
    "dpmpp_2m_sde_heun_gpu": _NOISY,
    "dpmpp_3m_sde": _NOISY,
    "dpmpp_3m_sde_gpu": _NOISY,
    "ddpm": _NOISY,
    "lcm": _NOISY,
    "ipndm": _FIRST_ORDER,
    "ipndm_v": _FIRST_ORDER,
    "ipndm_v_exact": _FIRST_ORDER,
    "deis": _FIRST_ORDER,
    "res_multistep": _FIRST_ORDER,
    "res_multistep_cfg_pp": _FIRST_ORDER,
    "res_multistep_ancestral": _NOISY,
    "res_multistep_ancestral_cfg_pp": _NOISY,
    "gradient_estimation": _FIRST_ORDER,
    "gradient_estimation_cfg_pp": _FIRST_ORDER,
    "er_sde": _NOISY,
    "seeds_2": _TWO_CALLS_NOISY,
    "seeds_3": Contract(3, -2, 0, stochastic=True),
    "sa_solver": _NOISY,
    "sa_solver_pece": Contract(2, -1, -1, stochastic=True),  # every corrected step (all but the first) calls again
    "ddim": _FIRST_ORDER,
    "uni_pc": _FIRST_ORDER,
    "uni_pc_bh2": _FIRST_ORDER,
    "edm_stochastic": _TWO_CALLS_NOISY,
    "dpm_solver_2s": _TWO_CALLS,
    "dpm_solver_3s": Contract(3, -2, 0),
    "plms": Contract(1, 1, 1),  # PNDM's first step calls the model twice
    "pc_ve": Contract(2, stochastic=True),  # one Langevin corrector call per step by default
    "pc_vp": Contract(2, stochastic=True),
}


class _Interrupted(Exception):
    """Raised from the callback, as the engine raises its interrupt."""


class CountedModel:
    """A denoiser that counts its calls (the NFE) and refuses what a model must never be given."""

    def __init__(self, model: Callable[..., Tensor], name: str = "sampler"):
        self.model, self.name, self.calls = model, name, 0

    def __call__(self, x: Tensor, sigma: Tensor, **inputs: Any) -> Tensor:
        self.calls += 1
        _require(not SAMPLER_EXTRAS & set(inputs), self.name,
                 f"the model received {sorted(SAMPLER_EXTRAS & set(inputs))}: call it with model_inputs(extra_args)")
        _require(isinstance(sigma, Tensor) and sigma.shape == (x.shape[0],), self.name,
                 "the model's sigma must be a tensor of shape [batch]")
        return self.model(x, sigma, **inputs)


def _checked_model(name: str) -> CountedModel:
    """The exact mixture denoiser the checks run on."""
    return CountedModel(GaussianMixture.random(0), name)


def _require(condition: bool, name: str, reason: str) -> None:
    if not condition:
        raise AssertionError(f"{name}: {reason}")


def _rms(x: Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def check_sampler(sampler: Sampler, nfe_per_step: int | None = 1, nfe_offset: int = 0,
                  nfe_offset_above_zero: int | None = None, stochastic: bool = False, own_steps: bool = False) -> None:
    """Checks the whole sampler contract on the analytic mixture; raises AssertionError with the broken promise.

    The arguments are the sampler's `Contract` (see its fields); `check_sampler(fn, **asdict(contract))`
    works too. Takes well under a second for a sampler of a few model calls per step.
    """
    contract = Contract(nfe_per_step, nfe_offset, nfe_offset_above_zero, stochastic, own_steps)
    name = getattr(sampler, "__name__", repr(sampler))
    ramp = karras_sigmas(STEPS + 1, 0.0292, 14.6146)
    schedules = {True: karras_sigmas(STEPS, 0.0292, 14.6146), False: ramp[:-1]}
    x = 14.6 * torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    reported = 0
    for ends_in_zero, sigmas in schedules.items():
        reported = _check_calls_and_steps(sampler, name, contract, x.double(), sigmas.double(), ends_in_zero)
    _check_interrupts(sampler, name, x.double(), schedules[True].double(), reported)
    _check_noise(sampler, name, contract, x, schedules[True])
    if contract.nfe_per_step is not None:  # an adaptive sampler's steps depend on the whole batch
        pair = sampler(_checked_model(name), x.double(), schedules[True].double(), {"seed": [7, 8]}, disable=True)
        alone = sampler(_checked_model(name), x[1:].double(), schedules[True].double(), {"seed": [8]}, disable=True)
        _require(torch.allclose(pair[1:], alone, rtol=0, atol=1e-12), name,
                 "an image depends on its batch neighbours (with one seed per image)")


def _check_calls_and_steps(sampler: Sampler, name: str, contract: Contract, x: Tensor, sigmas: Tensor,
                           ends_in_zero: bool) -> int:
    """The model calls and the callback's reports on one schedule; returns the number of steps reported."""
    model, infos = _checked_model(name), []
    out = sampler(model, x, sigmas, {"seed": 0, "model_sampling": MODEL_SAMPLING}, callback=infos.append, disable=True)
    where = "ending in 0" if ends_in_zero else "ending above 0"
    expected = contract.nfe(STEPS, ends_in_zero)
    _require(expected is None or model.calls == expected, name,
             f"{model.calls} model calls for {STEPS} steps {where}, the contract says {expected}")
    _require(out.shape == x.shape and out.dtype == x.dtype and bool(torch.isfinite(out).all()), name,
             "the result must be finite and have x's shape and dtype")
    indices = [info["i"] for info in infos]
    steps = len(indices) if contract.own_steps else STEPS
    _require(steps > 0 and indices == list(range(steps)), name,
             f"the callback must report steps 0..{steps - 1} once each in order, got {indices}")
    _require(all(set(info) >= {"x", "i", "sigma", "sigma_hat", "denoised"} for info in infos), name,
             "every report must carry x, i, sigma, sigma_hat and denoised")
    _require(contract.own_steps or [float(info["sigma"]) for info in infos] == sigmas[:-1].tolist(), name,
             "step i must report sigma = sigmas[i]")
    return steps


def _check_interrupts(sampler: Sampler, name: str, x: Tensor, sigmas: Tensor, steps: int) -> None:
    """An exception raised by the callback at any step stops the sampler before another model call."""
    for stop in range(steps):
        model, calls_at_stop = _checked_model(name), []

        def callback(info: dict[str, Any]) -> None:
            if info["i"] == stop:
                calls_at_stop.append(model.calls)
                raise _Interrupted

        try:
            sampler(model, x, sigmas, {"seed": 0}, callback=callback, disable=True)
        except _Interrupted:
            pass
        _require(calls_at_stop == [model.calls], name, f"an interrupt raised at step {stop} was not honoured at once")


def _check_noise(sampler: Sampler, name: str, contract: Contract, x: Tensor, sigmas: Tensor) -> None:
    """The seed alone decides the noise (float32), the global RNG stays untouched; float64 agrees if deterministic."""
    rng = torch.get_rng_state()
    a, b, c = (sampler(_checked_model(name), x, sigmas, {"seed": seed}, disable=True) for seed in (123, 123, 124))
    _require(torch.equal(rng, torch.get_rng_state()), name, "noise must not come from the global RNG")
    _require(a.dtype == x.dtype, name, "the result must keep x's dtype")
    _require(torch.equal(a, b), name, "the same seed must give the same result, bit for bit")
    if contract.stochastic:
        _require(_rms(a - c) > 1e-3, name, "another seed must give another result (the contract says stochastic)")
        return
    _require(torch.equal(a, c), name, "the seed changed the result of a sampler the contract says is deterministic")
    exact = sampler(_checked_model(name), x.double(), sigmas.double(), {"seed": 123}, disable=True)
    _require(_rms(a - exact) < 1e-4 * (1 + _rms(exact)), name, "float32 and float64 runs must agree")
