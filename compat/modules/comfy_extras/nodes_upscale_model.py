"""ComfyUI's `comfy_extras.nodes_upscale_model`: UpscaleModelLoader and ImageUpscaleWithModel."""

from sigmagraph.compat import core_nodes as _core_nodes

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())
