"""Every sampler in the registry keeps the sampler contract (`sigmagraph.nodes.sampling.contract`): model
calls as in the one NFE table, a callback per step, the interrupt honoured at every step, the seed
alone deciding the noise, float32 and float64, and images independent of their batch neighbours.
The contract check itself is shown to fail, with a reason, on samplers that break each promise."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.contract import CONTRACTS, Contract, check_sampler
from sigmagraph.nodes.sampling.samplers.common import bind_denoiser, notify, steps, to_d


def test_every_sampler_has_a_contract():
    assert set(CONTRACTS) == set(SAMPLERS)


@pytest.mark.filterwarnings("ignore:Should have:UserWarning")
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_keeps_the_contract(name):
    check_sampler(SAMPLERS[name], **asdict(CONTRACTS[name]))


@pytest.mark.parametrize("steps, ends_in_zero, calls", [(7, True, 13), (7, False, 14), (1, True, 1)])
def test_model_calls_of_a_contract(steps, ends_in_zero, calls):
    assert Contract(2, -1, 0).nfe(steps, ends_in_zero) == calls
    assert Contract(3, -3, -3).nfe(1) == 1  # heunpp2's single step is one Euler step


def test_steps_within_a_budget():
    assert [Contract(2, -1, 0).steps_within(b) for b in (5, 10)] == [3, 5]
    assert Contract(1, 1, 1).steps_within(10) == 9 and Contract().steps_within(10) == 10


def euler_with(report=True, noise=None, mix_batch=False):
    """A hand-written Euler sampler, broken in one chosen way."""

    def sampler(model, x, sigmas, extra_args=None, callback=None, disable=None):
        denoise = bind_denoiser(model, x, extra_args)
        for i in steps(len(sigmas) - 1, disable):
            denoised = denoise(x, sigmas[i])
            if report:
                notify(callback, i, x, sigmas[i], sigmas[i], denoised)
            x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
            if noise is not None:
                x = x + noise(x) * 0.01 * sigmas[i + 1]
            if mix_batch:
                x = x + 0.01 * x.mean(0, keepdim=True)
        return x

    return sampler


def test_a_correct_sampler_passes():
    check_sampler(euler_with())


BROKEN = {
    "declares the wrong model calls": (euler_with(), {"nfe_per_step": 2}, "model calls"),
    "skips the callback": (euler_with(report=False), {}, "callback"),
    "draws from the global RNG": (euler_with(noise=torch.randn_like), {}, "global RNG"),
    "ignores its seed though stochastic": (euler_with(), {"stochastic": True}, "another seed"),
    "mixes its batch": (euler_with(mix_batch=True), {}, "batch neighbours"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_sampler_fails_with_the_reason(case):
    sampler, contract, reason = BROKEN[case]
    with pytest.raises(AssertionError, match=reason):
        check_sampler(sampler, **contract)


def test_a_sampler_that_hands_the_seed_to_the_model_fails():
    def leaky(model, x, sigmas, extra_args=None, callback=None, disable=None):
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * x.new_ones(x.shape[0]), **(extra_args or {}))
            notify(callback, i, x, sigmas[i], sigmas[i], denoised)
            x = denoised + (x - denoised) / sigmas[i] * sigmas[i + 1]
        return x

    with pytest.raises(AssertionError, match="seed"):
        check_sampler(leaky)


def test_a_sampler_that_ignores_the_interrupt_fails():
    def stubborn(model, x, sigmas, extra_args=None, callback=None, disable=None):
        inner = euler_with()

        def swallow(info):
            try:
                callback(info)
            except Exception:  # noqa: BLE001 - the broken behaviour under test
                pass

        return inner(model, x, sigmas, extra_args, swallow if callback else None, disable)

    with pytest.raises(AssertionError, match="interrupt"):
        check_sampler(stubborn)
