"""ControlNets in CONDITIONING: ComfyUI's `control` option, its chain, strength and part of the run.

An entry may carry under "control" a control (ControlNetApplyAdvanced's value, or a ComfyUI
pack's ControlNet object): a ControlNet `network`, a `hint` image [B, C, H, W] in 0..1, a
`strength`, the part of the run it acts in (`start_percent`..`end_percent`) and the control it was
applied on top of (`previous`), so chains of ControlNets stack. Guidance turns the option into a
`ControlSchedule`, a model input whose value at each step is the chain's active controls
(`ActiveControls`, None when none is active); the network asks those for their residuals with the
inputs it is about to run on, and adds them to its skip connections and middle block.

As ComfyUI computes them: the hint is resized to the latent's (or the entry's area's) size in
pixels, 8 per latent pixel (nearest-exact after a centre crop to the aspect ratio), and repeated
over the batch; each control's residuals are multiplied by its strength and summed with the
previous controls'; a control acts while end_sigma <= sigma <= start_sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch
from torch import Tensor

from ..resize import resize

CONTROL = "control"  # the option, and the network input, that carry controls
HINT_PIXELS_PER_LATENT = 8  # the hint is at image resolution: 8 pixels per latent pixel (KL-f8 latents)

Residuals = dict[str, list[Tensor]]  # ComfyUI's control dict: "output" (one per input block), "middle" (one)


class ControlNetwork(Protocol):
    """A ControlNet: float32 residuals for the diffusion network's inputs and a hint image."""

    def __call__(self, x: Tensor, hint: Tensor, timestep: Tensor, context: Tensor | None,
                 y: Tensor | None) -> Residuals: ...


class ControlLike(Protocol):
    """What a control offers to sampling (Control, and the ComfyUI facade's ControlNet objects)."""

    network: ControlNetwork
    hint: Tensor
    strength: float
    start_percent: float
    end_percent: float
    previous: "ControlLike | None"


@dataclass(frozen=True, eq=False)
class Control:
    """One ControlNet applied to conditioning entries, on top of `previous` (compared by identity)."""

    network: ControlNetwork
    hint: Tensor  # [B, C, H, W] in 0..1 (an IMAGE moved channels-first)
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    previous: ControlLike | None = None


def chain(control: ControlLike) -> list[ControlLike]:
    """The controls of a chain, the first applied first."""
    controls = []
    while control is not None:
        controls.append(control)
        control = control.previous
    return controls[::-1]


def resized_hint(hint: Tensor, latent_size: Sequence[int], batch: int, total: int) -> Tensor:
    """The hint at 8x the latent size, repeated over a model call of `total` rows made of `batch`-row entries.

    ComfyUI's broadcast: a single image serves every row; otherwise the hint's images are taken in
    turn for the `batch` rows of an entry, and that block is repeated for each entry of the call.
    """
    height, width = (HINT_PIXELS_PER_LATENT * int(n) for n in latent_size)
    if tuple(hint.shape[-2:]) != (height, width):
        hint = resize(hint.float(), width, height, "nearest-exact", "center")
    if hint.shape[0] == 1:
        return hint
    hint = hint[torch.arange(batch) % hint.shape[0]]
    return hint.repeat(total // batch, 1, 1, 1)


@dataclass(frozen=True)
class ActiveControls:
    """The controls acting on one entry at one step (its `batch` rows): the network's `control` input."""

    controls: tuple[ControlLike, ...]
    batch: int

    def residuals(self, x: Tensor, timestep: Tensor, context: Tensor | None, y: Tensor | None) -> Residuals:
        """The summed residuals, each control's times its strength, for the network's (batched) inputs."""
        total: Residuals = {}
        for control in self.controls:
            hint = resized_hint(control.hint, x.shape[-2:], self.batch, x.shape[0]).to(x.device)
            for key, values in control.network(x, hint, timestep, context, y).items():
                scaled = [value * control.strength for value in values]
                total[key] = [a + b for a, b in zip(total[key], scaled)] if key in total else scaled
        return total


@dataclass(frozen=True, eq=False)
class ControlSchedule:
    """An entry's chain of controls with the sigma range of each: guidance's step-dependent `control` input."""

    controls: tuple[ControlLike, ...]
    ranges: tuple[tuple[float, float], ...]  # (sigma_start, sigma_end) of each control

    def at(self, sigma: float, x: Tensor) -> ActiveControls | None:
        """The controls active at sigma for an entry's slice x of the latent; None when none is."""
        active = tuple(control for control, (start, end) in zip(self.controls, self.ranges) if end <= sigma <= start)
        return ActiveControls(active, x.shape[0]) if active else None


def control_schedule(control: ControlLike, percent_to_sigma: Callable[[float], float] | None) -> ControlSchedule:
    """The schedule of a control chain, its percents turned into sigmas by the model's `percent_to_sigma`."""
    controls = tuple(chain(control))
    if percent_to_sigma is None:
        if any((c.start_percent, c.end_percent) != (0.0, 1.0) for c in controls):
            raise ValueError("a ControlNet with start_percent/end_percent needs the model's percent_to_sigma")
        return ControlSchedule(controls, ((math.inf, 0.0),) * len(controls))
    return ControlSchedule(controls, tuple((percent_to_sigma(float(c.start_percent)), percent_to_sigma(float(c.end_percent)))
                                           for c in controls))


def with_uncond_controls(positive: Sequence[Sequence[Any]], negative: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The negative list given the controls ControlNetApply set on positive entries alone, as ComfyUI does.

    Entries marked `control_apply_to_uncond` (ControlNetApply, not ControlNetApplyAdvanced) lend
    their control to the negative entries without an area, the i-th control to entry i mod n,
    unless a negative entry without an area already has a control.
    """
    def whole(options: dict[str, Any]) -> bool:
        return options.get("area") is None

    lent = [options[CONTROL] for _, options in positive
            if options.get("control_apply_to_uncond") and whole(options) and options.get(CONTROL) is not None]
    negative = [list(entry) for entry in negative]
    free = [index for index, (_, options) in enumerate(negative) if whole(options) and options.get(CONTROL) is None]
    if not lent or not free or len(free) < sum(whole(options) for _, options in negative):
        return negative
    for i, control in enumerate(lent):
        index = free[i % len(free)]
        negative[index][1] = {**negative[index][1], CONTROL: control}
    return negative
