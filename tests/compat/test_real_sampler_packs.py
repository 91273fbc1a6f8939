"""Real sampler packs (build/real_packs, never committed) loaded as a custom_nodes folder and run in workflows.

Detail-Daemon and restart_sampling wrap Sigmagraph's samplers through ComfyUI's KSAMPLER and
model_k chain; sampler-lcm-alternative brings its own k-diffusion samplers and a scheduler. Each
runs on the analytic model; where the pack's node does nothing by its settings (no detail, no
restart segment) the result is Sigmagraph's own sampler's, bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from sigmagraph.compat import state
from sigmagraph.engine.testing import output, run

from .conftest import REAL_PACKS, real_packs_session

PACKS = ("ComfyUI-Detail-Daemon", "ComfyUI_restart_sampling", "ComfyUI-sampler-lcm-alternative")
pytestmark = pytest.mark.skipif(not all((REAL_PACKS / pack).is_dir() for pack in PACKS),
                                reason="build/real_packs (real ComfyUI packs, never committed) is absent")
SEED, STEPS = 5, 8


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    previous = state.config()
    yield real_packs_session(tmp_path_factory.mktemp("real_sampler_packs"), PACKS)
    state.activate(previous)


GRAPH = {"model": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 3, "components": 3, "channels": 4,
                                                                    "spread": 1.0, "prediction_type": "eps"}},
         "cond": {"class_type": "NoConditioning", "inputs": {}},
         "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
         "sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["model", 0], "scheduler": "karras",
                                                               "steps": STEPS, "denoise": 1.0}},
         "euler": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}}}


def custom(sampler: str, sigmas: str = "sigmas") -> dict:
    return {"class_type": "SamplerCustom", "inputs": {
        "model": ["model", 0], "add_noise": True, "noise_seed": SEED, "cfg": 3.0, "positive": ["cond", 0],
        "negative": ["cond", 0], "sampler": [sampler, 0], "sigmas": [sigmas, 0], "latent_image": ["latent", 0]}}


def results(session, nodes: dict, *wanted: str) -> list:
    """The first output of each wanted node after one run of GRAPH plus `nodes`."""
    shown = {f"show_{n}": {"class_type": "PreviewAny", "inputs": {"source": [n, 0]}} for n in wanted}
    result = run(session, {**GRAPH, **nodes, **shown})
    return [output(session, result, n) for n in wanted]


def test_the_packs_load_every_node(session):
    assert not [p for p in session.registry.problems if p.pack in PACKS]
    assert {"DetailDaemonSamplerNode", "LyingSigmaSampler", "KRestartSamplerSimple", "SamplerLCMAlternative",
            "LCMScheduler"} <= session.registry.nodes.keys()


def detail_daemon(amount: float) -> dict:
    return {"class_type": "DetailDaemonSamplerNode", "inputs": {
        "sampler": ["euler", 0], "detail_amount": amount, "start": 0.2, "end": 0.8, "bias": 0.5, "exponent": 1.0,
        "start_offset": 0.0, "end_offset": 0.0, "fade": 0.0, "smooth": True, "cfg_scale_override": 0.0}}


def test_detail_daemon_wraps_sigmagraphs_euler(session):
    nodes = {"none": detail_daemon(0.0), "some": detail_daemon(0.5),
             "lying": {"class_type": "LyingSigmaSampler", "inputs": {"sampler": ["euler", 0],
                                                                    "dishonesty_factor": -0.05}},
             "plain_out": custom("euler"), "none_out": custom("none"), "some_out": custom("some"),
             "lying_out": custom("lying")}
    plain, none, some, lying = (latent["samples"] for latent in results(session, nodes, "plain_out", "none_out",
                                                                           "some_out", "lying_out"))
    assert torch.equal(none, plain)
    for changed in (some, lying):
        assert torch.isfinite(changed).all() and (changed - plain).abs().max() > 1e-3


def test_a_pack_sampler_around_an_ancestral_one_takes_its_flow_form_on_a_flow_model(session):
    flow = {"flow_model": {"class_type": "GaussianMixtureModel", "inputs": {
                "seed": 3, "components": 3, "channels": 4, "spread": 1.0, "prediction_type": "flow"}},
            "flow_sigmas": {"class_type": "BasicScheduler", "inputs": {"model": ["flow_model", 0], "scheduler": "simple",
                                                                       "steps": STEPS, "denoise": 1.0}},
            "ancestral": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"}}}
    wrapped = {**detail_daemon(0.0), "inputs": {**detail_daemon(0.0)["inputs"], "sampler": ["ancestral", 0]}}
    runs = {name: {"class_type": "SamplerCustom", "inputs": {
        "model": ["flow_model", 0], "add_noise": True, "noise_seed": SEED, "cfg": 1.0, "positive": ["cond", 0],
        "negative": ["cond", 0], "sampler": [sampler, 0], "sigmas": ["flow_sigmas", 0], "latent_image": ["latent", 0]}}
        for name, sampler in (("plain_out", "ancestral"), ("wrapped_out", "wrapped"))}
    plain, through_pack = (latent["samples"] for latent in results(session, {**flow, "wrapped": wrapped, **runs},
                                                                       "plain_out", "wrapped_out"))
    assert torch.equal(through_pack, plain)  # the rectified-flow form both ways, not the VE one through the pack


def restart(segments: str) -> dict:
    return {"class_type": "KRestartSamplerSimple", "inputs": {
        "model": ["model", 0], "seed": SEED, "steps": STEPS, "cfg": 3.0, "sampler_name": "euler",
        "scheduler": "karras", "positive": ["cond", 0], "negative": ["cond", 0], "latent_image": ["latent", 0],
        "denoise": 1.0, "segments": segments}}


def test_restart_sampling_runs_sigmagraphs_sampler_between_restarts(session):
    ksampler = {"class_type": "KSampler", "inputs": {
        "model": ["model", 0], "seed": SEED, "steps": STEPS, "cfg": 3.0, "sampler_name": "euler",
        "scheduler": "karras", "positive": ["cond", 0], "negative": ["cond", 0], "latent_image": ["latent", 0],
        "denoise": 1.0}}
    nodes = {"plain": ksampler, "no_restart": restart(""), "restarted": restart("[4,1,0.3,0.6]")}
    plain, no_restart, restarted = (latent["samples"] for latent in results(session, nodes, "plain", "no_restart",
                                                                               "restarted"))
    assert torch.equal(no_restart, plain)
    assert torch.isfinite(restarted).all() and (restarted - plain).abs().max() > 1e-3


def test_lcm_alternative_samplers_and_scheduler(session):
    nodes = {"lcm_sigmas": {"class_type": "LCMScheduler", "inputs": {"model": ["model", 0], "steps": 4,
                                                                    "denoise": 1.0}},
             "sgm": {"class_type": "BasicScheduler", "inputs": {"model": ["model", 0], "scheduler": "sgm_uniform",
                                                                "steps": 4, "denoise": 1.0}},
             "alternative": {"class_type": "SamplerLCMAlternative", "inputs": {"euler_steps": 0, "ancestral": 0.0,
                                                                                "noise_mult": 1.0}},
             "dual": {"class_type": "SamplerLCMDualNoise", "inputs": {"weight": 0.8, "normalize_steps": 1,
                                                                      "reuse_lcm_noise": False, "parallel": False}},
             "alternative_out": custom("alternative", "lcm_sigmas"), "dual_out": custom("dual", "lcm_sigmas")}
    lcm_sigmas, sgm, alternative, dual = results(session, nodes, "lcm_sigmas", "sgm", "alternative_out", "dual_out")
    assert torch.equal(lcm_sigmas, sgm)
    for latent in (alternative, dual):
        assert latent["samples"].shape == (1, 4, 8, 8) and torch.isfinite(latent["samples"]).all()
