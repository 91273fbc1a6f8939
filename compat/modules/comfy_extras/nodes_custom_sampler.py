"""ComfyUI's `comfy_extras.nodes_custom_sampler`: the custom-sampling nodes, and its NOISE objects."""

from typing import Any

import torch

from sigmagraph.compat import core_nodes as _core_nodes
from sigmagraph.nodes.guiders import SeededNoise

NODE_CLASS_MAPPINGS = _core_nodes.define_in(globals())


class Noise_RandomNoise(SeededNoise):  # noqa: N801 - ComfyUI's name
    """The NOISE of a seed (ComfyUI's numbers), with ComfyUI's method name."""

    def __init__(self, seed: int):
        super().__init__(seed)

    def generate_noise(self, input_latent: dict[str, Any]) -> torch.Tensor:
        return self.generate(input_latent)


class Noise_EmptyNoise(SeededNoise):  # noqa: N801
    """No initial noise (zeros), with ComfyUI's method name."""

    def __init__(self) -> None:
        super().__init__(0, enabled=False)

    def generate_noise(self, input_latent: dict[str, Any]) -> torch.Tensor:
        return self.generate(input_latent)
