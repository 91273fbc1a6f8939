"""SD3.x and Flux.1 end to end: detection, single-file and split loading, conditioning, and whole workflows.

Tiny random files in the original layouts come from tools/make_random_checkpoint.py (conftest's
`random_models`). Conditioning is checked against ComfyUI's formulas computed with transformers'
CLIP and T5 models holding the same weights; the closed forms of the latent formats and Flux's
shift are checked by value.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModelWithProjection as ReferenceCLIPWithProjection
from transformers import T5EncoderModel as ReferenceT5

from conftest import ROOT, TINY_FLOW
from sigmagraph.engine import Session
from sigmagraph.nodes.models.checkpoint import CheckpointError, open_checkpoint
from sigmagraph.nodes.models.clip import VIT_BIGG14, VIT_L14
from sigmagraph.nodes.models.detection import UnknownModel, detect, text_encoder_family
from sigmagraph.nodes.models.families import FLUX_LATENT, SD3_LATENT
from sigmagraph.nodes.models.loading import load_checkpoint, load_text_encoders, load_unet
from sigmagraph.nodes.models.t5 import T5_XXL
from sigmagraph.nodes.models.t5_text import TokenizerMissing
from sigmagraph.nodes.models.tokenizer import CLIPTokenizer
from sigmagraph.nodes.packs.model_sampling import ModelSamplingFlux
from test_clip import reference_config as clip_reference_config
from test_t5 import reference_config as t5_reference_config

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
FAMILY_NAMES = {"sd3": "SD3", "sd35m": "SD3", "flux-dev": "Flux.1-dev", "flux-schnell": "Flux.1-schnell"}


@pytest.mark.parametrize("family", list(TINY_FLOW))
def test_detection_reads_the_family_and_every_size(random_models, family):
    expected = random_models.tool.flow_network_config(family, **TINY_FLOW[family])
    name = random_models.flow_checkpoint(family)
    with open_checkpoint(random_models.root / "checkpoints" / name) as checkpoint:
        found, config, prefix = detect(checkpoint)
    assert (found.name, config, prefix) == (FAMILY_NAMES[family], expected, "model.diffusion_model.")
    with open_checkpoint(random_models.flow_split(family)["network"]) as checkpoint:  # BFL's bare keys
        assert detect(checkpoint)[1:] == (expected, "")


def test_detected_sd35_medium_has_its_variant_layers(random_models):
    with open_checkpoint(random_models.root / "checkpoints" / random_models.flow_checkpoint("sd35m")) as checkpoint:
        config = detect(checkpoint)[1]
    assert config.qk_norm == "rms" and config.x_block_self_attn_layers == (0, 1) and config.num_heads == 2


def test_a_missing_or_misshaped_tensor_is_named(random_models, tmp_path):
    state = load_file(random_models.flow_split("flux-dev")["network"])
    missing = dict(state)
    del missing["single_blocks.1.linear2.weight"]
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing.safetensors \(Flux\): 1 weight\(s\) missing, e.g. "
                                              r"single_blocks\.1\.linear2\.weight"):
        load_unet(tmp_path / "missing.safetensors", "missing.safetensors", CPU)
    state["txt_in.bias"] = torch.zeros(3)
    save_file(state, str(tmp_path / "misshaped.safetensors"))
    with pytest.raises(CheckpointError, match=r"txt_in\.bias has shape \(3,\)"):
        load_unet(tmp_path / "misshaped.safetensors", "misshaped.safetensors", CPU)


def test_latent_formats_shift_then_scale():
    latent = torch.linspace(-2, 2, 16 * 4).reshape(1, 16, 2, 2)
    assert torch.allclose(SD3_LATENT.process_in(latent), (latent - 0.0609) * 1.5305)
    assert torch.allclose(FLUX_LATENT.process_in(latent), (latent - 0.1159) * 0.3611)
    assert torch.allclose(FLUX_LATENT.process_out(FLUX_LATENT.process_in(latent)), latent, atol=1e-6)


@pytest.mark.parametrize("width, height, mu", [(1024, 1024, 1.15), (256, 256, 0.5),
                                               (512, 512, 0.5 + 0.65 * (1024 - 256) / (4096 - 256))])
def test_model_sampling_flux_shift_follows_the_token_count(random_models, width, height, mu):
    model = load_unet(random_models.flow_split("flux-dev")["network"], "flux", CPU)
    levels = ModelSamplingFlux(model, 1.15, 0.5, width, height).model_sampling
    # BFL's time_shift(mu, 1, t) = e^mu / (e^mu + 1/t - 1).
    assert float(levels.sigma(torch.tensor(0.5))) == pytest.approx(math.exp(mu) / (math.exp(mu) + 1), rel=1e-5)
    assert float(levels.timestep(torch.tensor(0.25))) == pytest.approx(0.25)


# ----------------------------------------------------------------------------------------------
# Conditioning against transformers' encoders with the file's weights, assembled as ComfyUI does


def reference_text_encoders(path: Path, prefix: str = "text_encoders.") -> dict[str, torch.nn.Module]:
    """transformers' CLIP / T5 models holding the text-encoder weights of a single file, by slot name."""
    state = {key: value.float() for key, value in load_file(path).items() if key.startswith(prefix)}
    models = {}
    for slot in ("clip_l", "clip_g", "t5xxl"):
        weights = {key.split(".transformer.", 1)[1]: value for key, value in state.items()
                   if key.startswith(f"{prefix}{slot}.transformer.")}
        if not weights:
            continue
        layers = len({found[1] for key in weights if (found := re.search(r"encoder\.(?:block|layers)\.(\d+)\.", key))})
        if slot == "t5xxl":
            vocab, width = weights["shared.weight"].shape
            heads = weights["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].shape[1]
            config = replace(T5_XXL, vocab_size=vocab, d_model=width, num_layers=layers, num_heads=heads,
                             d_kv=weights["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0] // heads,
                             d_ff=weights["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0])
            model = ReferenceT5(t5_reference_config(config))
            weights["encoder.embed_tokens.weight"] = weights["shared.weight"]
        else:
            config = replace(VIT_L14 if slot == "clip_l" else VIT_BIGG14, layers=layers,
                             projection_dim=weights["text_projection.weight"].shape[0])
            model = ReferenceCLIPWithProjection(clip_reference_config(config))
        model.load_state_dict(weights, strict=True)
        models[slot] = model.eval()
    return models


def clip_window(text: str, pad_token: int) -> torch.Tensor:
    return torch.tensor(CLIPTokenizer(pad_token).tokenize_with_weights(text).ids)


def encoded(random_models, family: str, text: str):
    """(cond, pooled) of a prompt through a tiny file's CLIP, transformers' twins of its encoders, and T5's ids."""
    path = random_models.root / "checkpoints" / random_models.flow_checkpoint(family)
    _, clip, _ = load_checkpoint(path, path.name, CPU)
    cond, pooled = clip.encode_tokens(clip.tokenize(text))
    return cond, pooled, reference_text_encoders(path), clip.part("t5xxl").tokenizer.tokenize_with_weights(text).ids


@torch.no_grad()
def test_sd3_conditioning_is_comfyuis_join_of_the_three_encoders(random_models):
    cond, pooled, reference, t5_ids = encoded(random_models, "sd3", "a cat on a mat")
    l_out = reference["clip_l"](clip_window("a cat on a mat", 49407), output_hidden_states=True)
    g_out = reference["clip_g"](clip_window("a cat on a mat", 0), output_hidden_states=True)
    assert len(t5_ids[0]) == 77 and t5_ids[0][:6] != (0,) * 6
    t5 = reference["t5xxl"](torch.tensor(t5_ids)).last_hidden_state
    # sd3_clip.SD3ClipModel: [L_-2 | G_-2] (raw penultimate layers) padded to 4096, then T5's tokens;
    # pooled = [L's pooled state unprojected | G's projected].
    lg = F.pad(torch.cat([l_out.hidden_states[-2], g_out.hidden_states[-2]], dim=-1), (0, 4096 - 768 - 1280))
    expected = torch.cat([lg, t5], dim=1)
    expected_pooled = torch.cat([reference["clip_l"].text_model(clip_window("a cat on a mat", 49407)).pooler_output,
                                 g_out.text_embeds], dim=-1)
    assert cond.shape == (1, 77 + 77, 4096) and pooled.shape == (1, 2048)
    assert torch.allclose(cond, expected, atol=1e-4) and torch.allclose(pooled, expected_pooled, atol=1e-4)


@torch.no_grad()
def test_flux_conditioning_is_t5_tokens_with_clip_l_pooled(random_models):
    cond, pooled, reference, t5_ids = encoded(random_models, "flux-dev", "red boat")
    assert len(t5_ids[0]) == 256
    assert torch.allclose(cond, reference["t5xxl"](torch.tensor(t5_ids)).last_hidden_state, atol=1e-4)
    expected_pooled = reference["clip_l"].text_model(clip_window("red boat", 49407)).pooler_output
    assert torch.allclose(pooled, expected_pooled, atol=1e-4)


def test_sd3_checkpoint_without_t5_and_the_families_of_text_encoder_sets(random_models, tmp_path):
    path = random_models.root / "checkpoints" / random_models.flow_checkpoint("sd3")
    state = {key: value for key, value in load_file(path).items() if not key.startswith("text_encoders.t5xxl.")}
    save_file(state, str(tmp_path / "no-t5.safetensors"))
    _, clip, _ = load_checkpoint(tmp_path / "no-t5.safetensors", "no-t5.safetensors", CPU)
    cond, pooled = clip.encode_tokens(clip.tokenize("a cat"))
    assert [part.slot.name for part in clip.parts] == ["clip_l", "clip_g"] and cond.shape == (1, 77, 4096)
    assert text_encoder_family(["t5xxl", 768])[0].name == "SD3"  # Flux's pair only for type "flux"
    with pytest.raises(UnknownModel, match="no model family has text encoders t5xxl \\+ t5xxl"):
        text_encoder_family(["t5xxl", "t5xxl"])


def test_a_t5_without_its_tokenizer_names_where_to_put_it(random_models, tmp_path):
    t5 = random_models.flow_split("flux-dev")["t5xxl"]
    (tmp_path / "t5.safetensors").symlink_to(t5)
    with pytest.raises(TokenizerMissing, match=str(tmp_path / "t5_tokenizer" / "tokenizer.json")):
        load_text_encoders([(tmp_path / "t5.safetensors", "t5.safetensors")], CPU)


# ----------------------------------------------------------------------------------------------
# Whole workflows


def run(config, workflow: dict) -> dict:
    result = Session(config).run(json.loads(json.dumps(workflow)))
    assert result.ok, result.error and result.error["exception_message"]
    return result.ui_outputs


@pytest.mark.parametrize("family", list(TINY_FLOW))
def test_sd3_workflow_runs_each_family_from_one_file(random_models, config, family):
    """workflows/sd3.json (CheckpointLoaderSimple → KSampler with SD3's negative trick → VAEDecode) on a tiny file."""
    config = replace(config, models_dir=random_models.root)
    workflow = json.loads((ROOT / "workflows" / "sd3.json").read_text())
    workflow["4"]["inputs"]["ckpt_name"] = random_models.flow_checkpoint(family)
    workflow["53"]["inputs"].update(width=64, height=48)
    workflow["3"]["inputs"].update(steps=2)
    workflow["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    assert len(run(config, workflow)["9"]["images"]) == 1


def test_flux_workflow_runs_from_split_files(random_models, config):
    """workflows/flux.json: UNETLoader, DualCLIPLoader (type flux), VAELoader, FluxGuidance, SamplerCustomAdvanced."""
    files = random_models.flow_split("flux-dev")
    config = replace(config, models_dir=random_models.root)
    workflow = json.loads((ROOT / "workflows" / "flux.json").read_text())
    workflow["12"]["inputs"]["unet_name"] = files["network"].name
    workflow["11"]["inputs"].update(clip_name1=files["t5xxl"].name, clip_name2=files["clip_l"].name)
    workflow["10"]["inputs"]["vae_name"] = files["vae"].name
    workflow["27"]["inputs"].update(width=48, height=64)
    workflow["17"]["inputs"]["steps"] = 2
    workflow["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    assert len(run(config, workflow)["9"]["images"]) == 1
