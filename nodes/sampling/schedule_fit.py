"""Schedules fitted to a model: the sigmas that minimise a sampler's error against a fine reference solve.

In the spirit of Align Your Steps (Sabour et al. 2024), which optimizes the noise levels per model
but ships tables for SD1.5, SDXL and SVD only; here the objective is the sampler's own error: the
RMS distance, on a few latents, between its result along the schedule and a reference run. The
schedule keeps sigma_max and the final 0; its free parameters are the log-sigma gaps between
consecutive levels (any real values give a descending schedule), searched from an initial
schedule by a coordinate pattern search (Hooke & Jeeves 1961): no gradients, so any sampler and
any model will do.

Fitted schedules are saved as JSON under models/schedules and registered in `SCHEDULES` beside
the built-in ones; like the Align-Your-Steps tables they are log-linearly interpolated to other
step counts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .model_sampling import ModelSampling
from .schedules import SCHEDULES, Schedule, append_zero, loglinear_interp

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
BUILT_IN = frozenset(SCHEDULES)


def log_gaps(sigmas: Tensor) -> Tensor:
    """The log of the gaps in log-sigma between consecutive non-zero levels (float64)."""
    levels = sigmas[:-1].double().log()
    return (levels[:-1] - levels[1:]).log()


def from_log_gaps(gaps: Tensor, sigma_max: float) -> Tensor:
    """The schedule from sigma_max down by these log-gaps, then 0 (float32): the inverse of `log_gaps`."""
    levels = math.log(sigma_max) - torch.cat([gaps.new_zeros(1), gaps.exp().cumsum(0)])
    return append_zero(levels.exp().float())


@dataclass(frozen=True)
class ScheduleFit:
    """A fitted schedule, its error and the initial one's, and how many times the error was evaluated."""

    sigmas: Tensor
    error: float
    initial_error: float
    evaluations: int


def fit_schedule(error: Callable[[Tensor], float], initial: Tensor, step: float = 0.5, tolerance: float = 0.03,
                 max_evaluations: int = 1000, on_evaluation: Callable[[int], None] | None = None) -> ScheduleFit:
    """Minimises error(sigmas) over the log-gaps of `initial` by coordinate pattern search.

    Each sweep tries every gap one `step` up then down and keeps the first improvement; a sweep
    without one halves the step, until it is below `tolerance` or the evaluations run out.
    """
    sigma_max = float(initial[0])
    best_gaps = log_gaps(initial)
    best = initial_error = error(from_log_gaps(best_gaps, sigma_max))
    evaluations = 1
    while step >= tolerance and evaluations < max_evaluations:
        improved = False
        for k in range(len(best_gaps)):
            for direction in (1.0, -1.0):
                candidate = best_gaps.clone()
                candidate[k] += direction * step
                value = error(from_log_gaps(candidate, sigma_max))
                evaluations += 1
                if on_evaluation is not None:
                    on_evaluation(evaluations)
                if value < best:
                    best, best_gaps, improved = value, candidate, True
                    break
        if not improved:
            step /= 2
    return ScheduleFit(from_log_gaps(best_gaps, sigma_max), best, initial_error, evaluations)


# ----------------------------------------------------------------------------------------------
# Saved schedules


def saved_schedule(sigmas: Tensor) -> Schedule:
    """A schedule of a fixed table: itself at its own step count, else its levels log-linearly interpolated."""

    def schedule(model_sampling: ModelSampling, steps: int) -> Tensor:
        levels = sigmas[:-1]
        if steps == len(levels):
            return sigmas.clone()
        return append_zero(loglinear_interp(levels, steps).float())

    return schedule


def schedule_path(folder: Path, name: str) -> Path:
    """The file of a saved schedule; the name must be a plain file name and not a built-in schedule's."""
    if not NAME.match(name):
        raise ValueError(f"schedule name {name!r}: use letters, digits, '_', '-' and '.' (at most 100)")
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in schedule; choose another name")
    return folder / f"{name}.json"


def write_schedule(folder: Path, name: str, sigmas: Tensor, details: dict[str, Any]) -> Path:
    """Saves sigmas (exactly: float32 values written in full) with what produced them."""
    path = schedule_path(folder, name)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"sigmas": [float(s) for s in sigmas.float()], **details}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1))
    temporary.replace(path)
    return path


def read_schedule(path: Path) -> Tensor:
    """The sigmas of a saved schedule, checked: descending, positive, ending in 0."""
    sigmas = torch.tensor(json.loads(path.read_text())["sigmas"], dtype=torch.float32)
    if len(sigmas) < 2 or sigmas[-1] != 0 or not bool((sigmas[:-1] > 0).all()) or not bool((sigmas.diff() < 0).all()):
        raise ValueError(f"{path} holds no schedule: sigmas must be positive, descending, and end in 0")
    return sigmas


_REGISTERED: set[str] = set()  # the saved schedules in SCHEDULES, so that deleted files leave it too


def register_saved_schedules(folder: Path) -> list[str]:
    """Puts the schedules saved in folder (*.json) in `SCHEDULES`, and takes out those since deleted; their names.

    Unreadable files are skipped.
    """
    names = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            SCHEDULES[path.stem] = saved_schedule(read_schedule(schedule_path(folder, path.stem)))
        except (ValueError, KeyError, TypeError, OSError):
            continue
        names.append(path.stem)
    for gone in _REGISTERED - set(names):
        SCHEDULES.pop(gone, None)
    _REGISTERED.clear()
    _REGISTERED.update(names)
    return names
