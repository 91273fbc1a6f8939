"""The node registry: socket types and node specs gathered from node packs, and the catalogue.

A node pack is a Python module. The registry collects from it: `SOCKET_TYPES` (a list of
`SocketType`), every function decorated with `@node`, and ComfyUI's `NODE_CLASS_MAPPINGS` /
`NODE_DISPLAY_NAME_MAPPINGS`. Nothing is replaced silently: a second definition of a node
name is reported as a conflict and the first keeps the name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .classic import spec_from_classic
from .node import NODE_SPEC_ATTRIBUTE
from .spec import NodeSpec

ANY_TYPE = "*"


class SocketType(BaseModel):
    """A named type of value that flows along links (MODEL, LATENT, ...), with its canvas colour."""

    model_config = ConfigDict(frozen=True)
    name: str
    color: str = "#9e9e9e"
    description: str = ""


def types_compatible(output_type: str, input_type: str) -> bool:
    """ComfyUI's rule: `*` matches anything, comma-separated unions match on any overlap."""
    if ANY_TYPE in (output_type, input_type):
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


@dataclass
class PackProblem:
    """A pack (or a node in it) that could not be loaded, with the reason, for logs and the API."""

    pack: str
    error: str
    node: str | None = None

    def line(self) -> str:
        where = f"{self.pack}: node {self.node}" if self.node else self.pack
        return f"skipped {where}: {self.error}"


@dataclass
class Registry:
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    types: dict[str, SocketType] = field(default_factory=dict)
    node_pack: dict[str, str] = field(default_factory=dict)
    problems: list[PackProblem] = field(default_factory=list)
    web_directories: dict[str, str] = field(default_factory=dict)
    implicit_types: set[str] = field(default_factory=set)

    def register_type(self, socket_type: SocketType, implicit: bool = False) -> None:
        """Adds a socket type; the first explicit definition of a name wins over later ones.

        Types that ComfyUI-classic nodes merely mention are added implicitly, with a default colour,
        and a pack that registers the type explicitly later replaces them.
        """
        name = socket_type.name
        if name in self.types and name not in self.implicit_types:
            return
        if implicit and name in self.types:
            return
        self.types[name] = socket_type
        (self.implicit_types.add if implicit else self.implicit_types.discard)(name)

    def add(self, spec: NodeSpec, pack: str = "builtin", strict_types: bool = True) -> bool:
        """Adds a node spec; returns False (and records the problem) on a conflict or unknown type."""
        if spec.name in self.nodes:
            self.problems.append(PackProblem(pack, f"node name {spec.name!r} is already defined by "
                                                   f"{self.node_pack[spec.name]}; the first definition is kept",
                                             spec.name))
            return False
        unknown = sorted(t for types in (s.split(",") for s in spec.socket_types()) for t in types
                         if t not in self.types and t != ANY_TYPE)
        if unknown and strict_types:
            self.problems.append(PackProblem(pack, f"unknown socket type(s) {', '.join(unknown)}: register them "
                                                   f"in the pack's SOCKET_TYPES", spec.name))
            return False
        for t in unknown:
            self.register_type(SocketType(name=t), implicit=True)
        self.nodes[spec.name] = spec
        self.node_pack[spec.name] = pack
        return True

    def load_module(self, module: ModuleType, pack: str) -> None:
        """Registers everything a pack module exports; each bad node is skipped and reported."""
        for socket_type in getattr(module, "SOCKET_TYPES", ()):
            self.register_type(socket_type)
        for value in vars(module).values():
            spec = getattr(value, NODE_SPEC_ATTRIBUTE, None)
            # Nodes defined in the pack or its submodules; nodes it merely imports from elsewhere are not its own.
            defined_in = getattr(value, "__module__", None) or ""
            if isinstance(spec, NodeSpec) and (defined_in == module.__name__
                                               or defined_in.startswith(module.__name__ + ".")):
                self.add(spec, pack)
        display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}) or {}
        for name, cls in (getattr(module, "NODE_CLASS_MAPPINGS", {}) or {}).items():
            try:
                spec = spec_from_classic(name, cls, display.get(name), module.__name__)
            except (ValidationError, ValueError, TypeError, AttributeError) as e:
                self.problems.append(PackProblem(pack, _one_line(e), name))
                continue
            self.add(spec, pack, strict_types=False)
        if getattr(module, "WEB_DIRECTORY", None):
            # relative to the pack's own folder, as in ComfyUI, so the server can serve it from any cwd
            base = os.path.dirname(getattr(module, "__file__", None) or ".")
            self.web_directories[pack] = os.path.abspath(os.path.join(base, module.WEB_DIRECTORY))

    def record_failure(self, pack: str, error: BaseException) -> None:
        """Records a pack that failed as a whole (import error, exception at registration)."""
        self.problems.append(PackProblem(pack, f"{type(error).__name__}: {_one_line(error)}"))

    def catalogue(self, config: Any) -> dict[str, dict[str, Any]]:
        """The whole catalogue in the shape of ComfyUI's `GET /object_info`."""
        return {name: spec.catalogue_entry(config) for name, spec in sorted(self.nodes.items())}


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
