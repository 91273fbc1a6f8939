"""ComfyUI's `comfy_extras.nodes_clip_sdxl`: CLIPTextEncodeSDXL and CLIPTextEncodeSDXLRefiner."""

from sigmagraph.compat import core_nodes as _core_nodes

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())
