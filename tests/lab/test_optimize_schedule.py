"""OptimizeSchedule on the analytic model, judged on held-out latents against the exact probability-flow solution."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.engine import Config, Session
from sigmagraph.engine.testing import output, run
from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.analytic import probability_flow_solution
from sigmagraph.nodes.sampling.schedule_fit import BUILT_IN
from sigmagraph.nodes.sampling.schedules import SCHEDULES

CALLS = 10
FITTED = "fitted_ipndm_10"
# Every deterministic sampler (they follow the probability-flow ODE, so the exact solution is their target).
DETERMINISTIC = ("euler", "heun", "heunpp2", "dpm_2", "lms", "dpmpp_2m", "ipndm", "ipndm_v", "deis", "res_multistep",
                 "gradient_estimation", "ddim", "uni_pc", "uni_pc_bh2", "plms", "ipndm_v_exact", "dpm_solver_2s",
                 "dpm_solver_3s")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A session whose models folder receives the saved schedule; SCHEDULES is restored afterwards."""
    root = tmp_path_factory.mktemp("fit")
    saved = dict(SCHEDULES)
    yield Session(Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                         temp_dir=root / "temp", device="cpu", disable_custom_nodes=True))
    SCHEDULES.clear()
    SCHEDULES.update(saved)


def workflow(sampler="ipndm", name=FITTED, evaluations=250):
    return {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 4}},
        "4": {"class_type": "OptimizeSchedule", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
            "sampler_name": sampler, "steps": CALLS, "cfg": 1.0, "seed": 1, "initial_scheduler": "exponential",
            "reference_sampler": "dpmpp_2m", "reference_steps": 100, "max_evaluations": evaluations, "name": name}},
        "5": {"class_type": "SigmasPlot", "inputs": {"sigmas": ["4", 0], "labels": name}},
        "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}},
    }


@pytest.fixture(scope="module")
def fitted(session):
    result = run(session, workflow())
    return output(session, result, "4", 0), output(session, result, "4", 1)


@pytest.fixture(scope="module")
def held_out():
    """Latents not used for fitting (another seed; 512 pixels), at sigma_max, and their exact ODE solutions."""
    denoiser = analytic_model(0, 3, 4, 1.0, "eps").denoiser()
    sigma_max = analytic_model(0, 3, 4, 1.0, "eps").model_sampling.sigma_max
    x = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = x * (1 + sigma_max**2) ** 0.5
    return denoiser, x, probability_flow_solution(denoiser, x, sigma_max, steps=120)


def error(held_out, sampler, sigmas):
    denoiser, x, exact = held_out
    out = SAMPLERS[sampler](denoiser, x.clone(), sigmas.double(), {"seed": 0}, disable=True)
    return float((out - exact).pow(2).mean().sqrt())


def steps_for_calls(sampler, held_out, sigmas_of):
    """The most steps whose run makes at most CALLS model calls."""
    denoiser, x, _ = held_out
    for steps in range(CALLS, 0, -1):
        calls = [0]

        def counted(*args, **kwargs):
            calls[0] += 1
            return denoiser(*args, **kwargs)

        SAMPLERS[sampler](counted, x[:1].clone(), sigmas_of(steps).double(), {"seed": 0}, disable=True)
        if calls[0] <= CALLS:
            return steps
    raise AssertionError(sampler)


def test_the_fitted_schedule_errs_half_as_much_as_the_best_fixed_schedule_with_any_sampler(fitted, held_out):
    sigmas, report = fitted
    sampling = analytic_model(0, 3, 4, 1.0, "eps").model_sampling
    fixed = {}
    for sampler in DETERMINISTIC:
        steps = steps_for_calls(sampler, held_out, lambda n: SCHEDULES["karras"](sampling, n))
        for schedule in sorted(BUILT_IN):
            fixed[schedule, sampler] = error(held_out, sampler, SCHEDULES[schedule](sampling, steps))
    best_fixed = min(fixed.values())
    ours = error(held_out, "ipndm", sigmas)
    assert len(sigmas) == CALLS + 1 and sigmas[-1] == 0 and bool((sigmas.diff() < 0).all())
    assert ours <= 0.5 * best_fixed, (ours, min(fixed, key=fixed.get), best_fixed)
    assert ours <= fixed["karras", "ipndm"]
    assert "model calls" in report and FITTED in report


def test_a_fit_never_errs_more_than_karras_for_its_sampler(session, held_out):
    sampling = analytic_model(0, 3, 4, 1.0, "eps").model_sampling
    result = run(session, workflow("dpmpp_2m", name="", evaluations=80))
    sigmas = output(session, result, "4", 0)
    assert error(held_out, "dpmpp_2m", sigmas) <= error(held_out, "dpmpp_2m", SCHEDULES["karras"](sampling, CALLS))


def test_the_saved_schedule_reloads_identically_and_is_offered_by_ksampler(session, fitted):
    sigmas, _ = fitted
    wf = {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": FITTED, "steps": CALLS,
                                                         "denoise": 1.0}},
        "3": {"class_type": "SigmasPlot", "inputs": {"sigmas": ["2", 0], "labels": ""}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    reloaded = output(session, run(session, wf), "2")
    assert torch.equal(reloaded, sigmas)
    assert FITTED in session.registry.nodes["KSampler"].input("scheduler").resolve(session.config)
    # other step counts interpolate the fitted levels log-linearly, keeping both ends
    wf["2"]["inputs"]["steps"] = 20
    longer = output(session, run(session, wf), "2")
    assert len(longer) == 21 and torch.isclose(longer[0], sigmas[0]) and torch.isclose(longer[-2], sigmas[-2])
