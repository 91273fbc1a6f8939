"""ComfyUI's importable modules, backed by Sigmagraph, for custom node packs written for ComfyUI.

    from sigmagraph import compat
    compat.install(config)      # then a pack's `import folder_paths`, `import comfy.utils`... work

`install()` puts a finder at the front of `sys.meta_path` that serves each file under
`compat/modules/` under its ComfyUI name (`modules/comfy/utils.py` is `comfy.utils`), ahead of
anything else of that name (the checkout's own `nodes/` folder, when its root is on sys.path).
The modules are thin views over Sigmagraph's objects and `compat.state`, so a pack may reload
them or purge them from `sys.modules` and import them again. A submodule of these packages
that is not provided (`comfy.ldm.flux.layers`) fails with a ModuleNotFoundError saying so.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

from sigmagraph.engine import Config

from . import state

MODULES_DIR = Path(__file__).resolve().parent / "modules"


def _source(fullname: str) -> Path | None:
    """The file that implements the ComfyUI module `fullname`, if compat provides it."""
    base = MODULES_DIR.joinpath(*fullname.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


class ComfyModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ComfyUI's module names in compat/modules/; every other import passes through untouched."""

    def __init__(self) -> None:
        # Every import of the process asks this finder first, so the common answer is one set lookup.
        self.top_level = frozenset(p.stem for p in MODULES_DIR.iterdir() if _source(p.stem) is not None)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] not in self.top_level:
            return None
        source = _source(fullname)
        if source is None:
            raise ModuleNotFoundError(f"No module named {fullname!r}: Sigmagraph's ComfyUI compatibility layer "
                                      f"does not provide it", name=fullname)
        package = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(fullname, source, submodule_search_locations=package)


def install(config: Config | None = None) -> None:
    """Makes ComfyUI's module names importable (idempotent); with a config, makes it the active one."""
    if config is not None:
        state.activate(config)
    if not any(isinstance(finder, ComfyModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, ComfyModuleFinder())


def provided_modules() -> list[str]:
    """Every ComfyUI module name compat serves (packages and their modules), sorted."""
    names = []
    for path in MODULES_DIR.rglob("*.py"):
        parts = path.relative_to(MODULES_DIR).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


__all__ = ["ComfyModuleFinder", "install", "provided_modules", "state"]
