"""The MODEL, CLIP and SAMPLER facades and ComfyUI's model modules, called directly as pack code calls them.

References: DESIGN.md's SD schedule table, ComfyUI's formulas computed here by hand (the discrete
table from its betas, v-prediction's x0, the SD3 time shift), exact LoRA weight deltas, Brownian
increments that add up along the path, and Sigmagraph's own nodes on the same inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from sigmagraph import compat
from sigmagraph.compat import samplers as compat_samplers
from sigmagraph.compat.latents import native_latent_format
from sigmagraph.compat.model_sampling import native
from sigmagraph.compat.patcher import ModelPatcher, diffusion_model
from sigmagraph.nodes.models.families import FLUX_LATENT, SD3_LATENT, SD_LATENT
from sigmagraph.nodes.packs.analytic import analytic_model
from sigmagraph.nodes.sampling import SCHEDULES
from sigmagraph.nodes.sampling.analytic import GaussianMixture
from sigmagraph.nodes.sampling.guidance import GuidanceStep

compat.install()

import comfy.k_diffusion.sampling as k_sampling  # noqa: E402
import comfy.latent_formats  # noqa: E402
import comfy.lora  # noqa: E402
import comfy.model_sampling  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402
import nodes  # noqa: E402

SD_NORMAL_4 = [14.61464, 2.918307, 0.932358, 0.029167, 0.0]  # DESIGN.md
SD_KARRAS_4 = [14.614643, 3.168605, 0.446919, 0.029167, 0.0]


def sd_table() -> np.ndarray:
    """SD's training sigmas from its betas, computed here in float64 (ComfyUI's ModelSamplingDiscrete)."""
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


@pytest.fixture
def analytic():
    return analytic_model(3, 3, 4, 1.0, "eps")


@pytest.fixture(scope="module")
def demo():
    """(MODEL, CLIP, VAE) of the demo checkpoint, through the core class as packs call it."""
    return nodes.CheckpointLoaderSimple().load_checkpoint("sigmagraph-demo.safetensors")


def test_a_model_through_a_pack_unchanged_comes_back_the_same(analytic):
    patcher = ModelPatcher.of(analytic)
    assert diffusion_model(patcher) is analytic and diffusion_model(patcher.clone()) is analytic
    hooked = analytic.with_post_cfg(lambda step: step.denoised * 2).with_cfg_function(lambda step: step.cond)
    patcher = ModelPatcher.of(hooked)
    options = patcher.clone().model_options
    assert len(options["sampler_post_cfg_function"]) == 1 and callable(options["sampler_cfg_function"])
    assert diffusion_model(patcher.clone()) is hooked
    # A model's own hook runs as ComfyUI's function with ComfyUI's arguments (cond/uncond as noise).
    x, cond, uncond = torch.full((1, 1), 3.0), torch.full((1, 1), 1.0), torch.full((1, 1), 0.5)
    args = {"input": x, "sigma": torch.ones(1), "cond": x - cond, "uncond": x - uncond, "cond_denoised": cond,
            "uncond_denoised": uncond, "cond_scale": 4.0}
    assert torch.equal(options["sampler_cfg_function"](args), x - cond)


def test_clones_change_their_own_options_and_patches(analytic):
    patcher = ModelPatcher.of(analytic)
    clone = patcher.clone()
    clone.set_model_sampler_cfg_function(lambda args: args["uncond"])
    clone.set_model_sampler_post_cfg_function(lambda args: args["denoised"])
    class Eps(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
        pass

    clone.add_object_patch("model_sampling", Eps())
    assert "sampler_cfg_function" not in patcher.model_options and not patcher.object_patches
    assert diffusion_model(patcher) is analytic
    changed = diffusion_model(clone)
    assert changed.cfg_function is not None and len(changed.post_cfg) == 1 and changed.network is analytic.network
    assert clone.get_model_object("model_sampling") is clone.object_patches["model_sampling"]
    assert patcher.get_model_object("model_sampling") is patcher.model.model_sampling
    assert patcher.get_model_object("latent_format").latent_channels == 4


def test_the_old_three_argument_cfg_function_gets_cond_uncond_and_scale(analytic):
    patcher = ModelPatcher.of(analytic)
    patcher.set_model_sampler_cfg_function(lambda cond, uncond, cond_scale: uncond + (cond - uncond) * cond_scale)
    hook = diffusion_model(patcher).cfg_function
    step = GuidanceStep(torch.full((1, 1), 3.0), torch.ones(1), torch.full((1, 1), 1.0), torch.full((1, 1), 0.5),
                        4.0, torch.zeros(1, 1))
    assert torch.allclose(hook(step), torch.full((1, 1), 0.5 + 0.5 * 4.0))


def test_the_model_sampling_packs_read_has_comfyuis_numbers(analytic):
    ms = ModelPatcher.of(analytic).get_model_object("model_sampling")
    assert isinstance(ms, comfy.model_sampling.ModelSamplingDiscrete) and isinstance(ms, comfy.model_sampling.EPS)
    table = sd_table()
    assert float(ms.sigma_min) == pytest.approx(table[0], rel=1e-6)
    assert float(ms.sigma_max) == pytest.approx(table[-1], rel=1e-6) == pytest.approx(14.614642, rel=1e-6)
    # ComfyUI's percent_to_sigma: timestep (1 - p) * 999, log-sigma interpolated between table entries.
    log = np.log(table)
    expected = math.exp(0.5 * log[499] + 0.5 * log[500])
    assert ms.percent_to_sigma(0.5) == pytest.approx(expected, rel=1e-5)
    assert ms.percent_to_sigma(0.0) == 999999999.9 and ms.percent_to_sigma(1.0) == 0.0
    assert comfy.samplers.calculate_sigmas(ms, "normal", 4).tolist() == pytest.approx(SD_NORMAL_4, abs=5e-6)
    assert comfy.samplers.calculate_sigmas(ms, "karras", 4).tolist() == pytest.approx(SD_KARRAS_4, abs=5e-6)


def test_star_imported_classes_become_sigmagraphs_model_sampling():
    namespace: dict = {}
    exec("from comfy.model_sampling import *", namespace)
    assert {"EPS", "V_PREDICTION", "EDM", "CONST", "X0", "ModelSamplingDiscrete", "ModelSamplingDiscreteFlow",
            "ModelSamplingContinuousEDM", "ModelSamplingFlux", "time_snr_shift"} <= namespace.keys()

    class VPrediction(namespace["ModelSamplingDiscrete"], namespace["V_PREDICTION"]):
        pass

    ms = native(VPrediction())
    assert ms.prediction == "v_prediction"
    assert np.allclose(ms.sigmas.double().numpy(), sd_table(), rtol=1e-6)
    sigma, x, out = torch.tensor([2.0]), torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    by_hand = x / (sigma ** 2 + 1) - out * sigma / (sigma ** 2 + 1) ** 0.5  # sigma_data 1 (Salimans & Ho 2022)
    assert torch.allclose(VPrediction().calculate_denoised(sigma, out, x), by_hand, atol=1e-6)

    class Flow(namespace["ModelSamplingDiscreteFlow"], namespace["CONST"]):
        pass

    flow = Flow()
    flow.set_parameters(shift=3.0)
    assert native(flow).prediction == "flow"
    assert flow.percent_to_sigma(0.3) == pytest.approx(3.0 * 0.7 / (1 + 2.0 * 0.7))  # SD3's shift of t = 0.7
    flux = namespace["ModelSamplingFlux"]()
    mu, t = 1.15, torch.tensor(0.4)
    assert float(flux.sigma(t)) == pytest.approx(math.exp(mu) / (math.exp(mu) + 1 / 0.4 - 1), rel=1e-6)

    class Redefined(namespace["ModelSamplingDiscrete"], namespace["EPS"]):
        def calculate_denoised(self, sigma, model_output, model_input):
            return model_output

    with pytest.raises(ValueError, match="redefines calculate_denoised"):
        native(Redefined())


def test_stable_cascade_timesteps_and_sigmas_are_inverse():
    cascade = comfy.model_sampling.StableCascadeSampling()
    t = torch.tensor([0.1, 0.5, 0.9])
    assert torch.allclose(cascade.timestep(cascade.sigma(t)), t, atol=1e-4)
    assert cascade.percent_to_sigma(0.25) == pytest.approx(float(cascade.sigma(torch.tensor(0.75))))


def test_latent_formats():
    sd15, sdxl, sd3 = comfy.latent_formats.SD15(), comfy.latent_formats.SDXL(), comfy.latent_formats.SD3()
    latent = torch.randn(1, 4, 2, 2)
    assert sd15.scale_factor == 0.18215 and sd15.latent_channels == 4 and len(sd15.latent_rgb_factors) == 4
    assert torch.equal(sd15.process_in(latent), latent * 0.18215) and sdxl.scale_factor == 0.13025
    assert native_latent_format(sd15) is SD_LATENT
    assert native_latent_format(comfy.latent_formats.SD15(scale_factor=0.5)).scale_factor == 0.5
    assert sd3.latent_channels == 16 and torch.allclose(sd3.process_in(latent), (latent - 0.0609) * 1.5305)
    assert native_latent_format(sd3) is SD3_LATENT
    flux = comfy.latent_formats.Flux()
    assert torch.allclose(flux.process_out(flux.process_in(latent)), latent, atol=1e-6)
    assert native_latent_format(flux) is FLUX_LATENT

    class Cubed(comfy.latent_formats.LatentFormat):
        def process_in(self, latent):
            return latent ** 3

    with pytest.raises(ValueError, match="beyond a shift and a scale"):
        native_latent_format(Cubed())


def test_fix_empty_latent_channels_and_prepare_noise(analytic):
    patcher = ModelPatcher.of(analytic_model(3, 3, 6, 1.0, "eps"))
    empty = torch.zeros(2, 4, 8, 8)
    assert comfy.sample.fix_empty_latent_channels(patcher, empty).shape == (2, 6, 8, 8)
    assert torch.equal(comfy.sample.prepare_noise(empty, 9), torch.randn((2, 4, 8, 8), generator=torch.manual_seed(9)))
    # With batch indices, each index's own draw (ComfyUI draws one latent per index up to the largest).
    single = torch.randn((3, 1, 4, 8, 8), generator=torch.manual_seed(9))[:, 0]
    assert torch.equal(comfy.sample.prepare_noise(empty, 9, [2, 0]), single[[2, 0]])


def test_k_diffusion_helpers():
    assert k_sampling.get_sigmas_karras(4, 0.0291675, 14.614642).tolist() == pytest.approx(SD_KARRAS_4, abs=5e-6)
    down, up = k_sampling.get_ancestral_step(torch.tensor(2.0), torch.tensor(1.0), eta=1.0)
    assert float(up) == pytest.approx((1.0 * (4 - 1) / 4) ** 0.5) and float(down) == pytest.approx((1 - 0.75) ** 0.5)
    x = torch.zeros(1, 4, 8, 8)
    assert torch.equal(k_sampling.default_noise_sampler(x, seed=5)(1.0, 0.5),
                       torch.randn((1, 4, 8, 8), generator=torch.manual_seed(5)))
    tree = k_sampling.BatchedBrownianTree(x, torch.tensor(0.1), torch.tensor(0.9), seed=3)
    a, b, c = (tree(torch.tensor(s), torch.tensor(e)) for s, e in ((0.1, 0.5), (0.5, 0.9), (0.1, 0.9)))
    assert torch.allclose(a + b, c, atol=1e-5)  # Brownian increments add up along the path
    assert k_sampling.BrownianTreeNoiseSampler(x, 0.1, 0.9, seed=3, cpu=True)(0.9, 0.5).shape == x.shape
    assert k_sampling.sample_euler.__wrapped__ is compat_samplers.SAMPLERS["euler"]
    assert comfy.samplers.sampler_object("euler").sampler_function is k_sampling.sample_euler
    assert set(compat_samplers.SAMPLERS) <= set(comfy.samplers.KSampler.SAMPLERS)
    assert set(SCHEDULES) <= set(comfy.samplers.KSampler.SCHEDULERS)


def test_dpm_fast_takes_comfyuis_range_and_count():
    mixture, calls = GaussianMixture.random(0), []

    def model(x, sigma, **extra):
        calls.append(float(sigma[0]))
        return mixture(x, sigma)

    x = 14.6 * torch.randn(1, 4, 4, 4, generator=torch.manual_seed(0))
    out = k_sampling.sample_dpm_fast(model, x, 0.0292, 14.6, 7, disable=True)
    assert len(calls) == 7 and calls[0] == pytest.approx(14.6) and torch.isfinite(out).all()


@pytest.fixture
def scheduler_registry():
    saved = dict(SCHEDULES), dict(comfy.samplers.SCHEDULER_HANDLERS)
    yield
    SCHEDULES.clear()
    SCHEDULES.update(saved[0])
    dict.clear(comfy.samplers.SCHEDULER_HANDLERS)
    dict.update(comfy.samplers.SCHEDULER_HANDLERS, saved[1])


def test_a_scheduler_handler_a_pack_adds_is_a_sigmagraph_schedule(analytic, scheduler_registry):
    def linear(model_sampling, steps):
        return torch.cat([torch.linspace(float(model_sampling.sigma_max), float(model_sampling.sigma_min), steps),
                          torch.zeros(1)])

    comfy.samplers.SCHEDULER_HANDLERS.update({"fixture_linear": comfy.samplers.SchedulerHandler(linear)})
    comfy.samplers.SCHEDULER_HANDLERS["fixture_range"] = comfy.samplers.SchedulerHandler(
        lambda n, sigma_min, sigma_max: torch.tensor([sigma_max, sigma_min, 0.0]), use_ms=False)
    sigmas = nodes.NODE_CLASS_MAPPINGS["BasicScheduler"]().get_sigmas(ModelPatcher.of(analytic), "fixture_linear", 4,
                                                                      1.0)[0]
    sigma_max, sigma_min = sd_table()[-1], sd_table()[0]
    expected = torch.cat([torch.linspace(sigma_max, sigma_min, 4), torch.zeros(1)])
    assert torch.allclose(sigmas, expected, atol=1e-5)
    assert SCHEDULES["fixture_range"](analytic.model_sampling, 2).tolist() == pytest.approx([sigma_max, sigma_min, 0],
                                                                                           rel=1e-5)


def test_wrapper_executor_runs_wrappers_outside_in():
    order = []

    def wrapper(name):
        def wrap(executor, value):
            order.append(name)
            return executor(value + name)
        return wrap

    executor = comfy.patcher_extension.WrapperExecutor.new_executor(lambda value: value, [wrapper("a"), wrapper("b")])
    assert executor.execute("") == "ab" and order == ["a", "b"]
    options, outer = {}, wrapper("c")
    comfy.patcher_extension.add_wrapper_with_key("outer_sample", "k", outer, options, is_model_options=True)
    assert options == {"transformer_options": {"wrappers": {"outer_sample": {"k": [outer]}}}}
    assert comfy.patcher_extension.get_all_wrappers("outer_sample", options, is_model_options=True) == [outer]
    merged = comfy.patcher_extension.merge_nested_dicts({"a": {"x": [1]}, "b": 1}, {"a": {"x": [2], "y": 3}})
    assert merged == {"a": {"x": [2, 1], "y": 3}, "b": 1}


def write_lora(path, unet_name: str, unet_shape, clip_name: str, clip_shape) -> dict[str, torch.Tensor]:
    """A rank-2 kohya LoRA with one UNet and one text-encoder layer; returns its tensors."""
    generator = torch.Generator().manual_seed(4)
    tensors = {}
    for prefix, name, (out, inp) in (("lora_unet", unet_name, unet_shape), ("lora_te", clip_name, clip_shape)):
        key = f"{prefix}_{name.replace('.', '_')}"
        tensors[f"{key}.lora_up.weight"] = torch.randn(out, 2, generator=generator)
        tensors[f"{key}.lora_down.weight"] = torch.randn(2, inp, generator=generator)
        tensors[f"{key}.alpha"] = torch.tensor(1.0)
    save_file(tensors, str(path))
    return tensors


def test_loras_through_comfy_sd_and_comfy_lora_change_weights_by_their_low_rank_product(config, demo):
    model, clip, _ = demo
    unet = model.model.diffusion_model
    encoder = clip.cond_stage_model.clip_l.transformer
    unet_name = next(n for n, m in unet.named_modules() if isinstance(m, torch.nn.Linear))
    clip_name = "text_model.encoder.layers.0.self_attn.q_proj"
    unet_weight = unet.get_submodule(unet_name).weight.detach().clone()
    clip_weight = encoder.get_submodule(clip_name).weight.detach().clone()
    (config.models_dir / "loras").mkdir(parents=True)
    path = config.models_dir / "loras" / "fixture.safetensors"
    tensors = write_lora(path, unet_name, tuple(unet_weight.shape), clip_name, tuple(clip_weight.shape))

    def delta(prefix, name, strength):
        key = f"{prefix}_{name.replace('.', '_')}"
        return strength * 0.5 * tensors[f"{key}.lora_up.weight"] @ tensors[f"{key}.lora_down.weight"]  # alpha / rank

    expected_unet = unet_weight.float() + delta("lora_unet", unet_name, 0.8)
    expected_clip = clip_weight.float() + delta("lora_te", clip_name, 0.5)

    def weights(model_out, clip_out):
        network = diffusion_model(model_out).network
        text = compat.values.from_comfy("CLIP", clip_out).parts[0]
        return (network.use().get_submodule(unet_name).weight.detach().clone().float(),
                text.use().get_submodule(clip_name).weight.detach().clone().float())

    lora = comfy.utils.load_torch_file(str(path))
    by_sd = weights(*comfy.sd.load_lora_for_models(model, clip, lora, 0.8, 0.5))
    key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, comfy.lora.model_lora_keys_unet(model.model))
    loaded = comfy.lora.load_lora(lora, key_map)
    patched_model, patched_clip = model.clone(), clip.clone()
    assert patched_model.add_patches({k: v for k, v in loaded.items() if k.startswith("diffusion_model.")}, 0.8)
    assert patched_clip.add_patches({k: v for k, v in loaded.items() if k.startswith("clip_l.")}, 0.5)
    by_lora = weights(patched_model, patched_clip)
    by_node = weights(*nodes.LoraLoader().load_lora(model, clip, "fixture.safetensors", 0.8, 0.5))
    for unet_w, clip_w in (by_sd, by_lora, by_node):
        assert torch.allclose(unet_w, expected_unet, atol=1e-5) and torch.allclose(clip_w, expected_clip, atol=1e-5)
    unpatched = weights(model, clip)  # the inputs keep their weights
    assert torch.equal(unpatched[0], unet_weight.float()) and torch.equal(unpatched[1], clip_weight.float())


class NegativeOnly(comfy.samplers.CFGGuider):
    """A pack's guider: predict_noise replaced, here by the unconditional prediction alone."""

    def predict_noise(self, x, timestep, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        self.run_sigmas = model_options["transformer_options"]["sample_sigmas"]
        cond, uncond = comfy.samplers.calc_cond_batch(self.inner_model, [self.conds["positive"],
                                                                         self.conds["negative"]], x, timestep,
                                                      model_options)
        return uncond


def test_cfg_guiders_sample_as_sigmagraph_and_a_subclass_predicts_its_way(demo):
    model, clip, _ = demo
    positive = nodes.CLIPTextEncode().encode(clip, "a red house by the sea")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "a dark forest")[0]
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    sigmas = nodes.NODE_CLASS_MAPPINGS["BasicScheduler"]().get_sigmas(model, "karras", 3, 1.0)[0]
    noise = comfy.sample.prepare_noise(latent["samples"], 2)

    def sample(guider_class, pos, neg):
        guider = guider_class(model)
        guider.set_conds(pos, neg)
        guider.set_cfg(5.0)
        out = guider.sample(noise, latent["samples"], comfy.samplers.sampler_object("euler"), sigmas, seed=2)
        assert torch.equal(getattr(guider, "run_sigmas", sigmas), sigmas)
        return out

    custom = nodes.NODE_CLASS_MAPPINGS["SamplerCustom"]()
    ours = custom.sample(model, True, 2, 5.0, positive, negative, comfy.samplers.sampler_object("euler"), sigmas,
                         latent)[0]["samples"]
    assert torch.equal(sample(comfy.samplers.CFGGuider, positive, negative), ours)
    alone = sample(comfy.samplers.CFGGuider, negative, negative)
    assert torch.allclose(sample(NegativeOnly, positive, negative), alone, atol=1e-5)
    assert (alone - ours).abs().max() > 0.05


def test_clip_tokenizes_and_encodes_as_clip_text_encode(demo):
    _, clip, vae = demo
    tokens = clip.tokenize("a red house by the sea")
    assert list(tokens) == ["l"] and len(tokens["l"][0]) == 77 and tokens["l"][0][0] == (49406, 1.0)
    (expected, options), = nodes.CLIPTextEncode().encode(clip, "a red house by the sea")[0]
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    assert torch.equal(cond, expected) and torch.equal(pooled, options["pooled_output"])
    (scheduled, scheduled_options), = clip.encode_from_tokens_scheduled(tokens, add_dict={"strength": 0.5})
    assert torch.equal(scheduled, expected) and scheduled_options["strength"] == 0.5
    penultimate = clip.clone()
    penultimate.clip_layer(-2)
    layered = nodes.CLIPSetLastLayer().set_last_layer(clip, -2)[0]
    assert clip.layer_idx is None
    assert torch.equal(penultimate.encode_from_tokens(tokens), layered.encode("a red house by the sea"))
    assert not torch.equal(penultimate.encode_from_tokens(tokens), cond)
    assert vae.spacial_compression_decode() == vae.downscale_ratio == 8 and vae.latent_channels == 4
