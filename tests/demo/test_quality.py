"""The demo models follow their prompts — measured from pixels — where random weights do not; the flow model
also draws the captions' shapes; and on the SD demo's network, better samplers come closer to the converged
picture than Euler at the same small number of model calls."""

from __future__ import annotations

import numpy as np
import pytest

from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS, DemoModel
from sigmagraph.nodes.demo.generate import txt2img
from sigmagraph.nodes.demo.quality import EVALUATION_CAPTIONS, QualityReport, quality

from .test_demo_checkpoint import save_random_demo

SD_DEMO, FLOW_DEMO = DEMO_MODELS["sd"], DEMO_MODELS["flow"]


def evaluate(session, model: DemoModel, seeds: int, ckpt_name: str | None = None, **sampler) -> QualityReport:
    """The model's workflow at its settings (or these) over the evaluation captions, `seeds` pictures each."""
    pictures = []
    for caption in EVALUATION_CAPTIONS:
        images = txt2img(session, caption, seed=100, batch=seeds, ckpt_name=ckpt_name, model=model, **sampler)
        pictures += [(image, caption) for image in images]
    return quality(pictures)


def random_weights(session, model: DemoModel) -> str:
    """Saves random weights of the model's architectures into the session's checkpoints; returns the file name."""
    models = session.config.models_dir / "checkpoints"
    models.mkdir(parents=True, exist_ok=True)
    name = f"random-{model.family.name}.safetensors"
    save_random_demo(model, models / name, seed=1)
    return name


# The SD demo (2 seeds a caption): over 90% of the colour promises at 20 steps, about 1/8 by chance
# (see the README); its shapes are soft blobs, so no shape promise is asserted.
def test_the_sd_demo_follows_its_prompts_colours_and_places(builtin_session):
    report = evaluate(builtin_session, SD_DEMO, seeds=2)
    assert report.kept_share >= 0.8, str(report)


def test_random_sd_demo_weights_do_not(builtin_session):
    report = evaluate(builtin_session, SD_DEMO, seeds=2, ckpt_name=random_weights(builtin_session, SD_DEMO))
    assert report.kept_share < 0.4, str(report)


# The flow demo, the default workflow's model, at its settings: 12 captions x 4 seeds. Chance is
# about 1/8 for a colour promise and 1/6 for a shape. The shipped file keeps 100% of the colours
# and 86% of the shapes at these seeds (88-89% at others; the SD demo 25%); the issue asks 70%.
def test_the_flow_demo_follows_its_prompts_colours_places_and_shapes(builtin_session):
    report = evaluate(builtin_session, FLOW_DEMO, seeds=4)
    assert report.kept_share >= 0.9 and report.shape_share >= 0.7, str(report)


def test_random_flow_demo_weights_do_not(builtin_session):
    report = evaluate(builtin_session, FLOW_DEMO, seeds=4, ckpt_name=random_weights(builtin_session, FLOW_DEMO))
    assert report.kept_share < 0.3 and report.shape_share < 0.3, str(report)


@pytest.fixture(scope="module")
def converged(builtin_session) -> dict[str, np.ndarray]:
    """The probability-flow ODE's solution per caption (dpmpp_2m, 100 steps), the yardstick of sampler accuracy."""
    return {caption: pictures(builtin_session, caption, steps=100, sampler_name="dpmpp_2m")
            for caption in EVALUATION_CAPTIONS[::2]}


def pictures(session, caption: str, **sampler) -> np.ndarray:
    # CFG 1: the network's own ODE. (With the default CFG 5 the guided denoiser of this small model
    # varies too fast in sigma for extrapolating samplers at few steps; the README shows the numbers.)
    images = txt2img(session, caption, seed=100, batch=2, model=SD_DEMO, scheduler="karras", cfg=1.0, **sampler)
    return np.stack(images).astype(np.float64)


def rms_error(session, converged, sampler: str, steps: int) -> float:
    return float(np.sqrt(np.mean([((pictures(session, caption, steps=steps, sampler_name=sampler) - reference) ** 2)
                                  .mean() for caption, reference in converged.items()])))


@pytest.mark.parametrize("calls", [5, 10])
@pytest.mark.parametrize("sampler", ["dpmpp_2m", "uni_pc", "ipndm"])
def test_a_better_sampler_is_at_least_as_accurate_as_euler_at_the_same_calls(builtin_session, converged, sampler, calls):
    euler = rms_error(builtin_session, converged, "euler", calls)
    better = rms_error(builtin_session, converged, sampler, calls)
    assert better <= euler, f"{sampler}: RMS {better:.2f} against euler's {euler:.2f} (8-bit levels) at {calls} calls"
