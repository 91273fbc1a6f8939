"""ComfyUI's `comfy_extras.nodes_latent`: latent arithmetic and batching (Sigmagraph's latent_ops pack)."""

from sigmagraph.compat import core_nodes as _core_nodes
from sigmagraph.nodes.packs.latent_ops import shaped_like as _shaped_like

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())


def reshape_latent_to(target_shape, latent, repeat_batch=True):
    """`latent` resized to target_shape's spatial size and, by default, repeated to its batch (ComfyUI's helper)."""
    return _shaped_like(latent.new_empty(target_shape), latent, repeat_batch)
