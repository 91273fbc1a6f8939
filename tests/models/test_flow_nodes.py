"""ComfyUI's SD3 and Flux nodes on tiny random models: their options, their effect on the network's inputs,
the split-file loaders, and ComfyUI's own SD3.5 and Flux templates run unchanged but for sizes."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import TINY_FLOW
from sigmagraph.engine import Session
from sigmagraph.nodes.models.flux import reference_tokens
from sigmagraph.nodes.models.loading import load_checkpoint
from sigmagraph.nodes.packs.conditioning import CLIPTextEncode, ReferenceLatent
from sigmagraph.nodes.packs.flux import (CLIPTextEncodeFlux, FluxGuidance, FluxKontextImageScale,
                                         FluxKontextMultiReferenceLatentMethod)
from sigmagraph.nodes.packs.latent import EmptySD3LatentImage
from sigmagraph.nodes.packs.loaders import CLIPLoader, DualCLIPLoader, TripleCLIPLoader
from sigmagraph.nodes.packs.model_sampling import ModelSamplingAuraFlow
from sigmagraph.nodes.packs.sd3 import CLIPTextEncodeSD3, SkipLayerGuidanceSD3
from sigmagraph.nodes.sampling.guidance import GuidanceStep, resolve_conditioning

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def tiny(random_models, family: str):
    """(MODEL, CLIP, VAE) of a family's tiny single file."""
    path = random_models.root / "checkpoints" / random_models.flow_checkpoint(family)
    return load_checkpoint(path, path.name, CPU)


def network_inputs(model, conditioning, latent_shape) -> dict[str, torch.Tensor]:
    return resolve_conditioning(conditioning, latent_shape, model.encode_condition)[0].inputs


def test_empty_sd3_latent_has_sixteen_channels():
    assert torch.equal(EmptySD3LatentImage(64, 48, 2)["samples"], torch.zeros(2, 16, 6, 8))


@torch.no_grad()
def test_flux_guidance_reaches_the_guidance_embedder(random_models):
    model, clip, _ = tiny(random_models, "flux-dev")
    conditioning = FluxGuidance(CLIPTextEncode("a boat", clip), 2.0)
    x, sigma = torch.randn(1, 16, 6, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0.6])
    inputs = network_inputs(model, conditioning, x.shape)
    assert inputs["guidance"].tolist() == [2.0]
    assert network_inputs(model, CLIPTextEncode("a boat", clip), x.shape)["guidance"].tolist() == [3.5]
    flux = model.network.managed.module
    cond, options = conditioning[0]
    # A flow model's x0 = x - sigma v, v from Flux at t = sigma with the prompt's guidance scale.
    expected = x - 0.6 * flux(x, sigma, cond, options["pooled_output"], torch.tensor([2.0]))
    assert torch.allclose(model.denoiser()(x, sigma, **inputs), expected, atol=1e-5)


@torch.no_grad()
def test_clip_text_encode_flux_reads_each_prompt_with_its_encoder(random_models):
    _, clip, _ = tiny(random_models, "flux-schnell")
    [[cond, options]] = CLIPTextEncodeFlux(clip, "red boat", "blue sky", 5.0)
    assert options["guidance"] == 5.0
    assert torch.equal(cond, CLIPTextEncode("blue sky", clip)[0][0])
    assert torch.equal(options["pooled_output"], CLIPTextEncode("red boat", clip)[0][1]["pooled_output"])


@torch.no_grad()
def test_clip_text_encode_sd3_leaves_out_empty_prompts_without_padding(random_models):
    _, clip, _ = tiny(random_models, "sd3")
    [[same, same_options]] = CLIPTextEncodeSD3(clip, "a cat", "a cat", "a cat", "none")
    assert torch.equal(same, CLIPTextEncode("a cat", clip)[0][0])
    [[t5_only, options]] = CLIPTextEncodeSD3(clip, "", "", "a cat", "none")
    assert torch.equal(options["pooled_output"], torch.zeros(1, 2048))
    assert torch.equal(t5_only, same[:, 77:])  # T5's tokens alone
    [[padded, padded_options]] = CLIPTextEncodeSD3(clip, "", "", "a cat", "empty_prompt")
    assert padded.shape == same.shape and torch.equal(padded_options["pooled_output"],
                                                      CLIPTextEncode("", clip)[0][1]["pooled_output"])


def test_reference_placement_follows_comfyui():
    first, second = torch.zeros(1, 16, 8, 8), torch.zeros(1, 16, 8, 12)
    _, ids = reference_tokens([first, second], "offset", (16, 16))
    # Both at index 1; the second below the first (8 latent rows = 4 patches), being wider than tall.
    assert ids[0, :16].tolist() == [[1, r, c] for r in range(4) for c in range(4)]
    assert ids[0, 16:].tolist() == [[1, r, c] for r in range(4, 8) for c in range(6)]
    _, ids = reference_tokens([first, second], "index", (16, 16))
    assert ids[0, 0].tolist() == [1, 0, 0] and ids[0, 16].tolist() == [2, 0, 0]
    tokens, ids = reference_tokens([first], "uxo", (16, 16))
    assert tokens.shape == (1, 16, 64) and ids[0, 0].tolist() == [0, 8, 8]  # past the 8x8-patch image


@torch.no_grad()
def test_reference_latents_join_flux_as_extra_image_tokens(random_models):
    model, clip, _ = tiny(random_models, "flux-dev")
    conditioning = CLIPTextEncode("edit", clip)
    reference = {"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(2))}
    with_reference = FluxKontextMultiReferenceLatentMethod(ReferenceLatent(conditioning, reference), "uxo/uno")
    x = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(3))
    inputs = network_inputs(model, with_reference, x.shape)
    expected_tokens, expected_ids = reference_tokens([(reference["samples"] - 0.1159) * 0.3611], "uxo", (8, 8))
    assert torch.allclose(inputs["ref_tokens"], expected_tokens) and torch.equal(inputs["ref_ids"], expected_ids)
    denoiser = model.denoiser()
    plain = denoiser(x, torch.tensor([0.5]), **network_inputs(model, conditioning, x.shape))
    edited = denoiser(x, torch.tensor([0.5]), **inputs)
    assert edited.shape == x.shape and not torch.allclose(plain, edited)


@torch.no_grad()
def test_skip_layer_guidance_moves_away_from_the_skipped_prediction(random_models):
    model, clip, _ = tiny(random_models, "sd35m")
    guided = SkipLayerGuidanceSD3(model, "1", 2.0, 0.0, 0.5)
    [hook] = guided.post_cfg
    x = torch.randn(1, 16, 6, 6, generator=torch.Generator().manual_seed(4))
    [condition] = resolve_conditioning(CLIPTextEncode("a cat", clip), x.shape, model.encode_condition)
    mmdit, denoiser = model.network.managed.module, model.denoiser()
    for sigma, active in ((0.8, True), (0.2, False)):  # percent 0.5 is sigma shift(0.5) = 0.75 with shift 3
        sigma_t = torch.tensor([sigma])
        cond = denoiser(x, sigma_t, **condition.inputs)
        step = GuidanceStep(x, sigma_t, cond, torch.zeros_like(x), 1.0, cond, (condition,))
        skipped = x - sigma * mmdit(x, sigma_t * 1000, condition.inputs["c_crossattn"], condition.inputs["y"],
                                    skip_blocks=(1,))
        expected = cond + 2.0 * (cond - skipped) if active else cond
        assert torch.allclose(hook(step), expected, atol=1e-5)


def test_model_sampling_aura_flow_reads_t_in_unit_time(random_models):
    model, _, _ = tiny(random_models, "sd3")
    levels = ModelSamplingAuraFlow(model, 1.73).model_sampling
    assert float(levels.sigma(torch.tensor(0.5))) == pytest.approx(1.73 * 0.5 / (1 + 0.73 * 0.5))
    assert float(levels.timestep(torch.tensor(0.3))) == pytest.approx(0.3)


def test_flux_kontext_image_scale_picks_the_nearest_aspect():
    image = torch.rand(1, 50, 100, 3)
    assert FluxKontextImageScale(image).shape == (1, 720, 1456, 3)  # 2.02, the nearest to 2


def test_split_text_encoder_loaders(random_models, context):
    files = random_models.flow_split("sd3")
    context.config = replace(context.config, models_dir=random_models.root)
    names = {part: files[part].name for part in ("clip_l", "clip_g", "t5xxl")}
    triple = TripleCLIPLoader(names["t5xxl"], names["clip_l"], names["clip_g"], ctx=context)
    assert [part.slot.name for part in triple.parts] == ["clip_l", "clip_g", "t5xxl"] and triple.family == "SD3"
    dual = DualCLIPLoader(names["clip_g"], names["clip_l"], "sd3", "cpu", ctx=context)
    assert [part.slot.name for part in dual.parts] == ["clip_l", "clip_g"]
    t5 = CLIPLoader(names["t5xxl"], "sd3", "default", ctx=context)
    cond, pooled = t5.encode_tokens(t5.tokenize("a cat"))
    assert cond.shape == (1, 77, 4096) and torch.equal(pooled, torch.zeros(1, 2048))
    flux = DualCLIPLoader(names["t5xxl"], names["clip_l"], "flux", "default", ctx=context)
    assert flux.family == "Flux.1-dev" and flux.encode_tokens(flux.tokenize("a"))[0].shape == (1, 256, 4096)


# ----------------------------------------------------------------------------------------------
# ComfyUI's official templates on tiny files saved under the names they expect

TEMPLATE_FILES = {
    "sd3.5_simple_example.json": {"checkpoints/sd3.5_large_fp8_scaled.safetensors": ("sd35m", "checkpoint")},
    "flux_schnell.json": {"checkpoints/flux1-schnell-fp8.safetensors": ("flux-schnell", "checkpoint")},
    "flux_schnell_full_text_to_image.json": {
        "diffusion_models/flux1-schnell.safetensors": ("flux-schnell", "network"),
        "vae/ae.safetensors": ("flux-schnell", "vae"), "text_encoders/clip_l.safetensors": ("flux-schnell", "clip_l"),
        "text_encoders/t5xxl_fp16.safetensors": ("flux-schnell", "t5xxl")},
}


@pytest.mark.parametrize("template", list(TEMPLATE_FILES))
def test_comfyui_templates_run_on_tiny_files(random_models, config, template):
    templates = pytest.importorskip("comfyui_workflow_templates_json")
    models = config.models_dir
    for name, (family, part) in TEMPLATE_FILES[template].items():
        if part == "checkpoint":
            source = random_models.root / "checkpoints" / random_models.flow_checkpoint(family)
        else:
            source = random_models.flow_split(family)[part]
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).symlink_to(source)
        tokenizer = models / Path(name).parent / "t5_tokenizer"
        if not tokenizer.exists():
            tokenizer.symlink_to(source.parent / "t5_tokenizer")
    session = Session(config)
    workflow = session.load(Path(templates.__file__).parent / "templates" / template)
    for node in workflow.values():
        inputs = node["inputs"]
        if node["class_type"] == "EmptySD3LatentImage":
            inputs.update(width=64, height=48)
        if node["class_type"] == "KSampler":
            inputs["steps"] = 2
    result = session.run(workflow)
    assert result.ok, result.error and result.error["exception_message"]
    assert list((config.output_dir).glob("*.png"))
