"""Fixtures for the ComfyUI compatibility layer: `sigmagraph.compat` importable, installed, over a temp Config."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REAL_PACKS = REPO / "build" / "real_packs"


def _import_compat_from_checkout() -> None:
    """Makes the checkout's compat/ importable as sigmagraph.compat until the package is installed with it."""
    if importlib.util.find_spec("sigmagraph.compat") is not None:
        return
    spec = importlib.util.spec_from_file_location("sigmagraph.compat", REPO / "compat" / "__init__.py",
                                                  submodule_search_locations=[str(REPO / "compat")])
    module = importlib.util.module_from_spec(spec)
    sys.modules["sigmagraph.compat"] = module
    spec.loader.exec_module(module)
    setattr(sys.modules["sigmagraph"], "compat", module)


_import_compat_from_checkout()

from sigmagraph import compat  # noqa: E402
from sigmagraph.compat import state  # noqa: E402
from sigmagraph.engine import Config  # noqa: E402


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The active Config for one test: every folder under tmp_path (the previous one is restored after)."""
    previous = state.config()
    config = Config(models_dir=tmp_path / "models", output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                    temp_dir=tmp_path / "temp", device="cpu", custom_nodes_dirs=(tmp_path / "custom_nodes",))
    compat.install(config)
    yield config
    state.activate(previous)
