"""Upscale models (ESRGAN RRDBNet in its key layouts, Real-ESRGAN compact) against spandrel, ComfyUI's loader.

spandrel builds its own networks from the same random state dicts; ours must read every layout
and give its outputs. spandrel imports torchvision, which cannot be installed beside this CPU
torch: the test-only stand-in goes on sys.path here, and nothing spandrel runs uses it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sigmagraph.engine import Session
from sigmagraph.nodes.models.checkpoint import load_weights
from sigmagraph.nodes.models.manager import ModelManager, ModuleHandle
from sigmagraph.nodes.models.module_init import meta_module
from sigmagraph.nodes.models.upscale_model import UpscaleModel, load_upscale_model, upscale_model_from_state_dict
from sigmagraph.nodes.models.upscaler import UnsupportedUpscaler, read_upscaler

STANDIN = Path(__file__).resolve().parents[1] / "compat" / "torchvision_standin"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spandrel():
    sys.path.insert(0, str(STANDIN))
    try:
        return pytest.importorskip("spandrel", reason="spandrel (the reference) is not installed: pip install "
                                                      "spandrel --no-deps")
    finally:
        sys.path.remove(str(STANDIN))


def seeded(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's state dict filled with N(0, 0.1²) from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(value.shape, generator=generator) * 0.1 for key, value in module.state_dict().items()}


def esrgan_state_dict(spandrel, scale: int, shuffle: int | None, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random RRDBNet (16 features, 2 blocks) in the original ESRGAN's `model.N` layout, as spandrel builds it."""
    from spandrel.architectures.ESRGAN import ESRGAN

    network = ESRGAN(in_nc=3 * (shuffle or 1) ** 2, out_nc=3, num_filters=16, num_blocks=2, scale=scale,
                     shuffle_factor=shuffle)
    return seeded(network, seed)


def basicsr_layout(old: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same weights in basicsr's names (Real-ESRGAN's files), written from basicsr's RRDBNet."""
    layers = sorted({int(m[1]) for key in old if (m := re.fullmatch(r"model\.(\d+)\.weight", key))})
    blocks = max(int(m[1]) for key in old if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", key))) + 1
    tail = {index: name for index, name in zip(layers[1:][::-1], ["conv_last", "conv_hr"])}
    tail.update({index: f"conv_up{i + 1}" for i, index in enumerate(layers[1:-2])})
    new = {}
    for key, value in old.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(\w+)", key):
            new[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := re.fullmatch(rf"model\.1\.sub\.{blocks}\.(\w+)", key):
            new[f"conv_body.{m[1]}"] = value
        elif m := re.fullmatch(r"model\.(\d+)\.(\w+)", key):
            new[f"{'conv_first' if m[1] == '0' else tail[int(m[1])]}.{m[2]}"] = value
    assert len(new) == len(old)
    return new


def ours(state_dict: dict[str, torch.Tensor]) -> UpscaleModel:
    return upscale_model_from_state_dict(state_dict, "test.pth", torch.device("cpu"))


def reference(spandrel, state_dict: dict[str, torch.Tensor]):
    return spandrel.ModelLoader().load_from_state_dict(state_dict).eval()


@pytest.mark.parametrize("scale, shuffle, expected", [(1, None, 1), (2, None, 2), (4, None, 4), (8, None, 8),
                                                      (4, 2, 2), (4, 4, 1)])
@pytest.mark.parametrize("layout", ["esrgan", "basicsr"])
def test_rrdbnet_matches_spandrel(spandrel, scale, shuffle, expected, layout):
    state_dict = esrgan_state_dict(spandrel, scale, shuffle)
    if layout == "basicsr":
        state_dict = {"params_ema": basicsr_layout(state_dict)}
    descriptor = reference(spandrel, state_dict)
    model = ours(state_dict)
    assert (model.scale, descriptor.scale, model.architecture) == (expected, expected, "ESRGAN")
    pixels = torch.rand(1, 3, 13, 10, generator=torch.Generator().manual_seed(1))  # odd sizes: unshuffle padding
    with torch.no_grad():
        expected_out = descriptor(pixels)
    assert model(pixels).shape == expected_out.shape == (1, 3, 13 * expected, 10 * expected)
    torch.testing.assert_close(model(pixels), expected_out, atol=1e-5, rtol=1e-5)


def test_compact_matches_spandrel(spandrel):
    from spandrel.architectures.Compact import Compact

    state_dict = seeded(Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=4, upscale=4), 2)
    model = ours(state_dict)
    pixels = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(3))
    assert (model.scale, model.architecture) == (4, "Compact")
    with torch.no_grad():
        torch.testing.assert_close(model(pixels), reference(spandrel, state_dict)(pixels), atol=1e-5, rtol=1e-5)


def test_read_sizes_from_shapes(spandrel):
    from spandrel.architectures.ESRGAN import ESRGAN

    state_dict = seeded(ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=3, scale=2), 0)
    _, config, _ = read_upscaler(state_dict, "x")
    assert (config.features, config.blocks, config.growth, config.upsamplings, config.unshuffle) == (8, 3, 32, 1, 1)


def test_other_architectures_are_refused_naming_the_file(spandrel):
    swinir = {"layers.0.residual_group.blocks.0.norm1.weight": torch.ones(4),
              "conv_first.weight": torch.ones(4, 3, 3, 3)}
    with pytest.raises(UnsupportedUpscaler, match=r"4x-swin\.pth: not an upscale model.*layers\.0\.residual_group"):
        read_upscaler(swinir, "4x-swin.pth")
    from spandrel.architectures.ESRGAN import ESRGAN

    plus = seeded(ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4, plus=True), 0)  # ESRGAN+
    with pytest.raises(UnsupportedUpscaler, match=r"4x-plus\.pth: not an upscale model"):
        read_upscaler(plus, "4x-plus.pth")


def test_pickled_training_checkpoint_loads(spandrel, tmp_path):
    """Real-ESRGAN's .pth files: basicsr's names under params_ema, read as plain tensors."""
    state_dict = esrgan_state_dict(spandrel, 4, 2, seed=8)
    torch.save({"params_ema": basicsr_layout(state_dict), "params": {}}, tmp_path / "RealESRGAN_x2plus.pth")
    model = load_upscale_model(tmp_path / "RealESRGAN_x2plus.pth", "RealESRGAN_x2plus.pth", torch.device("cpu"))
    pixels = torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(model(pixels), reference(spandrel, state_dict)(pixels), atol=1e-5, rtol=1e-5)


def test_tiled_equals_untiled_within_tolerance(spandrel):
    """A small receptive field next to the 32-pixel overlap: seams carry only the ramps' small weights."""
    from spandrel.architectures.Compact import Compact

    model = ours(seeded(Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2), 4))
    image = torch.rand(1, 300, 200, 3, generator=torch.Generator().manual_seed(5))
    ticks = []
    tiled = model.upscale(image, lambda done, total: ticks.append((done, total)), tile=128)
    whole = model.upscale(image, tile=512)
    assert ticks[-1] == (6, 6)  # 3 rows x 2 columns of 128-pixel tiles
    assert tiled.shape == whole.shape == (1, 600, 400, 3)
    difference = (tiled - whole).abs()
    assert difference.mean() < 1e-3 and difference.max() < 0.05


def test_out_of_memory_halves_the_tile(spandrel):
    from spandrel.architectures.Compact import Compact

    state_dict = seeded(Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=1, upscale=2), 6)
    factory, config, weights = read_upscaler(state_dict, "x")
    network = meta_module(factory, config)
    load_weights(network, weights.items(), torch.float32, "x")
    sizes = []

    class SmallDevice(torch.nn.Module):
        """The network, failing like a full GPU on inputs larger than 128 pixels."""

        def __init__(self):
            super().__init__()
            self.inner = network

        def forward(self, x):
            sizes.append(x.shape[-1])
            if x.shape[-1] > 128:
                raise torch.OutOfMemoryError("CUDA out of memory")
            return self.inner(x)

    handle = ModuleHandle(ModelManager(torch.device("cpu")).register(SmallDevice()))
    model = UpscaleModel(handle, 2, "Compact", 3, 3)
    out = model.upscale(torch.rand(1, 200, 200, 4))
    assert sizes[:2] == [200, 200] and set(sizes[2:]) == {128}  # tiles of 512 and 256 hold the whole image: both fail
    assert out.shape == (1, 400, 400, 4)  # the alpha channel rides along


def test_workflow_upscales_a_loaded_image(spandrel, config):
    state_dict = esrgan_state_dict(spandrel, 2, None, seed=7)
    (config.models_dir / "upscale_models").mkdir()
    save_file(state_dict, config.models_dir / "upscale_models" / "2x-test.safetensors")
    config.input_dir.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(config.input_dir / "small.png")
    workflow = {
        "1": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "2x-test.safetensors"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "small.png"}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "up"}},
    }
    result = Session(config).run(workflow)
    assert result.ok, result.error
    saved = np.asarray(Image.open(config.output_dir / result.ui_outputs["4"]["images"][0]["filename"]))
    with torch.no_grad():
        expected = reference(spandrel, state_dict)(torch.from_numpy(pixels / 255.0).float().movedim(-1, 0)[None])
    expected = np.clip(255.0 * expected[0].movedim(0, -1).numpy(), 0, 255).astype(np.uint8)
    assert saved.shape == (40, 48, 3)
    assert np.abs(saved.astype(int) - expected.astype(int)).max() <= 1
