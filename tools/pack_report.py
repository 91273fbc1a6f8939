"""ComfyUI custom node packs against Sigmagraph: which load, how many of their nodes register, what stops the rest.

The packs of a folder (default build/real_packs: the packs of shared/reference/comfyui-packs.md,
never committed) are loaded as `sigmagraph nodes --custom-nodes-dir FOLDER` loads them. For each
pack: whether it imported; its node classes registered out of those it declares; the nodes
refused, with the reason; what stopped it if it did not import; and, read from its source, the
ComfyUI modules (and names of provided modules) it imports that Sigmagraph's compatibility layer
lacks, all of them, not only the first one its import hit.

    python tools/pack_report.py [FOLDER]                                # prints the section
    python tools/pack_report.py [FOLDER] --json                         # one JSON object per pack
    python tools/pack_report.py [FOLDER] --write docs/compatibility.md  # rewrites its "Custom node packs" section

It runs in a process of its own: packs change sys.modules and sys.path as they load.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from template_report import publish

from sigmagraph import compat
from sigmagraph.engine import Config
from sigmagraph.engine.discovery import load_packs, pack_module_name
from sigmagraph.engine.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
REAL_PACKS = ROOT / "build" / "real_packs"
SECTION = "## Custom node packs"
# ComfyUI's top-level modules that compat does not serve at all (besides those it serves in part).
UNSERVED_TOP_LEVEL = {"comfy_api_nodes", "comfy_config", "comfyui_version", "app", "protocol"}
MODEL_INTERNALS = "comfy.ldm."  # listed on one line: packs reaching into ComfyUI's model code
# torchvision cannot be installed beside this CPU torch; packs that import it at module level get a
# test-only stand-in whose names raise when used (tests/compat/torchvision_standin/README.md).
TORCHVISION_STANDIN = ROOT / "tests" / "compat" / "torchvision_standin"


def torchvision_standin_needed() -> bool:
    """True, after putting the stand-in on sys.path, when the real torchvision does not import."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or a CUDA build that fails beside this torch
        sys.modules.pop("torchvision", None)
        sys.path.insert(0, str(TORCHVISION_STANDIN))
        return True
    return False


@dataclass
class PackReport:
    """What became of one pack."""

    pack: str
    imported: bool
    registered: int = 0
    declared: int | None = None  # None: unknown, the pack did not import
    refused: dict[str, str] = field(default_factory=dict)  # node -> why
    stopped_by: str | None = None  # why the pack did not import
    lacking_modules: list[str] = field(default_factory=list)  # ComfyUI modules it imports that compat lacks
    lacking_names: list[str] = field(default_factory=list)  # names it imports from provided modules that lack them


def pack_folders(folder: Path) -> list[Path]:
    """The pack folders discovery imports (a package, not disabled)."""
    return sorted(p for p in folder.iterdir() if (p / "__init__.py").is_file() and not p.name.startswith((".", "_"))
                  and not p.name.endswith(".disabled"))


def imported_names(folder: Path) -> set[str]:
    """Every absolute module name a pack's source imports, and `module.name` for each `from module import name`."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names if a.name != "*"}
    return names


def lacking(folder: Path) -> tuple[list[str], list[str]]:
    """The ComfyUI modules a pack imports that compat does not provide, and the names it imports from
    provided modules that they lack (a pack's own modules of the same names left out)."""
    provided = set(compat.provided_modules())
    comfy_top = {name.split(".")[0] for name in provided} | UNSERVED_TOP_LEVEL
    own = {p.stem for p in folder.iterdir()}
    candidates = sorted(n for n in imported_names(folder) if n.split(".")[0] in comfy_top - own)
    modules, names = [], []
    for name in candidates:  # sorted: a module comes before its own names
        parent, _, leaf = name.rpartition(".")
        if name in provided or any(name.startswith(m + ".") for m in modules):
            continue
        if parent not in provided:
            modules.append(name)
            continue
        module = importlib.import_module(parent)
        if not hasattr(module, leaf):  # what a package lacks is a submodule; what a module lacks, a name
            (modules if hasattr(module, "__path__") else names).append(name)
    return modules, names


def survey(folder: Path, registry: Registry) -> list[PackReport]:
    """Each pack of `folder`, as `registry` (loaded from that folder) has it."""
    reports = []
    for path in pack_folders(folder):
        problems = [p for p in registry.problems if p.pack == path.name]
        stopped = next((p.error for p in problems if p.node is None), None)
        modules, names = lacking(path)
        report = PackReport(path.name, stopped is None, stopped_by=stopped, lacking_modules=modules,
                            lacking_names=names)
        if stopped is None:
            registered = {n for n, pack in registry.node_pack.items() if pack == path.name}
            report.refused = {p.node: p.error for p in problems}
            mapping = getattr(sys.modules.get(pack_module_name(path)), "NODE_CLASS_MAPPINGS", None) or {}
            report.registered = len(registered)
            report.declared = len(set(mapping) | registered | set(report.refused))
        reports.append(report)
    return reports


def markdown(reports: list[PackReport], standin: bool) -> str:
    """The "Custom node packs" section of docs/compatibility.md."""
    imported = [r for r in reports if r.imported]
    lines = [
        SECTION, "",
        f"{len(reports)} popular ComfyUI custom node packs (shared/reference/comfyui-packs.md), loaded as "
        "`sigmagraph nodes --custom-nodes-dir` loads them, with the third-party modules they need installed "
        "where that works (a pack a missing one stops says so"
        + ("; torchvision, which cannot be installed beside this CPU torch, replaced by a test-only stand-in "
           "whose names raise when used" if standin else "") + ") "
        "(`python tools/pack_report.py --write docs/compatibility.md` rewrites this section; "
        "`tests/compat/test_real_packs.py` checks it when build/real_packs is there).", "",
        f"- imported: {len(imported)} of {len(reports)}; node classes registered: "
        f"{sum(r.registered for r in imported)} of {sum(r.declared or 0 for r in imported)} declared by those", "",
        "| pack | imported | nodes registered / declared | refused nodes | what stops it |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in reports:
        counts = f"{r.registered} / {r.declared}" if r.imported else "—"
        stop = (r.stopped_by or "").replace("|", "\\|")
        lines.append(f"| {r.pack} | {'yes' if r.imported else 'no'} | {counts} | {len(r.refused)} | {stop} |")
    refused = [(r.pack, node, why) for r in reports for node, why in sorted(r.refused.items())]
    if refused:
        lines += ["", "Refused nodes:", ""] + [f"- {pack}: `{node}`: {why}" for pack, node, why in refused]
    by_module = Counter(m for r in reports for m in r.lacking_modules)
    ranked = sorted(by_module.items(), key=lambda kv: (-kv[1], kv[0]))
    lines += ["", "ComfyUI modules the packs import that the compatibility layer does not provide yet, with the "
              "number of packs importing each (read from their source, so every one, not only the first an import "
              "hits):", ""]
    lines += [f"- `{module}` ({n}): " + ", ".join(r.pack for r in reports if module in r.lacking_modules)
              for module, n in ranked if not module.startswith(MODEL_INTERNALS)]
    lines.append(f"- model architectures' internals, `{MODEL_INTERNALS}*`: "
                 + ", ".join(f"`{m[len(MODEL_INTERNALS):]}` ({n})" for m, n in ranked if m.startswith(MODEL_INTERNALS)))
    by_name = Counter(n for r in reports for n in r.lacking_names)
    if by_name:
        lines += ["", "Names imported from provided modules that lack them: "
                  + ", ".join(f"`{name}` ({n})" for name, n in sorted(by_name.items(), key=lambda kv: (-kv[1], kv[0])))
                  + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=REAL_PACKS, help="a custom_nodes folder of packs")
    parser.add_argument("--json", action="store_true", help="one JSON object per pack instead of the section")
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="rewrite this file's Custom node packs section")
    args = parser.parse_args(argv)
    standin = torchvision_standin_needed()
    with tempfile.TemporaryDirectory() as root:
        for folder in ("models", "output", "input", "temp"):  # as a server's start-up makes them
            (Path(root) / folder).mkdir()
        config = Config(models_dir=Path(root) / "models", output_dir=Path(root) / "output",
                        input_dir=Path(root) / "input", temp_dir=Path(root) / "temp", device="cpu",
                        custom_nodes_dirs=(Path(os.path.relpath(args.folder)),))  # messages name it as given
        reports = survey(args.folder, load_packs(config))
    if args.json:
        for report in reports:
            print(json.dumps(asdict(report)))
        return 0
    publish(markdown(reports, standin), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
