"""Reading safetensors through windows of a memory map: every tensor as safetensors itself reads it."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sigmagraph.nodes.models import checkpoint as checkpoint_module
from sigmagraph.nodes.models.checkpoint import CheckpointError, load_weights, open_checkpoint
from sigmagraph.nodes.models.module_init import meta_module


def mixed_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "big": torch.randn(64, 300, generator=generator).half(),  # 38 KB: larger than the test's window
        "empty": torch.zeros(0, 5),
        "flags": torch.rand(17, generator=generator) > 0.5,
        "ids": torch.randint(0, 1000, (3, 7), generator=generator),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "small": torch.randn(5, 3, generator=generator).to(torch.bfloat16),
    }


@pytest.mark.parametrize("window", [4096, 64 << 20])
def test_views_reads_and_items_equal_safetensors_own(tmp_path, monkeypatch, window):
    monkeypatch.setattr(checkpoint_module, "WINDOW_BYTES", window)  # 4 KB: windows roll over the file
    path = tmp_path / "mixed.safetensors"
    save_file(mixed_tensors(), str(path))
    with safe_open(str(path), framework="pt") as handle:
        reference = {key: handle.get_tensor(key) for key in handle.keys()}
    with open_checkpoint(path) as checkpoint:
        assert sorted(checkpoint.keys()) == sorted(reference)
        items = dict(checkpoint.items())
        read = {key: checkpoint.read(key) for key in reference}
    for key, tensor in reference.items():
        for got in (items[key], read[key]):  # views held past close() stay valid
            assert got.dtype == tensor.dtype and got.shape == tensor.shape and torch.equal(got, tensor), key


def test_load_weights_casts_once_into_the_given_dtype_and_layout(tmp_path):
    conv = torch.nn.Conv2d(3, 4, 3)
    path = tmp_path / "conv.safetensors"
    save_file({name: value.detach().half() for name, value in conv.state_dict().items()}, str(path))
    module = meta_module(torch.nn.Conv2d, 3, 4, 3)
    with open_checkpoint(path) as checkpoint:
        load_weights(module, checkpoint.items(), torch.float32, "conv", torch.channels_last)
    assert module.weight.dtype == torch.float32 and module.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(module.weight, conv.weight.detach().half().float())
    assert torch.equal(module.bias, conv.bias.detach().half().float())


def test_a_file_truncated_while_open_is_an_error_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "WINDOW_BYTES", 4096)
    path = tmp_path / "mixed.safetensors"
    save_file(mixed_tensors(), str(path))
    with open_checkpoint(path) as checkpoint:
        with open(path, "r+b") as file:
            file.truncate(path.stat().st_size - 100)
        with pytest.raises(CheckpointError, match="mixed.safetensors: the file ends inside tensor"):
            for key in checkpoint.keys():
                checkpoint.read(key)


def _memory_mib(field: str) -> float:
    line = next(line for line in open("/proc/self/status") if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_DONTNEED"), reason="no madvise on this platform")
def test_a_tensor_larger_than_a_window_is_cast_without_its_whole_file_pages_resident(tmp_path, monkeypatch):
    # 64 MiB in the file, 128 MiB as float32: with its pages released part by part, the peak grows by the
    # copy and about one window, not by the copy and the whole tensor's pages.
    stored = torch.randn(1, 1 << 20, 32, generator=torch.Generator().manual_seed(0)).half()
    save_file({"big": stored}, str(tmp_path / "big.safetensors"))
    monkeypatch.setattr(checkpoint_module, "WINDOW_BYTES", 1 << 20)
    with open_checkpoint(tmp_path / "big.safetensors", "big.safetensors") as checkpoint:
        view = checkpoint.view("big")
        open("/proc/self/clear_refs", "w").write("5")  # restart the peak RSS count here
        before = _memory_mib("VmRSS")
        copy = checkpoint_module.cast_copy(view, torch.float32, torch.contiguous_format)
        growth = _memory_mib("VmHWM") - before
    assert torch.equal(copy, stored.float())
    assert growth < 128 + 24, growth  # the whole 64 MiB of file pages would make it ~192
