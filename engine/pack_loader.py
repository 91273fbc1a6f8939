"""Pack loaders: what adapts custom packs written for another host (ComfyUI) to the engine.

A pack loader is an object named by an entry point of the `sigmagraph.pack_loaders` group
(Sigmagraph's ComfyUI compatibility layer is one). Only custom packs go through loaders: those
of custom-node folders and of third-party `sigmagraph.nodes` entry points. When there are none,
no loader is imported. With custom packs, discovery calls, in this order:

    prepare(config)                once, before any custom pack (or its prestartup script) runs
    node_specs(module, pack)       after each pack's import: the specs the loader makes of it
    wrap_classic(cls, spec)        for each ComfyUI-classic class the engine converted itself
    after_pack(module, pack)       once the pack is registered

and the server, once per application, `attach_server(link)` (see engine/server/pack_hooks.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from .config import Config
from .spec import NodeSpec

if TYPE_CHECKING:  # the registry imports this module; the server's types need aiohttp
    from .registry import PackProblem
    from .server.pack_hooks import ServerLink

LOADER_GROUP = "sigmagraph.pack_loaders"


class PackLoader(Protocol):
    """Adapts the custom packs of another host; each method may do nothing."""

    def prepare(self, config: Config) -> None:
        """Makes the host's modules importable for `config` before any custom pack is imported."""

    def node_specs(self, module: ModuleType, pack: str) -> tuple[list[NodeSpec], list["PackProblem"]]:
        """The specs the loader makes of a pack module, and the nodes it refused.

        Classes of the module's NODE_CLASS_MAPPINGS named here (made or refused) are left out of
        the engine's classic conversion.
        """

    def wrap_classic(self, cls: type, spec: NodeSpec) -> NodeSpec:
        """The spec the engine made of a classic class, adapted to run in the host's environment."""

    def after_pack(self, module: ModuleType, pack: str) -> None:
        """Called once the pack is registered (the host's own tables of nodes may list it)."""

    def attach_server(self, link: "ServerLink") -> None:
        """Lends the loader the server: its app, message delivery, prompt filters."""
