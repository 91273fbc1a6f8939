"""Finding node packs: the `sigmagraph.nodes` entry-point group, then `custom_nodes/` folders.

An entry point names a pack module, or a package whose `NODE_PACKS` lists its pack submodules;
each of those is imported and registered as a pack of its own (the built-in packs are the
`builtin` entry point of this distribution). Built-in packs load first, so their names can never
be taken over. A pack that fails to import or register is skipped with one line naming it and
the error; the others still load.

Custom packs (third-party entry points and folder packs) load as ComfyUI loads them. The pack
loaders (pack_loader.py) are prepared first, then every folder pack's `prestartup_script.py`
runs, then the packs are imported one at a time. While a pack loads, its output goes to stderr
(so `sigmagraph nodes --json` stays JSON), and the modules loaded before it that it takes out
of `sys.modules` are put back: a pack may purge what its own import loaded, never what the
engine holds. A missing third-party module is reported on one line naming the module and the
pack's requirements.txt; nothing is ever installed. Without custom packs, no loader is imported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

from .config import Config
from .pack_loader import LOADER_GROUP, PackLoader
from .registry import Registry, error_line

log = logging.getLogger("sigmagraph")

ENTRY_POINT_GROUP = "sigmagraph.nodes"
BUILTIN_PREFIX = "sigmagraph."
PACKS_NAMESPACE = "sigmagraph_custom_nodes"
FOLDER_PACKS_MODULE = "custom_nodes"  # the python_module prefix of folder packs' nodes, as in ComfyUI's catalogue
PRESTARTUP_SCRIPT = "prestartup_script.py"
REQUIREMENTS = "requirements.txt"


def _is_builtin(ep: EntryPoint) -> bool:
    return ep.value.startswith(BUILTIN_PREFIX)


def _pack_label(ep: EntryPoint, name: str) -> str:
    """A built-in pack goes by its own name; an installed one by its distribution's name and its own."""
    if _is_builtin(ep):
        return name
    return f"{ep.dist.name if ep.dist else ep.name}:{name}"


class _ImportWatch(importlib.abc.MetaPathFinder):
    """First in sys.meta_path while a pack loads: notes the modules it asked for that no finder had.

    It asks the other finders in turn, so imports resolve as without it. A pack that swallows an
    ImportError and fails later (Comfyroll's NameError) is reported with the modules it lacked.
    """

    def __init__(self) -> None:
        self.missing: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            try:
                spec = find(fullname, path, target)
            except ModuleNotFoundError:
                self._note(fullname)
                raise
            if spec is not None:
                return spec
        self._note(fullname)
        return None

    def _note(self, name: str) -> None:
        if name not in self.missing:
            self.missing.append(name)


@contextlib.contextmanager
def _loading_pack(own_module: str) -> Iterator[_ImportWatch]:
    """Around a custom pack's import and registration: stdout to stderr, the modules it lacks noted,
    and the modules loaded before it that it removed put back (its own, `own_module`'s, excepted)."""
    before = dict(sys.modules)
    watch = _ImportWatch()
    sys.meta_path.insert(0, watch)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield watch
    finally:
        if watch in sys.meta_path:
            sys.meta_path.remove(watch)
        for name, module in before.items():
            if name not in sys.modules and name != own_module and not name.startswith(own_module + "."):
                sys.modules[name] = module


def _failure(error: BaseException, requirements: Path | None, watch: _ImportWatch | None) -> str:
    """Why a pack was skipped, on one line: a missing third-party module says what to install."""
    name = getattr(error, "name", None)
    if (isinstance(error, ModuleNotFoundError) and name and str(error) == f"No module named {name!r}"
            and not name.startswith(PACKS_NAMESPACE)):
        see = f"see {requirements}; " if requirements is not None and requirements.is_file() else ""
        return f"needs the Python module {name!r} ({see}install it with pip)"
    reason = f"{type(error).__name__}: {error_line(error)}"
    # An import error names its module; any other error may hide one the pack swallowed.
    lacked = [] if isinstance(error, ImportError) or watch is None else watch.missing
    if lacked:
        reason += f" (modules not found while it loaded: {', '.join(lacked[:5])}{', ...' if len(lacked) > 5 else ''})"
    return reason


def _load_entry_point(registry: Registry, ep: EntryPoint, loaders: Sequence[PackLoader]) -> None:
    with contextlib.nullcontext() if _is_builtin(ep) else _loading_pack(ep.module) as watch:
        try:
            module = ep.load()
        except Exception as error:  # noqa: BLE001 - a broken pack must not stop the others
            registry.record_failure(ep.name, _failure(error, None, watch))
            return
        packs = getattr(module, "NODE_PACKS", None)
        if packs is None:
            _register(registry, module, _pack_label(ep, ep.name), loaders)
            return
        for name in packs:
            try:
                pack = importlib.import_module(f"{module.__name__}.{name}")
            except Exception as error:  # noqa: BLE001 - nor may one member of a package of packs stop the rest
                registry.record_failure(_pack_label(ep, name), _failure(error, None, watch))
                continue
            _register(registry, pack, _pack_label(ep, name), loaders)


def _register(registry: Registry, module: ModuleType, pack: str, loaders: Sequence[PackLoader],
              python_module: str | None = None) -> None:
    try:
        registry.load_module(module, pack, loaders, python_module)
        for loader in loaders:
            loader.after_pack(module, pack)
    except Exception as error:  # noqa: BLE001
        registry.record_failure(pack, error)


def pack_module_name(path: Path) -> str:
    """The module name a folder pack is imported under (unique per file or folder name)."""
    return f"{PACKS_NAMESPACE}.{path.stem.replace('-', '_').replace('.', '_')}"


def import_pack_path(path: Path) -> ModuleType:
    """Imports a pack from a module file or a package folder under a unique module name."""
    init = path / "__init__.py" if path.is_dir() else path
    name = pack_module_name(path)
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


def _load_folder_pack(registry: Registry, path: Path, loaders: Sequence[PackLoader]) -> None:
    with _loading_pack(pack_module_name(path)) as watch:
        try:
            module = import_pack_path(path)
        except BaseException as error:  # noqa: BLE001 - SyntaxError, SystemExit... all skip the pack
            if isinstance(error, KeyboardInterrupt):
                raise
            registry.record_failure(path.name, _failure(error, path / REQUIREMENTS if path.is_dir() else None, watch))
            return
        # ComfyUI's catalogue names a folder pack's module "custom_nodes.<folder>" (a file pack's without .py)
        shown_as = f"{FOLDER_PACKS_MODULE}.{path.stem if path.is_file() else path.name}"
        _register(registry, module, path.name, loaders, shown_as)
        if path.is_dir():
            registry.pack_folders[path.name] = str(path.resolve())


def _pack_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith((".", "_")) and not p.name.endswith(".disabled")
                  and ((p.is_dir() and (p / "__init__.py").exists()) or (p.is_file() and p.suffix == ".py")))


def _prepared_loaders(registry: Registry, config: Config) -> list[PackLoader]:
    """The installed pack loaders, each prepared for `config`; one that fails is reported and left out."""
    loaders = []
    for ep in sorted(entry_points(group=LOADER_GROUP), key=lambda ep: ep.name):
        try:
            loader: Any = ep.load()
            loader.prepare(config)
        except Exception as error:  # noqa: BLE001 - the packs it would adapt load without it (and may fail)
            registry.record_failure(f"pack loader {ep.name}", error)
            continue
        loaders.append(loader)
    return loaders


def _run_prestartup_script(registry: Registry, path: Path) -> None:
    """Runs a folder pack's prestartup_script.py, as ComfyUI does before importing any pack."""
    script = path / PRESTARTUP_SCRIPT
    if not script.is_file():
        return
    spec = importlib.util.spec_from_file_location(str(script.with_suffix("")), script)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as error:  # noqa: BLE001 - as in ComfyUI, the pack is still imported
        registry.warn(path.name, f"its {PRESTARTUP_SCRIPT} failed: {type(error).__name__}: {error_line(error)}")


def _load_custom_packs(registry: Registry, config: Config, installed: list[EntryPoint], folders: list[Path]) -> None:
    registry.loaders = _prepared_loaders(registry, config)
    for path in folders:
        _run_prestartup_script(registry, path)
    for ep in installed:
        _load_entry_point(registry, ep, registry.loaders)
    for path in folders:
        _load_folder_pack(registry, path, registry.loaders)


def load_packs(config: Config) -> Registry:
    """A registry holding the built-in packs, installed packs and the packs in custom-node folders."""
    registry = Registry()
    points = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    for ep in points:
        if _is_builtin(ep):
            _load_entry_point(registry, ep, ())
    if not config.disable_custom_nodes:
        installed = [ep for ep in points if not _is_builtin(ep)]
        folders = [path for folder in config.custom_nodes_dirs for path in _pack_paths(Path(folder))]
        if installed or folders:
            _load_custom_packs(registry, config, installed, folders)
    for problem in registry.problems + registry.warnings:
        log.warning("%s", problem.line())
    return registry
