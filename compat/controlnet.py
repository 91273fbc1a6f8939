"""The CONTROL_NET facade: ComfyUI's comfy.controlnet.ControlNet over Sigmagraph's loaded ControlNet.

A pack receives `ControlNet.of(network)` and applies it the way ComfyUI's nodes do:
`control_net.copy().set_cond_hint(image.movedim(-1, 1), strength, (start, end))`, then
`set_previous_controlnet(entry["control"])`, and stores it under "control" in a conditioning
entry. Sigmagraph's sampling reads such an object as it reads its own `Control` (the hint,
strength, range and previous control; sampling/control.py), so a pack's controls and the
built-in nodes' chain into each other. What a pack hands back on a CONTROL_NET output is the
network (`controlnet_value`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from sigmagraph.nodes.models.controlnet import ControlNetNetwork, load_controlnet as _load_controlnet
from sigmagraph.nodes.packs.controlnet import network_weights
from sigmagraph.nodes.packs.loaders import placement

from . import state
from .patcher import ModelPatcher, diffusion_model


class ControlNet:
    """ComfyUI's ControlNet object: a loaded ControlNet with the hint, strength, range and previous control applied."""

    def __init__(self, network: ControlNetNetwork):
        self.network = network
        self.cond_hint_original: Tensor | None = None
        self.strength = 1.0
        self.timestep_percent_range = (0.0, 1.0)
        self.previous_controlnet: Any = None
        # ComfyUI's attributes packs read; Sigmagraph's ControlNets take the image itself (no VAE, no latent format).
        self.global_average_pooling = network.global_average_pooling
        self.compression_ratio = 8
        self.upscale_algorithm = "nearest-exact"
        self.latent_format = None
        self.vae = None
        self.concat_mask = False
        self.extra_args: dict[str, Any] = {}

    @classmethod
    def of(cls, network: ControlNetNetwork) -> "ControlNet":
        """A pack's view of a CONTROL_NET value."""
        return cls(network)

    @property
    def control_model(self) -> nn.Module:
        """The ControlNet module (ComfyUI's cldm.ControlNet)."""
        return self.network.managed.module

    def set_cond_hint(self, cond_hint: Tensor, strength: float = 1.0,
                      timestep_percent_range: tuple[float, float] = (0.0, 1.0), vae: Any = None,
                      extra_concat: list | None = None) -> "ControlNet":
        """Sets the hint [B, C, H, W] (0..1), strength and the part of the run; returns self (ComfyUI chains calls)."""
        self.cond_hint_original = cond_hint
        self.strength = strength
        self.timestep_percent_range = tuple(timestep_percent_range)
        self.vae = vae
        return self

    def set_previous_controlnet(self, controlnet: Any) -> "ControlNet":
        """Stacks this control on another (or on none); returns self."""
        self.previous_controlnet = controlnet
        return self

    def set_extra_arg(self, argument: str, value: Any = None) -> None:
        self.extra_args[argument] = value

    def copy(self) -> "ControlNet":
        """A new control on the same network with this one's settings (the previous control is not copied, as ComfyUI)."""
        duplicate = copy.copy(self)
        duplicate.previous_controlnet = None
        duplicate.extra_args = dict(self.extra_args)
        return duplicate

    def get_models(self) -> list:
        """The models to load for sampling: none, Sigmagraph's manager loads the network when it runs."""
        return [] if self.previous_controlnet is None else list(getattr(self.previous_controlnet, "get_models",
                                                                        lambda: [])())

    def pre_run(self, model: Any, percent_to_timestep_function: Any) -> None:
        """Nothing to prepare: sampling turns the percents into sigmas itself."""

    def cleanup(self) -> None:
        """Nothing to release: the control keeps no per-run state."""

    def inference_memory_requirements(self, dtype: Any) -> int:
        return 0

    # What Sigmagraph's sampling reads (sampling/control.ControlLike).

    @property
    def hint(self) -> Tensor:
        if self.cond_hint_original is None:
            raise ValueError("a ControlNet in the conditioning has no hint image: call set_cond_hint first")
        return self.cond_hint_original

    @property
    def start_percent(self) -> float:
        return float(self.timestep_percent_range[0])

    @property
    def end_percent(self) -> float:
        return float(self.timestep_percent_range[1])

    @property
    def previous(self) -> Any:
        return self.previous_controlnet


def load_controlnet(ckpt_path: str, model: ModelPatcher | None = None, model_options: dict | None = None) -> ControlNet:
    """ComfyUI's comfy.controlnet.load_controlnet: a ControlNet file (a diff ControlNet adds to `model`'s UNet)."""
    path = Path(ckpt_path)
    base = None if model is None else network_weights(diffusion_model(model), path.name)
    return ControlNet.of(_load_controlnet(path, path.name, *placement(state.config()), base=base))


def controlnet_value(control_net: ControlNet) -> ControlNetNetwork:
    """The Sigmagraph CONTROL_NET value of a pack's ControlNet object."""
    return control_net.network
