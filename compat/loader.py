"""The ComfyUI pack loader: what the engine's discovery calls for each custom pack (engine/pack_loader.py).

Registered as the `comfyui` entry point of the `sigmagraph.pack_loaders` group. Before any pack,
ComfyUI's modules are installed and every one of them imported, as ComfyUI has them all loaded
when packs import: a pack that purges the modules its own import loaded (UltimateSDUpscale)
cannot take them. As in ComfyUI, the input folder exists by then, and WAS node suite is told not
to pip-install what it lacks. Each pack then gets its V3 nodes converted here (a `comfy_entrypoint`
extension, V3 classes in NODE_CLASS_MAPPINGS), its classic nodes run in ComfyUI's environment
(adapter.py), and its classes, display names and web folder added to ComfyUI's tables.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from sigmagraph.engine import Config, NodeSpec
from sigmagraph.engine.registry import PackProblem, convert_classic, web_directory

from . import install, provided_modules, serving, state
from .adapter import wrap_classic
from .v3 import V3Nodes, load_v3_extension, v3_classes_in

if TYPE_CHECKING:  # the server is imported only when one runs
    from sigmagraph.engine.server.pack_hooks import ServerLink


class ComfyLoader:
    """Loads ComfyUI custom node packs."""

    def __init__(self) -> None:
        self._extension_classes: dict[str, dict[str, type]] = {}  # pack -> the classes its extension listed

    def prepare(self, config: Config) -> None:
        """Installs ComfyUI's modules for `config` and imports them all."""
        # Nothing is installed behind the user's back: WAS node suite pip-installs what it lacks unless told not to.
        os.environ.setdefault("WAS_BLOCK_AUTO_INSTALL", "1")
        # ComfyUI's input folder always exists, and packs list it in INPUT_TYPES (LoadImage's files).
        Path(config.input_dir).mkdir(parents=True, exist_ok=True)
        install(config)
        for name in provided_modules():
            importlib.import_module(name)

    def node_specs(self, module: ModuleType, pack: str) -> tuple[list[NodeSpec], list[PackProblem]]:
        """The pack's V3 nodes (and the classic classes its extension lists), and those that failed."""
        mapping = getattr(module, "NODE_CLASS_MAPPINGS", None) or {}
        found = v3_classes_in(mapping, getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None), module.__name__)
        found.classic = {}  # the engine converts the mapping's classic classes itself
        if callable(getattr(module, "comfy_entrypoint", None)):
            extension = load_v3_extension(module)
            self._extension_classes[pack] = {spec.name: spec.node_class for spec in extension.specs} | extension.classic
            found.specs += extension.specs
            found.failures |= extension.failures
            found.classic, found.display_names = extension.classic, extension.display_names
        problems = [PackProblem(pack, reason, name) for name, reason in found.failures.items()]
        return found.specs + self._classic_specs(found, module.__name__, pack, problems), problems

    def _classic_specs(self, found: V3Nodes, module: str, pack: str, problems: list[PackProblem]) -> list[NodeSpec]:
        """Specs of the classic classes an extension lists (ComfyUI-ppm's carry a GET_SCHEMA)."""
        specs = []
        for name, cls in found.classic.items():
            spec, found_problems = convert_classic(name, cls, found.display_names.get(name), module, pack, [self])
            problems += found_problems
            specs += [spec] if spec is not None else []
        return specs

    def wrap_classic(self, cls: type, spec: NodeSpec) -> NodeSpec:
        """Runs the class's calls inside the node's run, on ComfyUI-shaped values."""
        return wrap_classic(cls, spec)

    def after_pack(self, module: ModuleType, pack: str) -> None:
        """Adds the pack's classes, display names and web folder to ComfyUI's tables.

        A name another pack (or the core) has stays theirs, as in the registry; a pack loaded again
        (another session) replaces its own entries.
        """
        classes = {**(getattr(module, "NODE_CLASS_MAPPINGS", None) or {}), **self._extension_classes.get(pack, {})}
        for name, cls in classes.items():
            held = getattr(state.node_class_mappings.get(name), "__module__", None)
            if held is None or held == module.__name__ or held.startswith(module.__name__ + "."):
                state.node_class_mappings[name] = cls
                display = (getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None) or {}).get(name)
                if display is not None:
                    state.node_display_name_mappings[name] = display
        folder = web_directory(module)
        if folder is not None:
            state.extension_web_dirs[pack] = folder

    def attach_server(self, link: ServerLink) -> None:
        """Makes `PromptServer.instance` this server's: its app, routes, messages, on-prompt handlers."""
        serving.attach(link)


loader = ComfyLoader()
