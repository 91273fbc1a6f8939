"""The packaged demo checkpoint: its layout, its self-description, its detection and where it is listed."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sigmagraph.engine import Config
from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT, SCHEDULE, demo_config, save_demo
from sigmagraph.nodes.models.checkpoint import open_checkpoint
from sigmagraph.nodes.models.clip import CLIPTextModel
from sigmagraph.nodes.models.detection import UnknownModel, detect
from sigmagraph.nodes.models.families import DEMO, DEMO_LATENT
from sigmagraph.nodes.models.loading import load_checkpoint
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.unet import UNetModel
from sigmagraph.nodes.models.vae import AutoencoderKL
from sigmagraph.nodes.packs.files import model_file, model_files
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling

from .metadata import read_config

PREFIXES = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model.")


def random_demo_modules(seed: int = 0):
    slot = DEMO.text_encoders[0]
    return (init_random_(empty_module(UNetModel, DEMO.network), seed),
            init_random_(empty_module(AutoencoderKL, DEMO.vae), seed),
            init_random_(empty_module(CLIPTextModel, slot.config), seed))


def test_the_checkpoint_ships_small_in_fp16_and_the_original_layout():
    assert DEMO_CHECKPOINT.is_file(), "run tools/train_demo.py to create the demo checkpoint"
    assert DEMO_CHECKPOINT.stat().st_size < 16e6
    with safe_open(str(DEMO_CHECKPOINT), framework="pt") as handle:
        keys = list(handle.keys())
        assert all(handle.get_slice(key).get_dtype() == "F16" for key in keys)
    assert all(key.startswith(PREFIXES) for key in keys)
    for prefix in PREFIXES:
        assert any(key.startswith(prefix) for key in keys), prefix
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in keys


def test_the_metadata_records_what_the_family_declares():
    config = read_config()
    reference = demo_config(config["latent"]["rgb_factors"], config["latent"]["rgb_bias"], config["training"])
    assert config == json.loads(json.dumps(reference))  # as JSON stores it: tuples become lists
    assert config["unet"]["norm_groups"] == DEMO.network.norm_groups == 8 and config["prediction"] == "v_prediction"
    # The preview map the family declares is the one training fitted and stored.
    assert torch.allclose(torch.tensor(config["latent"]["rgb_factors"]), torch.tensor(DEMO_LATENT.rgb_factors))
    assert torch.allclose(torch.tensor(config["latent"]["rgb_bias"]), torch.tensor(DEMO_LATENT.rgb_bias))
    # The schedule recorded is SD's: the same sigma table as SD 1.x's discrete sampling.
    table = discrete_model_sampling("v_prediction", SCHEDULE["beta_schedule"], SCHEDULE["linear_start"],
                                    SCHEDULE["linear_end"], SCHEDULE["timesteps"]).sigmas
    assert torch.equal(table, discrete_model_sampling("eps").sigmas)
    assert config["training"]["wall_seconds"] < 75 * 60


def test_detection_reads_the_declared_sizes_from_the_file():
    with open_checkpoint(DEMO_CHECKPOINT) as checkpoint:
        family, unet_config, prefix = detect(checkpoint)
    assert family is DEMO and unet_config == DEMO.network and prefix == "model.diffusion_model."


def test_the_family_mark_decides_and_its_absence_is_explained(tmp_path):
    unet, vae, text_encoder = random_demo_modules()
    marked = tmp_path / "marked.safetensors"
    save_demo(marked, unet, vae, text_encoder, demo_config(((0.0,) * 3,) * 4, (0.0,) * 3, {}))
    with open_checkpoint(marked) as checkpoint:
        assert detect(checkpoint)[0] is DEMO
    unmarked = tmp_path / "unmarked.safetensors"
    with safe_open(str(marked), framework="pt") as handle:
        save_file({key: handle.get_tensor(key) for key in handle.keys()}, str(unmarked))
    with open_checkpoint(unmarked) as checkpoint, pytest.raises(UnknownModel, match="unmarked.safetensors.*context_dim 64"):
        detect(checkpoint)


def test_the_packaged_checkpoint_is_always_listed_and_a_users_file_shadows_it(tmp_path):
    config = Config(models_dir=tmp_path / "models")
    assert model_files("checkpoints")(config) == [DEMO_CHECKPOINT.name]
    assert model_file(config, "checkpoints", DEMO_CHECKPOINT.name) == DEMO_CHECKPOINT
    own = tmp_path / "models" / "checkpoints" / DEMO_CHECKPOINT.name
    own.parent.mkdir(parents=True)
    own.write_bytes(DEMO_CHECKPOINT.read_bytes())
    assert model_files("checkpoints")(config) == [DEMO_CHECKPOINT.name]
    assert model_file(config, "checkpoints", DEMO_CHECKPOINT.name) == own
    assert DEMO_CHECKPOINT.name not in model_files("vae")(config)


def test_the_loader_builds_the_declared_model():
    model, clip, vae = load_checkpoint(DEMO_CHECKPOINT, DEMO_CHECKPOINT.name, torch.device("cpu"))
    assert model.model_sampling.prediction == "v_prediction"
    assert model.latent_format.scale_factor == 1.0
    assert model.family == clip.family == "demo"
