"""Files that cannot be loaded: each is a clear error naming the file, through the workflow, never a crash."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from conftest import default_workflow
from sigmagraph.engine import Session
from sigmagraph.nodes.models.checkpoint import CheckpointError, PickleCheckpoint, open_checkpoint
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.unet import SD1_UNET, UNetModel
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL


class Payload:
    """A pickled object that is not a tensor: loading it must not run or construct it."""

    def __reduce__(self):
        return os.system, ("echo this must never run",)


def unknown_family_unet() -> dict[str, torch.Tensor]:
    """A small UNet with a 4096-wide context: no known family has that signature."""
    config = replace(SD1_UNET, model_channels=32, channel_mult=(1, 2), transformer_depth=(1, 0), context_dim=4096)
    return {f"model.diffusion_model.{key}": value.half()
            for key, value in init_random_(empty_module(UNetModel, config), 0).state_dict().items()}


def write_bad_files(checkpoints) -> None:
    save_file(unknown_family_unet(), str(checkpoints / "unknown.safetensors"))
    data = (checkpoints / "unknown.safetensors").read_bytes()
    (checkpoints / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "callback": Payload()}, checkpoints / "pickled.ckpt")
    zipped = (checkpoints / "pickled.ckpt").read_bytes()
    (checkpoints / "corrupt.ckpt").write_bytes(zipped[: len(zipped) // 2])
    vae = init_random_(empty_module(AutoencoderKL, replace(SD_VAE, ch=32)), 0).state_dict()
    save_file({f"first_stage_model.{key}": value for key, value in vae.items()}, str(checkpoints / "vae-only.safetensors"))


@pytest.mark.parametrize("name, message", [
    ("truncated.safetensors", "truncated.safetensors: not a valid safetensors file (truncated or corrupt"),
    ("pickled.ckpt", "pickled.ckpt: refusing to load it: the file holds Python objects other than tensors"),
    ("corrupt.ckpt", "corrupt.ckpt: not a readable checkpoint (truncated or corrupt"),
    ("unknown.safetensors", "unknown.safetensors: not a model family Sigmagraph knows"),
    ("vae-only.safetensors", "vae-only.safetensors: no diffusion model found"),
])
def test_bad_checkpoint_fails_its_node_with_the_file_named(config, name, message, capfd):
    write_bad_files(config.models_dir / "checkpoints")
    session = Session(config)
    events = []
    result = session.run(default_workflow(session, name), on_event=lambda event, data: events.append((event, data)))
    assert result.status == "error" and result.error["node_id"] == "4"
    assert result.error["exception_message"].startswith(message), result.error["exception_message"]
    assert [event for event, _ in events if event == "execution_error"] == ["execution_error"]
    assert "this must never run" not in capfd.readouterr().out
    if name == "unknown.safetensors":
        assert "context_dim 4096" in result.error["exception_message"]
        assert "SD1.x: in_channels 4, context_dim 768, convolutional" in result.error["exception_message"]


def test_plain_tensor_pickles_load(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"a": torch.arange(4.0), "step": 3}, "epoch": 1}, path)
    with open_checkpoint(path) as checkpoint:
        assert isinstance(checkpoint, PickleCheckpoint)
        assert checkpoint.keys() == ["a"] and checkpoint.shape("a") == (4,)
        assert torch.equal(checkpoint.read("a"), torch.arange(4.0))


def test_unknown_extension_and_missing_file(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(CheckpointError, match="model.gguf: unknown model file type '.gguf'"):
        open_checkpoint(tmp_path / "model.gguf")
    with pytest.raises(CheckpointError, match="absent.safetensors: no such file"):
        open_checkpoint(tmp_path / "absent.safetensors")
