"""Finding node packs: the `sigmagraph.nodes` entry-point group, then `custom_nodes/` folders.

Built-in packs are entry points of this distribution and load first, so their names can never
be taken over. A pack that fails to import or register is skipped with one line naming it and
the error; the others still load.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from .config import Config
from .registry import Registry

log = logging.getLogger("sigmagraph")

ENTRY_POINT_GROUP = "sigmagraph.nodes"
BUILTIN_PREFIX = "sigmagraph."
PACKS_NAMESPACE = "sigmagraph_custom_nodes"


def _load_entry_points(registry: Registry, config: Config) -> None:
    points = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (not ep.value.startswith(BUILTIN_PREFIX),
                                                                          ep.name))
    for ep in points:
        builtin = ep.value.startswith(BUILTIN_PREFIX)
        if not builtin and config.disable_custom_nodes:
            continue
        try:
            module = ep.load()
        except Exception as error:  # noqa: BLE001 - a broken pack must not stop the others
            registry.record_failure(ep.name, error)
            continue
        _register(registry, module, ep.name if builtin else f"{ep.dist.name if ep.dist else ep.name}:{ep.name}")


def _register(registry: Registry, module: ModuleType, pack: str) -> None:
    try:
        registry.load_module(module, pack)
    except Exception as error:  # noqa: BLE001
        registry.record_failure(pack, error)


def import_pack_path(path: Path) -> ModuleType:
    """Imports a pack from a module file or a package folder under a unique module name."""
    init = path / "__init__.py" if path.is_dir() else path
    name = f"{PACKS_NAMESPACE}.{path.stem.replace('-', '_').replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(path)]
                                                  if path.is_dir() else None)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    if PACKS_NAMESPACE not in sys.modules:  # the parent of every folder pack, so relative imports resolve
        namespace = ModuleType(PACKS_NAMESPACE)
        namespace.__path__ = []
        sys.modules[PACKS_NAMESPACE] = namespace
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]  # a re-import (another folder, an edited pack) must not see stale submodules
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _pack_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith((".", "_")) and not p.name.endswith(".disabled")
                  and ((p.is_dir() and (p / "__init__.py").exists()) or (p.is_file() and p.suffix == ".py")))


def load_packs(config: Config) -> Registry:
    """A registry holding the built-in packs, installed packs and the packs in custom-node folders."""
    registry = Registry()
    _load_entry_points(registry, config)
    if config.disable_custom_nodes:
        return registry
    for folder in config.custom_nodes_dirs:
        for path in _pack_paths(Path(folder)):
            try:
                module = import_pack_path(path)
            except BaseException as error:  # noqa: BLE001 - SyntaxError, SystemExit... all skip the pack
                if isinstance(error, KeyboardInterrupt):
                    raise
                registry.record_failure(path.name, error)
                continue
            _register(registry, module, path.name)
    for problem in registry.problems:
        log.warning("%s", problem.line())
    return registry
