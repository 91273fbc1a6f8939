"""Separate files for the diffusion model, the text encoders and the VAE: UNETLoader, CLIPLoader, DualCLIPLoader, VAELoader."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from conftest import load_tool
from sigmagraph.engine import Session
from sigmagraph.nodes.models.checkpoint import CheckpointError
from sigmagraph.nodes.models.clip import VIT_BIGG14, VIT_L14, CLIPTextModel
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.unet import SD1_UNET, UNetModel
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL
from sigmagraph.nodes.packs.loaders import DualCLIPLoader, VAELoader

# CLIP files keep their real widths (the family is read from them) but only two blocks.
CLIP_L = replace(VIT_L14, layers=2)
CLIP_G = replace(VIT_BIGG14, layers=2)


def write(module_type, config, path, seed: int = 0, convert=lambda state: state) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = init_random_(empty_module(module_type, config, dtype=torch.float16), seed).state_dict()
    save_file(convert(state), str(path))


def test_a_workflow_from_separate_unet_clip_and_vae_files(config, one_thread):
    models = config.models_dir
    write(UNetModel, replace(SD1_UNET, model_channels=32), models / "unet" / "tiny-sd1.safetensors")
    write(CLIPTextModel, CLIP_L, models / "clip" / "clip_l.safetensors", seed=1)
    write(AutoencoderKL, replace(SD_VAE, ch=32), models / "vae" / "tiny.safetensors", seed=2)
    workflow = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny-sd1.safetensors", "weight_dtype": "bf16"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l.safetensors", "type": "stable_diffusion"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": "tiny.safetensors"}},
        "4": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["2", 0], "stop_at_clip_layer": -2}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 0], "text": "a (small:1.2) boat"}},
        "6": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["5", 0]}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 2}},
        "8": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 3, "steps": 2, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": ["5", 0],
                                                   "negative": ["6", 0], "latent_image": ["7", 0], "denoise": 1.0}},
        "9": {"class_type": "VAEDecodeTiled", "inputs": {"samples": ["8", 0], "vae": ["3", 0], "tile_size": 64,
                                                         "overlap": 32}},
        "10": {"class_type": "VAEEncode", "inputs": {"pixels": ["9", 0], "vae": ["3", 0]}},
        "11": {"class_type": "SaveLatent", "inputs": {"samples": ["10", 0], "filename_prefix": "tiny"}},
        "12": {"class_type": "PreviewImage", "inputs": {"images": ["9", 0]}},
    }
    result = Session(config).run(workflow)
    assert result.ok, result.error and result.error["exception_message"]
    assert len(result.ui_outputs["12"]["images"]) == 2 and (config.output_dir / "tiny_00001_.latent").is_file()


def test_dual_clip_loader_takes_sdxl_encoders_in_either_order(config, context):
    clip_dir = config.models_dir / "clip"
    write(CLIPTextModel, CLIP_L, clip_dir / "clip_l.safetensors", seed=1)
    # bigG as OpenCLIP stores it, as SDXL's own text_encoder_2 file in the original layout would be.
    write(CLIPTextModel, CLIP_G, clip_dir / "clip_g.safetensors", seed=2, convert=load_tool().openclip_layout)
    clip = DualCLIPLoader(clip_name1="clip_g.safetensors", clip_name2="clip_l.safetensors", type="sdxl", ctx=context)
    assert [part.slot.name for part in clip.parts] == ["clip_l", "clip_g"]
    (cond, options), = clip.encode("a harbour")
    assert cond.shape == (1, 77, 768 + 1280) and options["pooled_output"].shape == (1, 1280)
    with pytest.raises(CheckpointError, match="no model family has text encoders 768 \\+ 768"):
        DualCLIPLoader(clip_name1="clip_l.safetensors", clip_name2="clip_l.safetensors", type="sdxl", ctx=context)


def test_attention_weights_stored_as_linear_load_into_1x1_convolutions(config, context):
    # Conversions from diffusers store the VAE's attention 1x1 convolutions as [C, C] Linear weights.
    state = init_random_(empty_module(AutoencoderKL, replace(SD_VAE, ch=32)), 0).state_dict()
    squeezed = {key: value[..., 0, 0] if ".attn_1." in key and value.ndim == 4 else value for key, value in state.items()}
    path = config.models_dir / "vae" / "linear-attention.safetensors"
    path.parent.mkdir(parents=True)
    save_file(squeezed, str(path))
    vae = VAELoader(vae_name="linear-attention.safetensors", ctx=context)
    loaded = vae.handle.managed.module.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())
