"""ComfyUI's `nodes` module: the core node classes (Sigmagraph's built-in nodes), their mappings, common_ksampler.

NODE_CLASS_MAPPINGS holds the core classes and, once they are loaded, every pack's (it lives
in compat.state, so a reload or purge of this module keeps the packs' entries).
"""

import os as _os

from sigmagraph.compat import core_nodes as _core_nodes
from sigmagraph.compat import state as _state
from sigmagraph.nodes.packs.types import MAX_RESOLUTION

NODE_CLASS_MAPPINGS = _state.node_class_mappings
NODE_DISPLAY_NAME_MAPPINGS = _state.node_display_name_mappings
EXTENSION_WEB_DIRS = _state.extension_web_dirs

for _name, _cls in _core_nodes.core_classes().items():
    NODE_CLASS_MAPPINGS.setdefault(_name, _cls)
for _name, _display in _core_nodes.display_names().items():
    NODE_DISPLAY_NAME_MAPPINGS.setdefault(_name, _display)
_core_nodes.define_in(globals())

common_ksampler = _core_nodes.common_ksampler


def get_module_name(module_path: str) -> str:
    """The module name of a custom node file or folder ("x/my_pack.py" -> "my_pack", "x/my_pack/" -> "my_pack")."""
    base = _os.path.basename(_os.path.normpath(module_path))
    return _os.path.splitext(base)[0] if _os.path.isfile(module_path) else base
