"""ComfyUI's `comfy_extras.nodes_perpneg`: the Perp-Neg formula, its guider class, and the PerpNegGuider node."""

from sigmagraph.compat import core_nodes as _core_nodes
from sigmagraph.compat.guiders import Guider_PerpNeg  # noqa: F401 - packs subclass it
from sigmagraph.nodes.sampling.perp_neg import perp_neg as _perp_neg

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())


def perp_neg(x, noise_pred_pos, noise_pred_neg, noise_pred_nocond, neg_scale, cond_scale):
    """ComfyUI's signature: the Perp-Neg x0 of the positive, negative and empty predictions (x is unused)."""
    return _perp_neg(noise_pred_pos, noise_pred_neg, noise_pred_nocond, neg_scale, cond_scale)
