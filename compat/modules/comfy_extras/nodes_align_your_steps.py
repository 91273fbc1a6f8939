"""ComfyUI's `comfy_extras.nodes_align_your_steps`: the node, its noise levels and log-linear interpolation."""

from typing import Sequence

import numpy as np
import torch

from sigmagraph.compat import core_nodes as _core_nodes
from sigmagraph.nodes.sampling import schedules as _schedules

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())
NOISE_LEVELS = {model: list(levels) for model, levels in _schedules.AYS_NOISE_LEVELS.items()}


def loglinear_interp(t_steps: Sequence[float], num_steps: int) -> np.ndarray:
    """A descending sequence resampled to num_steps points, linear in log value (as a numpy array)."""
    return _schedules.loglinear_interp(torch.as_tensor(t_steps, dtype=torch.float64), num_steps).numpy()
