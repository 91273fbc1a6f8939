"""The node registry: socket types and node specs gathered from node packs, and the catalogue.

A node pack is a Python module. The registry collects from it: `SOCKET_TYPES` (a list of
`SocketType`), every function decorated with `@node`, and ComfyUI's `NODE_CLASS_MAPPINGS` /
`NODE_DISPLAY_NAME_MAPPINGS`; for a custom pack, also the specs its pack loaders make of it
(pack_loader.py). Nothing is replaced silently: a second definition of a node name is reported
as a conflict and the first keeps the name. Refused nodes and packs are `problems`; declarations
accepted after a repair (a widget default out of range...) are `warnings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pydantic import BaseModel, ConfigDict

from .classic import classic_spec
from .node import NODE_SPEC_ATTRIBUTE
from .spec import NodeSpec

if TYPE_CHECKING:
    from .pack_loader import PackLoader

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

    def where(self) -> str:
        return f"{self.pack}: node {self.node}" if self.node else self.pack

    def line(self) -> str:
        return f"skipped {self.where()}: {self.error}"


class PackWarning(PackProblem):
    """A pack (or a node in it) loaded despite a problem: a repaired declaration, a failed prestartup script."""

    def line(self) -> str:
        return f"warning: {self.where()}: {self.error}"


@dataclass
class Registry:
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    types: dict[str, SocketType] = field(default_factory=dict)
    node_pack: dict[str, str] = field(default_factory=dict)
    problems: list[PackProblem] = field(default_factory=list)
    web_directories: dict[str, str] = field(default_factory=dict)
    pack_folders: dict[str, str] = field(default_factory=dict)  # custom_nodes/ folder packs: name -> folder
    implicit_types: set[str] = field(default_factory=set)
    warnings: list[PackWarning] = field(default_factory=list)
    loaders: list["PackLoader"] = field(default_factory=list)  # the pack loaders the custom packs went through
    server_hooks: dict[str, Callable[[Any], None]] = field(default_factory=dict)  # packs' `attach_server(link)`

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

    def load_module(self, module: ModuleType, pack: str, loaders: Sequence["PackLoader"] = (),
                    python_module: str | None = None) -> None:
        """Registers everything a pack module exports; each bad node is skipped and reported.

        A custom pack's `loaders` add the specs they make of it and adapt its classic classes;
        `python_module` replaces the module name its nodes show in the catalogue.
        """
        for socket_type in getattr(module, "SOCKET_TYPES", ()):
            self.register_type(socket_type)
        for value in vars(module).values():
            spec = getattr(value, NODE_SPEC_ATTRIBUTE, None)
            # Nodes defined in the pack or its submodules; nodes it merely imports from elsewhere are not its own.
            defined_in = getattr(value, "__module__", None) or ""
            if isinstance(spec, NodeSpec) and (defined_in == module.__name__
                                               or defined_in.startswith(module.__name__ + ".")):
                self.add(_shown_in(spec, python_module), pack)
        taken: set[str] = set()  # classes the loaders converted or refused
        for loader in loaders:
            specs, problems = loader.node_specs(module, pack)
            self._record(problems)
            taken |= {p.node for p in problems if p.node and not isinstance(p, PackWarning)} | {s.name for s in specs}
            for spec in specs:
                self.add(_shown_in(spec, python_module), pack, strict_types=False)
        display = getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}) or {}
        for name, cls in (getattr(module, "NODE_CLASS_MAPPINGS", {}) or {}).items():
            if name in taken:
                continue
            spec, problems = convert_classic(str(name), cls, display.get(name), module.__name__, pack, loaders)
            self._record(problems)
            if spec is not None:
                self.add(_shown_in(spec, python_module), pack, strict_types=False)
        folder = web_directory(module)
        if folder is not None:
            self.web_directories[pack] = folder
        if callable(getattr(module, "attach_server", None)):
            self.server_hooks[pack] = module.attach_server

    def _record(self, problems: list[PackProblem]) -> None:
        for problem in problems:
            (self.warnings if isinstance(problem, PackWarning) else self.problems).append(problem)

    def warn(self, pack: str, message: str, node: str | None = None) -> None:
        """Records something accepted despite a problem (a repaired declaration, a failed prestartup script)."""
        self.warnings.append(PackWarning(pack, message, node))

    def record_failure(self, pack: str, error: BaseException | str) -> None:
        """Records a pack that failed as a whole (import error, exception at registration), or why it was skipped."""
        self.problems.append(PackProblem(pack, error if isinstance(error, str) else
                                         f"{type(error).__name__}: {error_line(error)}"))

    def catalogue(self, config: Any) -> dict[str, dict[str, Any]]:
        """The whole catalogue in the shape of ComfyUI's `GET /object_info`."""
        return {name: spec.catalogue_entry(config) for name, spec in sorted(self.nodes.items())}


def convert_classic(name: str, cls: Any, display_name: Any, module: str, pack: str,
                    loaders: Sequence["PackLoader"] = ()) -> tuple[NodeSpec | None, list[PackProblem]]:
    """A ComfyUI-classic class of a pack as a spec its loaders adapted, with its warnings; or None and why not."""
    try:
        spec, warnings = classic_spec(name, cls, display_name, module)
        for loader in loaders:
            spec = loader.wrap_classic(cls, spec)
    except Exception as e:  # noqa: BLE001 - INPUT_TYPES is pack code: whatever it raises refuses this node only
        return None, [PackProblem(pack, f"{type(e).__name__}: {error_line(e)}", name)]
    return spec, [PackWarning(pack, warning, name) for warning in warnings]


def web_directory(module: ModuleType) -> str | None:
    """The absolute folder a pack's WEB_DIRECTORY names, if it names an existing one.

    Relative to the pack's own folder, as in ComfyUI, so the server can serve it from any cwd.
    """
    if not getattr(module, "WEB_DIRECTORY", None):
        return None
    base = os.path.dirname(getattr(module, "__file__", None) or ".")
    folder = os.path.abspath(os.path.join(base, module.WEB_DIRECTORY))
    return folder if os.path.isdir(folder) else None


def error_line(error: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(error).split())


def _shown_in(spec: NodeSpec, python_module: str | None) -> NodeSpec:
    return spec if python_module is None else spec.model_copy(update={"python_module": python_module})
