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
from sigmagraph.engine import Config, Session  # noqa: E402
from sigmagraph.engine.discovery import load_packs  # noqa: E402


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The active Config for one test: every folder under tmp_path (the previous one is restored after)."""
    previous = state.config()
    config = Config(models_dir=tmp_path / "models", output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                    temp_dir=tmp_path / "temp", device="cpu", custom_nodes_dirs=(tmp_path / "custom_nodes",))
    compat.install(config)
    yield config
    state.activate(previous)


def real_packs_session(root: Path, packs: tuple[str, ...]) -> Session:
    """A session over a custom_nodes folder (under root) linking these real packs, compat installed over it.

    The caller restores the previous Config (`state.activate`) when done.
    """
    folder = root / "custom_nodes"
    folder.mkdir()
    for pack in packs:
        (folder / pack).symlink_to(REAL_PACKS / pack, target_is_directory=True)
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device="cpu", custom_nodes_dirs=(folder,))
    compat.install(config)
    return Session(config, load_packs(config))
