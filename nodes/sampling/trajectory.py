"""Recording a sampling run: the state x and the denoised estimate at every step, with their noise levels.

A sampler reports each step through its callback before taking it, so the x it reports at step i
is the state the steps before it left: exactly what a run over the first i steps of the schedule
(`SplitSigmas`) returns. A run can therefore be continued from any recorded step with another
sampler and the rest of the schedule. Under churn the reported x has been raised to sigma_hat,
and the recorded level says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection

from torch import Tensor


@dataclass
class Trajectory:
    """Recorded steps: `steps[j]` is the schedule step of `states[j]`, at noise level `levels[j]`.

    `denoised[j]` is the model's estimate at that state; the final state (after the last step) has none.
    """

    steps: list[int] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    states: list[Tensor] = field(default_factory=list)
    denoised: list[Tensor] = field(default_factory=list)


class TrajectoryRecorder:
    """A sampler callback keeping the reported x, its level and the denoised estimate at chosen steps.

    `keep` holds the schedule steps to record (None: every step); call `finish` with the sampler's result.
    """

    def __init__(self, keep: Collection[int] | None = None):
        self.keep = None if keep is None else frozenset(keep)
        self.trajectory = Trajectory()

    def wanted(self, step: int) -> bool:
        return self.keep is None or step in self.keep

    def __call__(self, info: dict[str, Any]) -> None:
        if self.wanted(info["i"]):
            # Samplers may update x in place after reporting it: keep copies.
            self.trajectory.steps.append(info["i"])
            self.trajectory.levels.append(float(info["sigma_hat"]))
            self.trajectory.states.append(info["x"].clone())
            self.trajectory.denoised.append(info["denoised"].clone())

    def finish(self, x: Tensor, sigmas: Tensor) -> Trajectory:
        """The recording, with the sampler's result x (in the space of the states) as the state after the last step."""
        last = len(sigmas) - 1
        if self.wanted(last):
            self.trajectory.steps.append(last)
            self.trajectory.levels.append(float(sigmas[-1]))
            self.trajectory.states.append(x.clone())
        return self.trajectory


def parse_steps(text: str) -> list[int] | None:
    """The steps listed in text ("0, 5, 10-12"), or None (every step) for an empty text."""
    steps: list[int] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        steps.extend(range(int(first), int(last or first) + 1))
    return steps or None


def remaining_sigmas(schedule: Tensor, step: int, level: float) -> Tensor:
    """The schedule from `step` on, starting at the level the recorded state is at (sigma_hat under churn)."""
    rest = schedule[step:].clone()
    rest[0] = level
    return rest

