"""ComfyUI's `comfy_extras.nodes_sd3`: its nodes for SD3 (loaders, latents, prompts, skip-layer guidance), Sigmagraph's built-ins."""

from sigmagraph.compat import core_nodes as _core_nodes

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())
