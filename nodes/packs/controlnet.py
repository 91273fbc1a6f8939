"""ControlNet nodes: loading ControlNets and applying them to conditioning (ComfyUI's names, inputs and defaults).

A CONTROL_NET is a loaded ControlNet (models/controlnet.py). Applying one puts a `Control` (the
network, the hint image, strength, start/end percent, and the entry's previous control, so
ControlNets stack) under "control" in each conditioning entry; sampling runs it at every step in
its range (sampling/control.py). Files come from models/controlnet.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from sigmagraph.engine import Combo, Float, Hidden, RunContext, Socket, SocketType, node

from ..diffusion_model import DiffusionModel
from ..models.checkpoint import CheckpointError
from ..models.controlnet import load_controlnet
from ..models.runtime import DiffusionNetwork
from ..sampling.control import CONTROL, Control
from ..sampling.guidance import Conditioning
from .files import model_file, model_file_fingerprint, model_files
from .loaders import placement
from .types import SOCKET_TYPES as DOMAIN_TYPES

SOCKET_TYPES = DOMAIN_TYPES + [SocketType(name="CONTROL_NET", color="#6ee7b7", description="a ControlNet")]

STRENGTH = Float(1.0, min=0.0, max=10.0, step=0.01)
PERCENT = dict(min=0.0, max=1.0, step=0.001)
CONTROLNET_FILE = Combo(model_files("controlnet"), files_in="models/controlnet")


@node(returns=["CONTROL_NET"], category="loaders", display_name="Load ControlNet Model",
      fingerprint=model_file_fingerprint("controlnet", "control_net_name"))
def ControlNetLoader(control_net_name=CONTROLNET_FILE, ctx: RunContext = Hidden.CONTEXT):
    """Loads a ControlNet for SD 1.x, SD 2.x or SDXL (original or diffusers layout); sizes come from the file."""
    return load_controlnet(model_file(ctx.config, "controlnet", control_net_name), control_net_name,
                           *placement(ctx.config))


def network_weights(model: DiffusionModel, source: str) -> dict[str, Tensor]:
    """The weights of a MODEL's network as it runs (LoRAs applied), which a diff ControlNet adds to its own."""
    if not isinstance(model.network, DiffusionNetwork):
        raise CheckpointError(f"{source}: this MODEL ({model.family}) has no network weights to add to")
    return model.network.use().state_dict()


@node(returns=["CONTROL_NET"], category="loaders", display_name="Load ControlNet Model (diff)",
      fingerprint=model_file_fingerprint("controlnet", "control_net_name"))
def DiffControlNetLoader(model=Socket("MODEL"), control_net_name=CONTROLNET_FILE, ctx: RunContext = Hidden.CONTEXT):
    """Loads a ControlNet; a diff ControlNet's weights are added to this model's UNet weights."""
    return load_controlnet(model_file(ctx.config, "controlnet", control_net_name), control_net_name,
                           *placement(ctx.config), base=network_weights(model, control_net_name))


def apply_control(conditioning: Conditioning, make: Callable[[Any], Control], **options: Any) -> Conditioning:
    """A copy of the list whose entries carry the control `make(their previous control)`, and `options`."""
    return [[cond, {**entry, CONTROL: make(entry.get(CONTROL)), **options}] for cond, entry in conditioning]


@node(returns=["CONDITIONING"], category="conditioning/controlnet", display_name="Apply ControlNet (OLD)")
def ControlNetApply(conditioning=Socket("CONDITIONING"), control_net=Socket("CONTROL_NET"), image=Socket("IMAGE"),
                    strength: float = STRENGTH):
    """Deprecated: applies a ControlNet to one conditioning; sampling lends it to the negative prompt too."""
    if strength == 0:
        return conditioning
    hint = image.movedim(-1, 1)
    return apply_control(conditioning, lambda previous: Control(control_net, hint, strength, previous=previous),
                         control_apply_to_uncond=True)


@node(returns=[("CONDITIONING", "positive"), ("CONDITIONING", "negative")], category="conditioning/controlnet",
      display_name="Apply ControlNet")
def ControlNetApplyAdvanced(positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                            control_net=Socket("CONTROL_NET"), image=Socket("IMAGE"), strength: float = STRENGTH,
                            start_percent: float = Float(0.0, **PERCENT), end_percent: float = Float(1.0, **PERCENT),
                            vae=Socket("VAE", optional=True)):
    """Applies a ControlNet to the positive and negative conditioning, with the image as its hint.

    `vae` serves ControlNets that take a latent hint (SD3's, Flux's); the SD 1.x/2.x/SDXL ones take
    the image itself and ignore it, as ComfyUI does.
    """
    if strength == 0:
        return positive, negative
    hint = image.movedim(-1, 1)
    made: dict[int, Control] = {}

    def make(previous: Any) -> Control:
        # One control per distinct previous, shared by both lists: cond and uncond then run in one batch.
        if id(previous) not in made:
            made[id(previous)] = Control(control_net, hint, strength, start_percent, end_percent, previous)
        return made[id(previous)]

    return (apply_control(positive, make, control_apply_to_uncond=False),
            apply_control(negative, make, control_apply_to_uncond=False))
