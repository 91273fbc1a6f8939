"""UniPC against diffusers' UniPCMultistepScheduler on the same sigmas (bh1 and bh2, order 3, data
prediction, lower-order final steps) and convergence orders on the exact probability-flow ODE."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from diffusers import UniPCMultistepScheduler

from sigmagraph.nodes.sampling.samplers.unipc import uni_pc, uni_pc_bh2

from .sampler_testkit import measured_order, noisy_start

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
VARIANTS = {"bh1": uni_pc, "bh2": uni_pc_bh2}


def vp_alpha(sigma: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + sigma**2) ** 0.5


def diffusers_unipc(model, noise, variant: str, steps: int, final_sigmas_type: str):
    """(sigmas, start, result) of UniPCMultistepScheduler run in float64 from noise scaled to its first sigma."""
    scheduler = UniPCMultistepScheduler(**SD_BETAS, solver_order=3, solver_type=variant, prediction_type="sample",
                                        predict_x0=True, lower_order_final=True, final_sigmas_type=final_sigmas_type)
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas.double()
    scheduler.sigmas = sigmas
    x = noise * sigmas[0]
    x_vp = x * vp_alpha(sigmas[0])
    for k, t in enumerate(scheduler.timesteps):
        x_vp = scheduler.step(model(x_vp / vp_alpha(sigmas[k]), sigmas[k].expand(x.shape[0])), t, x_vp).prev_sample
    return sigmas, x, x_vp / vp_alpha(sigmas[-1])


# Compared on sigmas ending at SD's sigma_min: diffusers' step to sigma = 0 lands on the denoised
# estimate, ComfyUI's (and so ours) steps to sigma 0.001 instead (see test_comfyui_parity.py).
CASES = [("bh1", 5, "sigma_min"), ("bh1", 12, "sigma_min"), ("bh2", 5, "sigma_min"), ("bh2", 12, "sigma_min"),
         ("bh2", 20, "sigma_min")]


@pytest.mark.parametrize("variant, steps, final", CASES, ids=[f"{v}-{n}-{f}" for v, n, f in CASES])
def test_matches_diffusers_unipc_multistep(variant, steps, final, mixture):
    sigmas, x, expected = diffusers_unipc(mixture, noisy_start((2, 4, 4, 4), 1.0), variant, steps, final)
    ours = VARIANTS[variant](mixture, x, sigmas, disable=True)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-11)


# UniPC-p (predictor UniP-p, corrector UniC-p) is of order p + 1 (Zhao et al. 2023, Sec. 3).
ORDER_CASES = [(v, p) for v in VARIANTS for p in (1, 2, 3)]


@pytest.mark.parametrize("variant, p", ORDER_CASES, ids=[f"{v}-order{p}" for v, p in ORDER_CASES])
def test_unipc_p_converges_with_order_p_plus_one(variant, p):
    measured, e1, e2 = measured_order(partial(VARIANTS[variant], order=p, lower_order_final=False), 80)
    assert abs(measured - (p + 1)) < 0.4, f"order {measured:.2f} (errors {e1:.2e}, {e2:.2e})"


def test_lower_order_final_makes_the_last_step_first_order():
    """With lower_order_final the last step is UniP-1: the error ratio falls toward 2^2 as steps grow."""
    orders = [measured_order(uni_pc, n)[0] for n in (40, 160)]
    assert orders[0] > orders[1] and abs(orders[1] - 2) < 0.4
