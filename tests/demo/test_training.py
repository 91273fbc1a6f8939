"""tools/train_demo.py: the latent normalisation is exact, and a run is reproducible, resumed or not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS
from sigmagraph.nodes.models.families import DEMO_FLOW_VAE, DEMO_VAE
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.vae import AutoencoderKL

from .metadata import read_config

ROOT = Path(__file__).resolve().parents[2]


def load_trainer():
    spec = importlib.util.spec_from_file_location("train_demo", ROOT / "tools" / "train_demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


@torch.no_grad()
@pytest.mark.parametrize("config", [DEMO_VAE, DEMO_FLOW_VAE], ids=["sd", "flow"])
def test_normalising_the_latents_changes_nothing_the_decoder_sees(config):
    trainer = load_trainer()
    vae = init_random_(empty_module(AutoencoderKL, config), seed=0).eval()
    channels = config.embed_dim
    pixels = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    before = vae.decode(vae.encode(pixels))
    mean, logvar = trainer.encode_all(vae, pixels)
    new_mean, new_logvar = trainer.normalise_latents(vae, mean, logvar)
    again_mean, again_logvar = trainer.encode_all(vae, pixels)
    assert torch.allclose(again_mean, new_mean, atol=1e-4) and torch.allclose(again_logvar, new_logvar, atol=1e-4)
    assert torch.allclose(new_mean.mean(dim=(0, 2, 3)), torch.zeros(channels), atol=1e-4)
    assert torch.allclose(new_mean.std(dim=(0, 2, 3)), torch.ones(channels), atol=1e-4)
    assert torch.allclose(vae.decode(vae.encode(pixels)), before, atol=1e-4)


def train(trainer, family: str, arguments: list[str], folder: Path, name: str,
          extra: list[str]) -> dict[str, torch.Tensor]:
    out = folder / f"{name}.safetensors"
    trainer.main(["--family", family] + arguments + ["--out", str(out), "--work-dir", str(folder / name)] + extra)
    assert read_config(DEMO_MODELS[family], out)["training"]["network_steps"] == 2
    return tensors(out)


@pytest.mark.parametrize("family", ["sd", "flow"])
def test_a_tiny_run_is_reproducible_and_resuming_gives_the_same_file(family, tmp_path):
    trainer = load_trainer()
    tiny = ["--images", "48", "--vae-steps", "2", "--vae-object-steps", "2", "--vae-batch", "4",
            "--network-steps", "2", "--network-batch", "8", "--threads", "1"]
    stage_1 = "vae-stage1.safetensors" if family == "sd" else f"vae-stage1-{family}.safetensors"
    resume = ["--vae-from", str(tmp_path / "a" / stage_1)]
    threads = torch.get_num_threads()
    with torch.random.fork_rng():  # main() seeds torch and sets its thread count: keep both for later tests
        try:
            runs = [train(trainer, family, tiny, tmp_path, name, extra) for name, extra in (("a", []), ("b", []),
                                                                                     ("resumed", resume))]
        finally:
            torch.set_num_threads(threads)
    for run in runs[1:]:
        assert run.keys() == runs[0].keys()
        assert all(torch.equal(run[key], runs[0][key]) for key in run), "the same seed must give the same weights"
