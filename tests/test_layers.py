"""The layers: model code and the diffusion math library import nothing from the engine or the node packs.

Like nanoGPT's model.py, every module of `sigmagraph.nodes.models` and `sigmagraph.nodes.sampling`
must be usable with torch (and safetensors) alone. Each module is imported in a fresh interpreter
state (one subprocess; sigmagraph's modules are forgotten between imports, torch stays loaded),
and what that import pulled into `sys.modules` is checked.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

LIBRARY = ("sigmagraph.nodes.models", "sigmagraph.nodes.sampling")
FORBIDDEN = ("sigmagraph.engine", "sigmagraph.nodes.packs")

# Imports each module named on stdin after forgetting every sigmagraph module, and prints, per
# module, the forbidden modules that import brought in.
PROBE = """
import importlib, json, sys
forbidden = tuple(sys.argv[1:])
found = {}
for name in json.load(sys.stdin):
    for loaded in [m for m in sys.modules if m == "sigmagraph" or m.startswith("sigmagraph.")]:
        del sys.modules[loaded]
    importlib.import_module(name)
    found[name] = sorted(m for m in sys.modules if m.startswith(forbidden))
print(json.dumps(found))
"""


def modules_of(package: str) -> list[str]:
    """The package and every module under it, found from its files (nothing is imported)."""
    folder = Path(importlib.util.find_spec(package).submodule_search_locations[0])
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        names.append(".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return names


MODULES = [name for package in LIBRARY for name in modules_of(package)]


def forbidden_modules(command: list[str], stdin: str = "") -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def imported() -> dict[str, list[str]]:
    """Per library module, the engine and node-pack modules its import brings in."""
    return json.loads(forbidden_modules([sys.executable, "-c", PROBE, *FORBIDDEN], json.dumps(MODULES)))


def test_every_library_module_is_checked() -> None:
    assert {"sigmagraph.nodes.models.unet", "sigmagraph.nodes.models.loading",
            "sigmagraph.nodes.sampling.samplers.euler"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_library_module_imports_neither_engine_nor_packs(imported: dict[str, list[str]], module: str) -> None:
    assert imported[module] == [], f"importing {module} imports {', '.join(imported[module])}"


def test_the_unet_alone_needs_no_engine() -> None:
    # The command a reader would type, in an interpreter of its own.
    check = ("import sys, sigmagraph.nodes.models.unet; "
             "print(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:]))))")
    out = forbidden_modules([sys.executable, "-c", check, *FORBIDDEN])
    assert out.strip() == "[]", out
