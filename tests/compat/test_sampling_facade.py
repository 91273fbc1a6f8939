"""ComfyUI's sampling modules as packs use them, through a fixture pack (packs/sampler_pack) in workflows.

The pack wraps, registers and patches samplers and models the way sampling packs do; each result is
checked against Sigmagraph's own nodes on the same graph (KSampler, SamplerCustom, ModelSamplingDiscrete,
VAEDecode...) or against the computation done by hand: a CFG function that scales the guidance is CFG at
the scaled scale, a post-CFG function that keeps the unconditional prediction is sampling the negative
prompt alone, a UNet wrapper that swaps the cond and uncond chunks is CFG with the prompts swapped.
"""

from __future__ import annotations

import shutil
import sys

import pytest
import torch

from sigmagraph import compat
from sigmagraph.compat import samplers as compat_samplers
from sigmagraph.compat import state
from sigmagraph.engine import Config, Session
from sigmagraph.engine.discovery import PACKS_NAMESPACE, load_packs
from sigmagraph.engine.testing import output, run
from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES
from sigmagraph.nodes.sampling.guidance import guided_denoiser
from sigmagraph.nodes.sampling.schedules import scheduled_sigmas

from .conftest import REPO

PACK = REPO / "tests" / "compat" / "packs" / "sampler_pack"
SEED, STEPS = 11, 4


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Built-in nodes plus the fixture pack; the samplers and schedules it registers are removed afterwards."""
    saved = (dict(SAMPLERS), dict(SCHEDULES), dict(compat_samplers.PACK_SAMPLERS),
             list(compat_samplers.SAMPLER_NAMES))
    previous = state.config()
    root = tmp_path_factory.mktemp("sampler_pack")
    shutil.copytree(PACK, root / "custom_nodes" / "sampler_pack", ignore=shutil.ignore_patterns("__pycache__"))
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device="cpu", custom_nodes_dirs=(root / "custom_nodes",))
    compat.install(config)
    yield Session(config, load_packs(config))
    state.activate(previous)
    for mapping, before in zip((SAMPLERS, SCHEDULES, compat_samplers.PACK_SAMPLERS), saved):
        mapping.clear()
        mapping.update(before)
    compat_samplers.SAMPLER_NAMES[:] = saved[3]
    delattr(sys.modules["comfy.k_diffusion.sampling"], "sample_fixture_euler")
    for name in [m for m in sys.modules if m.startswith(f"{PACKS_NAMESPACE}.sampler_pack")]:
        del sys.modules[name]


@pytest.fixture
def pack():
    module = sys.modules[f"{PACKS_NAMESPACE}.sampler_pack"]
    module.SEEN.clear()
    module.FixtureUnetWrapper.CALLS.clear()
    return module


ANALYTIC = {"model": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 3, "components": 3, "channels": 4,
                                                                "spread": 1.0, "prediction_type": "eps"}},
            "pos": {"class_type": "NoConditioning", "inputs": {}},
            "neg": {"class_type": "NoConditioning", "inputs": {}},
            "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
DEMO = {"model": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sigmagraph-demo.safetensors"}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["model", 1], "text": "a red house by the sea"}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["model", 1], "text": "a dark forest"}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
BASES = {"analytic": ANALYTIC, "demo": DEMO}


def ksampler(model=("model", 0), sampler_name="euler", cfg=5.0, positive="pos", negative="neg", **extra) -> dict:
    inputs = {"model": list(model), "seed": SEED, "steps": STEPS, "cfg": cfg, "sampler_name": sampler_name,
              "scheduler": "karras", "positive": [positive, 0], "negative": [negative, 0],
              "latent_image": ["latent", 0], "denoise": 1.0}
    return {"class_type": "KSampler", "inputs": inputs | extra}


def sampler_custom(sampler: list, cfg: float = 5.0) -> dict:
    return {"class_type": "SamplerCustom", "inputs": {
        "model": ["model", 0], "add_noise": True, "noise_seed": SEED, "cfg": cfg, "positive": ["pos", 0],
        "negative": ["neg", 0], "sampler": sampler, "sigmas": ["sigmas", 0], "latent_image": ["latent", 0]}}


SIGMAS = {"class_type": "BasicScheduler", "inputs": {"model": ["model", 0], "scheduler": "karras", "steps": STEPS,
                                                     "denoise": 1.0}}


def outputs(session, workflow: dict, *wanted: tuple[str, int]) -> list:
    """The first value of each wanted (node, slot) after one run, each shown by an output node."""
    shown = {f"show_{node}_{slot}": {"class_type": "PreviewAny", "inputs": {"source": [node, slot]}}
             for node, slot in wanted}
    result = run(session, {**workflow, **shown})
    return [output(session, result, node, slot) for node, slot in wanted]


def samples(session, base: str, nodes: dict, *wanted: str) -> list[torch.Tensor]:
    """The LATENT samples of the wanted nodes after one run of the base graph plus `nodes`."""
    return [latent["samples"] for latent in outputs(session, {**BASES[base], **nodes}, *((n, 0) for n in wanted))]


@pytest.mark.parametrize("base", ["analytic", "demo"])
def test_a_pack_sampler_reads_the_run_through_model_k_and_its_euler_is_sigmagraphs(session, pack, base):
    nodes = {"sigmas": SIGMAS, "select": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
             "fixture": {"class_type": "FixtureEulerSampler", "inputs": {}},
             "ours": sampler_custom(["select", 0], cfg=4.5), "theirs": sampler_custom(["fixture", 0], cfg=4.5)}
    ours, theirs = samples(session, base, nodes, "ours", "theirs")
    assert torch.equal(ours, theirs)
    (seen,) = pack.SEEN
    assert seen["cfg"] == 4.5 and seen["seed"] == SEED
    assert seen["extra_args"] == ["denoise_mask", "model_options", "seed"]
    assert seen["model_options"]["transformer_options"]["sample_sigmas"].shape == (STEPS + 1,)
    assert seen["patched_model_sampling"] is seen["model_sampling"]
    assert float(seen["model_sampling"].sigma_max) == pytest.approx(14.614642, rel=1e-6)  # SD's schedule in both
    assert seen["latent_format"].latent_channels == 4
    # model_k.noise is the run's initial noise: ComfyUI's seeded draw.
    assert torch.equal(seen["noise"], torch.randn((1, 4, 8, 8), generator=torch.manual_seed(SEED)))


def test_a_pack_sampler_inpaints_as_sigmagraphs(session, pack):
    nodes = {"noisy": ksampler(cfg=1.0, denoise=0.5),
             "mask": {"class_type": "SolidMask", "inputs": {"value": 0.7, "width": 64, "height": 64}},
             "masked": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["noisy", 0], "mask": ["mask", 0]}},
             "sigmas": SIGMAS, "select": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
             "fixture": {"class_type": "FixtureEulerSampler", "inputs": {}},
             "ours": sampler_custom(["select", 0]), "theirs": sampler_custom(["fixture", 0])}
    for name in ("ours", "theirs"):
        nodes[name]["inputs"]["latent_image"] = ["masked", 0]
    ours, theirs = samples(session, "analytic", nodes, "ours", "theirs")
    assert torch.equal(ours, theirs)
    assert torch.allclose(pack.SEEN[0]["denoise_mask"], torch.full((1, 4, 8, 8), 0.7))  # the latent-shaped mask


@pytest.mark.parametrize("base", ["analytic", "demo"])
def test_a_sampler_registered_by_name_is_offered_and_runs_in_ksampler(session, pack, base):
    choices = session.registry.nodes["KSampler"].catalogue_entry(session.config)["input"]["required"]["sampler_name"]
    assert "fixture_euler" in choices[0] and "fixture_euler" in SAMPLERS
    ours, theirs = samples(session, base, {"ours": ksampler(cfg=6.0), "theirs": ksampler(sampler_name="fixture_euler",
                                                                                           cfg=6.0)},
                           "ours", "theirs")
    assert torch.equal(ours, theirs)
    assert [seen["cfg"] for seen in pack.SEEN] == [6.0]


def test_a_wrapping_sampler_runs_the_wrapped_one_on_its_model(session, pack):
    nodes = {"sigmas": SIGMAS, "select": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
             "same": {"class_type": "FixtureScaledSigmaSampler", "inputs": {"sampler": ["select", 0], "factor": 1.0}},
             "lying": {"class_type": "FixtureScaledSigmaSampler", "inputs": {"sampler": ["select", 0], "factor": 0.9}},
             "ours": sampler_custom(["select", 0]), "same_out": sampler_custom(["same", 0]),
             "lying_out": sampler_custom(["lying", 0])}
    ours, same, lying = samples(session, "analytic", nodes, "ours", "same_out", "lying_out")
    assert torch.equal(ours, same)
    # By hand: Sigmagraph's euler on the guided denoiser with sigma scaled by 0.9 at every call.
    model = analytic_model(3, 3, 4, 1.0, "eps")
    ms = model.model_sampling
    sigmas = scheduled_sigmas(ms, "karras", STEPS)
    noise = torch.randn((1, 4, 8, 8), generator=torch.manual_seed(SEED))
    latent = torch.zeros(1, 4, 8, 8)
    cond = [[torch.zeros(1, 1, 1), {}]]
    guided = guided_denoiser(model.denoiser(), cond, cond, 5.0, latent.shape, ms.percent_to_sigma)
    x = ms.noise_scaling(sigmas[0], noise, latent, ms.is_max_denoise(sigmas[0]))
    expected = SAMPLERS["euler"](lambda x, sigma, **kw: guided(x, sigma * 0.9), x, sigmas, {"seed": SEED}, disable=True)
    assert torch.allclose(lying, expected, atol=1e-6) and not torch.allclose(lying, ours, atol=1e-3)


def test_a_cfg_function_computing_cfg_reproduces_it_and_a_scaled_one_is_cfg_at_that_scale(session, pack):
    nodes = {"plain": ksampler(cfg=5.0), "half": ksampler(cfg=2.5),
             "same": {"class_type": "FixtureCfgFunction", "inputs": {"model": ["model", 0], "factor": 1.0}},
             "halved": {"class_type": "FixtureCfgFunction", "inputs": {"model": ["model", 0], "factor": 0.5}},
             "same_out": ksampler(model=("same", 0), cfg=5.0), "halved_out": ksampler(model=("halved", 0), cfg=5.0)}
    plain, half, same, halved = samples(session, "demo", nodes, "plain", "half", "same_out", "halved_out")
    # ComfyUI's CFG functions work in noise space (x - x0); the blend matches to float32 rounding.
    assert torch.allclose(same, plain, atol=1e-5)
    assert torch.allclose(halved, half, atol=1e-5) and (halved - plain).abs().max() > 0.05


def test_post_cfg_functions_see_each_prediction(session, pack):
    nodes = {"keep_uncond": {"class_type": "FixturePostCfgFunction", "inputs": {"model": ["model", 0],
                                                                                "use": "uncond_denoised"}},
             "keep_cond": {"class_type": "FixturePostCfgFunction", "inputs": {"model": ["model", 0],
                                                                              "use": "cond_denoised"}},
             "plain": ksampler(), "negative_alone": ksampler(positive="neg"), "no_guidance": ksampler(cfg=1.0),
             "uncond_out": ksampler(model=("keep_uncond", 0)), "cond_out": ksampler(model=("keep_cond", 0))}
    plain, negative, unguided, uncond, cond = samples(session, "demo", nodes, "plain", "negative_alone",
                                                      "no_guidance", "uncond_out", "cond_out")
    assert torch.allclose(uncond, negative, atol=1e-5)
    assert torch.allclose(cond, unguided, atol=1e-5) and (cond - plain).abs().max() > 0.05


def test_a_unet_wrapper_gets_comfyuis_arguments_for_each_batched_call(session, pack):
    nodes = {"wrapped": {"class_type": "FixtureUnetWrapper", "inputs": {"model": ["model", 0], "swap": False}},
             "swapping": {"class_type": "FixtureUnetWrapper", "inputs": {"model": ["model", 0], "swap": True}},
             "plain": ksampler(), "swapped_prompts": ksampler(positive="neg", negative="pos"),
             "wrapped_out": ksampler(model=("wrapped", 0)), "swapping_out": ksampler(model=("swapping", 0))}
    plain, swapped, wrapped, swapping = samples(session, "demo", nodes, "plain", "swapped_prompts", "wrapped_out",
                                                "swapping_out")
    assert torch.equal(wrapped, plain)
    assert torch.allclose(swapping, swapped, atol=1e-5) and (swapping - plain).abs().max() > 0.05
    calls = pack.FixtureUnetWrapper.CALLS
    assert len(calls) == 2 * STEPS  # one batched call per step, in each of the two wrapped runs
    assert calls[0] == {"keys": ["c", "cond_or_uncond", "input", "timestep"], "cond_or_uncond": [1, 0],
                        "c": ["c_crossattn", "transformer_options"], "batch": 2}


@pytest.mark.parametrize("sampling, builtin", [
    ("v_prediction", {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": "v_prediction", "zsnr": False}}),
    ("flow", {"class_type": "ModelSamplingSD3", "inputs": {"shift": 3.0}})])
def test_a_model_sampling_object_patch_of_a_star_imported_class(session, pack, sampling, builtin):
    builtin = {"class_type": builtin["class_type"], "inputs": {"model": ["model", 0], **builtin["inputs"]}}
    nodes = {"theirs": {"class_type": "FixtureModelSampling", "inputs": {"model": ["model", 0], "sampling": sampling,
                                                                         "shift": 3.0}},
             "ours": builtin, "plain": ksampler(), "theirs_out": ksampler(model=("theirs", 0)),
             "ours_out": ksampler(model=("ours", 0))}
    plain, theirs, ours = samples(session, "analytic", nodes, "plain", "theirs_out", "ours_out")
    assert torch.equal(theirs, ours) and not torch.allclose(theirs, plain, atol=1e-3)


def test_comfy_sample_sample_is_ksampler(session, pack):
    nodes = {"ours": ksampler(sampler_name="euler_ancestral"),
             "theirs": {"class_type": "FixtureCommonKSampler", "inputs": {
                 "model": ["model", 0], "seed": SEED, "steps": STEPS, "cfg": 5.0, "sampler_name": "euler_ancestral",
                 "scheduler": "karras", "positive": ["pos", 0], "negative": ["neg", 0],
                 "latent_image": ["latent", 0], "denoise": 1.0}},
             "img2img_ours": ksampler(sampler_name="euler", latent_image=["ours", 0], denoise=0.5),
             "img2img_theirs": {"class_type": "FixtureCommonKSampler", "inputs": {
                 "model": ["model", 0], "seed": SEED, "steps": STEPS, "cfg": 5.0, "sampler_name": "euler",
                 "scheduler": "karras", "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["ours", 0],
                 "denoise": 0.5}}}
    ours, theirs, img_ours, img_theirs = samples(session, "demo", nodes, "ours", "theirs", "img2img_ours",
                                                 "img2img_theirs")
    assert torch.equal(ours, theirs) and torch.equal(img_ours, img_theirs)


def test_vae_decode_and_encode_are_vaedecode_and_vaeencode(session, pack):
    nodes = {"sampled": ksampler(), "decoded": {"class_type": "VAEDecode", "inputs": {"samples": ["sampled", 0],
                                                                                      "vae": ["model", 2]}},
             "encoded": {"class_type": "VAEEncode", "inputs": {"pixels": ["decoded", 0], "vae": ["model", 2]}},
             "pack": {"class_type": "FixtureVAERoundTrip", "inputs": {"vae": ["model", 2], "samples": ["sampled", 0]}}}
    images, latent, decoded, encoded = outputs(session, {**DEMO, **nodes}, ("pack", 0), ("pack", 1), ("decoded", 0),
                                               ("encoded", 0))
    assert torch.equal(images, decoded) and torch.equal(latent["samples"], encoded["samples"])
