"""ComfyUI's `comfy_extras.nodes_flux`: its nodes for Flux (prompts, guidance, Kontext references), Sigmagraph's built-ins."""

from sigmagraph.compat import core_nodes as _core_nodes

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())
