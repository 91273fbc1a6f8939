"""The packaged demo checkpoints: their layout, their self-description, their detection and where they are listed."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sigmagraph.engine import Config
from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS, SCHEDULE, DemoModel, demo_config, save_demo
from sigmagraph.nodes.models.checkpoint import open_checkpoint
from sigmagraph.nodes.models.clip import CLIPTextModel
from sigmagraph.nodes.models.detection import UnknownModel, architecture_of, detect
from sigmagraph.nodes.models.families import DEMO, DEMO_FLOW
from sigmagraph.nodes.models.loading import load_checkpoint
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.vae import AutoencoderKL
from sigmagraph.nodes.packs.files import model_file, model_files
from sigmagraph.nodes.sampling.model_sampling import discrete_model_sampling

from .metadata import read_config

MODELS = pytest.mark.parametrize("model", list(DEMO_MODELS.values()), ids=list(DEMO_MODELS))
# Where each family's single file keeps the network, the autoencoder and the text encoder.
LAYOUTS = {
    "demo": ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model."),
    "demo-flow": ("model.diffusion_model.", "first_stage_model.", "text_encoders.clip_l.transformer.text_model."),
}


def random_demo_modules(model: DemoModel = DEMO_MODELS["sd"], seed: int = 0):
    """Seeded random weights of a demo model's network, autoencoder and text encoder."""
    family = model.family
    return (init_random_(empty_module(architecture_of(family.network).module, family.network), seed),
            init_random_(empty_module(AutoencoderKL, family.vae), seed),
            init_random_(empty_module(CLIPTextModel, family.text_encoders[0].config), seed))


def save_random_demo(model: DemoModel, path, seed: int = 0) -> None:
    """A demo checkpoint of random weights, marked as the model's family."""
    channels = model.family.latent_format.channels
    config = demo_config(model, ((0.0,) * 3,) * channels, (0.0,) * 3, {})
    save_demo(path, model, *random_demo_modules(model, seed), config)


@MODELS
def test_the_checkpoint_ships_small_in_fp16_and_the_original_layout(model):
    assert model.path.is_file(), f"run tools/train_demo.py --family {model.family.name} to create {model.path.name}"
    assert model.path.stat().st_size < 20e6
    with safe_open(str(model.path), framework="pt") as handle:
        keys = list(handle.keys())
        assert all(handle.get_slice(key).get_dtype() == "F16" for key in keys)
    prefixes = LAYOUTS[model.family.name]
    assert all(key.startswith(prefixes) for key in keys)
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in keys), prefix
    assert prefixes[2] + "embeddings.token_embedding.weight" in keys


@MODELS
def test_the_metadata_records_what_the_family_declares(model):
    config = read_config(model)
    config["text_encoder_settings"].setdefault("min_length", None)  # the SD demo's file predates this setting
    reference = demo_config(model, config["latent"]["rgb_factors"], config["latent"]["rgb_bias"], config["training"])
    assert config == json.loads(json.dumps(reference))  # as JSON stores it: tuples become lists
    # The preview map the family declares is the one training fitted and stored.
    latent = model.family.latent_format
    assert torch.allclose(torch.tensor(config["latent"]["rgb_factors"]), torch.tensor(latent.rgb_factors))
    assert torch.allclose(torch.tensor(config["latent"]["rgb_bias"]), torch.tensor(latent.rgb_bias))
    assert config["training"]["wall_seconds"] < 95 * 60


def test_the_sd_demo_is_sd1s_v_prediction_on_its_discrete_schedule():
    config = read_config(DEMO_MODELS["sd"])
    assert config["unet"]["norm_groups"] == DEMO.network.norm_groups == 8 and config["prediction"] == "v_prediction"
    # The schedule recorded is SD's: the same sigma table as SD 1.x's discrete sampling.
    table = discrete_model_sampling("v_prediction", SCHEDULE["beta_schedule"], SCHEDULE["linear_start"],
                                    SCHEDULE["linear_end"], SCHEDULE["timesteps"]).sigmas
    assert torch.equal(table, discrete_model_sampling("eps").sigmas)


def test_the_flow_demo_is_sd3s_geometry_at_toy_scale():
    config = read_config(DEMO_MODELS["flow"])
    assert config["prediction"] == "flow" and config["schedule"] == {"shift": 3.0, "multiplier": 1000.0,
                                                                    "table_size": 1000}  # SD3's levels
    assert config["mmdit"]["hidden_size"] == 64 * config["mmdit"]["num_heads"]  # Stability's 64-wide heads
    assert config["vae"]["embed_dim"] == config["latent"]["channels"] == 16
    assert 2 ** (len(config["vae"]["ch_mult"]) - 1) == 8  # EmptySD3LatentImage's latent size fits
    assert config["text_encoder_settings"]["min_length"] == 24


@MODELS
def test_detection_reads_the_declared_sizes_from_the_file(model):
    with open_checkpoint(model.path) as checkpoint:
        family, network_config, prefix = detect(checkpoint)
    assert family is model.family and network_config == model.family.network and prefix == "model.diffusion_model."


@MODELS
def test_the_family_mark_decides_and_its_absence_is_explained(model, tmp_path):
    marked = tmp_path / "marked.safetensors"
    save_random_demo(model, marked)
    with open_checkpoint(marked) as checkpoint:
        assert detect(checkpoint)[0] is model.family
    unmarked = tmp_path / "unmarked.safetensors"
    with safe_open(str(marked), framework="pt") as handle:
        save_file({key: handle.get_tensor(key) for key in handle.keys()}, str(unmarked))
    if model.family is DEMO:  # no other UNet family has a 64-wide context: the error names it
        with open_checkpoint(unmarked) as checkpoint, pytest.raises(UnknownModel,
                                                                    match="unmarked.safetensors.*context_dim 64"):
            detect(checkpoint)
    else:  # an unmarked toy MMDiT is read as what its layout says: SD3, with its sizes from the file
        with open_checkpoint(unmarked) as checkpoint:
            family, network_config, _ = detect(checkpoint)
        assert family.name == "SD3" and network_config.hidden_size == DEMO_FLOW.network.hidden_size


def test_the_packaged_checkpoints_are_always_listed_and_a_users_file_shadows_one(tmp_path):
    config = Config(models_dir=tmp_path / "models")
    names = sorted(model.path.name for model in DEMO_MODELS.values())
    assert model_files("checkpoints")(config) == names
    flow = DEMO_MODELS["flow"].path
    assert model_file(config, "checkpoints", flow.name) == flow
    own = tmp_path / "models" / "checkpoints" / flow.name
    own.parent.mkdir(parents=True)
    own.write_bytes(flow.read_bytes())
    assert model_files("checkpoints")(config) == names
    assert model_file(config, "checkpoints", flow.name) == own
    assert flow.name not in model_files("vae")(config)


@MODELS
def test_the_loader_builds_the_declared_model(model):
    network, clip, vae = load_checkpoint(model.path, model.path.name, torch.device("cpu"))
    assert network.model_sampling.prediction == model.family.prediction
    assert network.latent_format.scale_factor == 1.0
    assert network.family == clip.family == model.family.name
