"""Fixtures of the model tests: random checkpoints written once per session, configs, small model values."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import torch

from sigmagraph.engine import Config, Session
from sigmagraph.engine.context import InterruptFlag, RunContext
from sigmagraph.nodes.models.clip import VIT_BIGG14, VIT_L14, CLIPTextModel
from sigmagraph.nodes.models.families import SD1, SDXL
from sigmagraph.nodes.models.manager import ModelManager
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.runtime import CLIP, TextEncoder, DiffusionNetwork, diffusion_model
from sigmagraph.nodes.models.tokenizer import CLIPTokenizer
from sigmagraph.nodes.models.unet import SD1_UNET, UNetModel

ROOT = Path(__file__).resolve().parents[2]

# SD1's structure at a width that runs in milliseconds.
SMALL_SD1_UNET = replace(SD1_UNET, model_channels=32, context_dim=64)


def load_tool() -> ModuleType:
    """tools/make_random_checkpoint.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_random_checkpoint", ROOT / "tools" / "make_random_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RandomModels:
    """A models folder whose random checkpoints are written the first time a test asks for them."""

    def __init__(self, root: Path):
        self.root = root
        self.tool = load_tool()
        self._split: dict[str, dict[str, Path]] = {}

    def checkpoint(self, layout: str) -> str:
        """The name (in models/checkpoints) of the random checkpoint of a layout ("sd15", "sdxl-small")."""
        name = f"random-{layout}.safetensors"
        path = self.root / "checkpoints" / name
        if not path.exists():
            self.tool.write_random_checkpoint(path, layout, seed=0)
        return name


    def flow_checkpoint(self, family: str, name: str | None = None) -> str:
        """The name (in models/checkpoints) of a tiny single file of a flow family ("sd3", "flux-dev"...)."""
        name = name or f"tiny-{family}.safetensors"
        path = self.root / "checkpoints" / name
        if not path.exists():
            self.tool.write_flow_checkpoint(path, family, seed=0, **TINY_FLOW[family])
        return name

    def flow_split(self, family: str) -> dict[str, Path]:
        """The tiny split files of a flow family in this models folder, by part ("network", "vae", "clip_l"...)."""
        if family not in self._split:
            self._split[family] = self.tool.write_flow_split(self.root, family, seed=0, **TINY_FLOW[family])
        return self._split[family]


# The flow families' tiny sizes: two joint blocks of two 64-wide heads; one double and two single Flux blocks
# of two 128-wide heads.
TINY_FLOW = {"sd3": dict(depth=2, width=128), "sd35m": dict(depth=2, width=128),
             "flux-dev": dict(depth=1, width=256), "flux-schnell": dict(depth=1, width=256)}


@pytest.fixture(scope="session")
def random_models(tmp_path_factory) -> RandomModels:
    return RandomModels(tmp_path_factory.mktemp("models"))


def folders(models_dir: Path, tmp_path: Path) -> Config:
    return Config(models_dir=models_dir, output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                  temp_dir=tmp_path / "temp", device="cpu")


@pytest.fixture
def config(tmp_path) -> Config:
    """Folders of this test only (its own models folder)."""
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    return folders(tmp_path / "models", tmp_path)


@pytest.fixture
def context(config) -> RunContext:
    """A RunContext for calling node functions directly."""
    return RunContext(config, "test", "1", lambda event, data: None, InterruptFlag())


@pytest.fixture
def one_thread():
    """Runs a model-heavy test on one thread: on shared cores, OpenMP threads spin-waiting on each other
    make small operations many times slower than one thread alone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def default_workflow(session: Session, ckpt_name: str, size: int = 64, steps: int = 2) -> dict:
    """workflows/txt2img.json (ComfyUI's default graph) on another checkpoint, at a small size and few steps."""
    workflow = session.load(ROOT / "workflows" / "txt2img.json")
    workflow["4"]["inputs"]["ckpt_name"] = ckpt_name
    workflow["5"]["inputs"].update(width=size, height=size)
    workflow["3"]["inputs"]["steps"] = steps
    return json.loads(json.dumps(workflow))


def small_model(seed: int = 0, manager: ModelManager | None = None):
    """An SD1-structure MODEL of small width, its UNet module and its manager."""
    manager = manager or ModelManager(torch.device("cpu"))
    unet = init_random_(empty_module(UNetModel, SMALL_SD1_UNET), seed)
    return diffusion_model(SD1, DiffusionNetwork(manager.register(unet))), unet, manager


def small_sdxl_clip(seed: int = 0, manager: ModelManager | None = None) -> CLIP:
    """An SDXL CLIP (CLIP-L + bigG, two blocks each, small widths, real vocabulary)."""
    manager = manager or ModelManager(torch.device("cpu"))
    sizes = {"clip_l": replace(VIT_L14, width=64, heads=1, layers=3, mlp_width=128),
             "clip_g": replace(VIT_BIGG14, width=128, heads=2, layers=3, mlp_width=256, projection_dim=96)}
    parts = []
    for offset, slot in enumerate(SDXL.text_encoders):
        module = init_random_(empty_module(CLIPTextModel, sizes[slot.name]), seed + offset)
        parts.append(TextEncoder(manager.register(module), slot, CLIPTokenizer(slot.settings.pad_token)))
    return CLIP(tuple(parts), SDXL.name)
