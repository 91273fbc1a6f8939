"""Recorded trajectories and branches, against SplitSigmas + two SamplerCustom runs and the schedule itself."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.engine.testing import output, run
from sigmagraph.nodes.sampling.schedules import karras_sigmas

SEED = 7
STEPS = 8


def shown(wf, *nodes):
    """The workflow with a latent preview of each node's first output, so that they run."""
    for n in nodes:
        wf[f"show{n}"] = {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": [n, 0]}}
        wf[f"out{n}"] = {"class_type": "PreviewImage", "inputs": {"images": [f"show{n}", 0]}}
    return wf


def graph(first="euler_ancestral", record_steps="", prediction="eps"):
    """An analytic model, a karras schedule, and a recorded run with `first`."""
    return {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": prediction}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 2}},
        "4": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["2", 0]}},
        "5": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "karras", "steps": STEPS,
                                                         "denoise": 1.0}},
        "6": {"class_type": "RandomNoise", "inputs": {"noise_seed": SEED}},
        "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": first}},
        "8": {"class_type": "RecordTrajectory", "inputs": {"noise": ["6", 0], "guider": ["4", 0], "sampler": ["7", 0],
                                                           "sigmas": ["5", 0], "latent_image": ["3", 0],
                                                           "record_steps": record_steps}},
    }


def test_the_trajectory_has_steps_plus_one_latents_at_the_schedules_sigmas(builtin_session):
    result = run(builtin_session, shown(graph(), "8"))
    trajectory, denoised, levels = (output(builtin_session, result, "8", slot) for slot in (2, 3, 4))
    expected = karras_sigmas(STEPS, 0.0291675, 14.614642)
    assert torch.allclose(levels, expected, rtol=1e-4) and len(levels) == STEPS + 1
    assert trajectory["samples"].shape == ((STEPS + 1) * 2, 4, 4, 4)  # step-major, two images a step
    assert denoised["samples"].shape == (STEPS * 2, 4, 4, 4)  # one estimate per model step
    # The last entry is the run's output; the first is the initial noise scaled to sigma_0.
    final = output(builtin_session, result, "8", 0)["samples"]
    assert torch.equal(trajectory["samples"][-2:], final)
    noise = torch.randn((2, 4, 4, 4), generator=torch.Generator().manual_seed(SEED))
    assert torch.allclose(trajectory["samples"][:2], noise * (1 + float(expected[0]) ** 2) ** 0.5, rtol=1e-6)


def test_chosen_steps_only(builtin_session):
    result = run(builtin_session, shown(graph(record_steps="0, 3-4, 8"), "8"))
    levels = output(builtin_session, result, "8", 4)
    expected = karras_sigmas(STEPS, 0.0291675, 14.614642)
    assert torch.allclose(levels, expected[[0, 3, 4, 8]], rtol=1e-4)
    assert output(builtin_session, result, "8", 2)["samples"].shape[0] == 4 * 2


@pytest.mark.parametrize("first,second,prediction", [("euler_ancestral", "dpmpp_2m", "eps"),
                                                     ("dpmpp_2s_ancestral", "heun", "flow"),
                                                     ("euler", "lms", "v_prediction")])
def test_a_branch_equals_the_split_sigmas_run_to_the_last_bit(builtin_session, first, second, prediction):
    step = 5
    wf = graph(first, prediction=prediction)
    wf["9"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": second}}
    wf["10"] = {"class_type": "BranchFromStep", "inputs": {"noise_seed": 3, "guider": ["4", 0], "sampler": ["9", 0],
                                                           "trajectory": ["8", 2], "step": step}}
    # The same by hand: split the sigmas, run the first part, continue without new noise.
    wf["11"] = {"class_type": "SplitSigmas", "inputs": {"sigmas": ["5", 0], "step": step}}
    wf["12"] = {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["6", 0], "guider": ["4", 0],
                                                                  "sampler": ["7", 0], "sigmas": ["11", 0],
                                                                  "latent_image": ["3", 0]}}
    wf["13"] = {"class_type": "SamplerCustom", "inputs": {
        "model": ["1", 0], "add_noise": False, "noise_seed": 3, "cfg": 1.0, "positive": ["2", 0],
        "negative": ["2", 0], "sampler": ["9", 0], "sigmas": ["11", 1], "latent_image": ["12", 0]}}
    result = run(builtin_session, shown(wf, "10", "13"))
    branch = output(builtin_session, result, "10")["samples"]
    split = output(builtin_session, result, "13")["samples"]
    assert torch.equal(branch, split)
    # and the recorded latent at the step is the first part's result
    recorded = output(builtin_session, result, "8", 2)["samples"][2 * step:2 * step + 2]
    assert torch.equal(recorded, output(builtin_session, result, "12")["samples"])


def test_branching_from_a_step_not_recorded_names_the_recorded_ones(builtin_session):
    wf = graph(record_steps="0, 2")
    wf["10"] = {"class_type": "BranchFromStep", "inputs": {"noise_seed": 0, "guider": ["4", 0], "sampler": ["7", 0],
                                                           "trajectory": ["8", 2], "step": 1}}
    result = builtin_session.run(shown(wf, "10"))
    assert result.status == "error" and "[0, 2]" in result.error["exception_message"]
