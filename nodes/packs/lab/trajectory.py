"""Recording a run's trajectory and branching from any recorded step with another sampler.

The lore "finish the last steps of an ancestral run with a converging sampler", made a graph:
RecordTrajectory samples and keeps every step's latent (as one LATENT batch, step-major) and
denoised estimate; BranchFromStep continues from a recorded step with the rest of the schedule.
The branch equals `SplitSigmas` + two SamplerCustom runs to the last bit, since the recorded
latent is what the first run would have returned. RecordTrajectory's UI output is a strip of
small previews, one per recorded step, from which the editor creates branches (web/lab_views.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sigmagraph.engine import Hidden, Int, NodeOutput, RunContext, Socket, String, node

from ...diffusion_model import LatentFormat
from ...guiders import SeededNoise
from ...sampling.trajectory import Trajectory, TrajectoryRecorder, parse_steps, remaining_sigmas
from ..image_output import png_metadata, preview_images
from ..sampling import SEED
from ..types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack
from .common import CATEGORY, LATENT, guided_run


@dataclass(frozen=True)
class TrajectoryInfo:
    """What a trajectory LATENT carries besides its samples: which steps, at which levels, of which schedule.

    `source` is the sampled LATENT without its samples (noise mask, batch index), for the branches.
    """

    steps: tuple[int, ...]
    levels: tuple[float, ...]
    schedule: Tensor
    batch: int
    source: dict[str, Any]

    def entry(self, samples: Tensor, step: int) -> tuple[Tensor, float]:
        """The recorded latent of a schedule step and its level."""
        if step not in self.steps:
            raise ValueError(f"step {step} was not recorded: the trajectory holds steps {list(self.steps)}")
        j = self.steps.index(step)
        return samples[j * self.batch:(j + 1) * self.batch], self.levels[j]


@node(returns=[("LATENT", "output"), ("LATENT", "denoised_output"), ("LATENT", "trajectory"),
               ("LATENT", "trajectory_denoised"), ("SIGMAS", "levels")], category=CATEGORY)
def RecordTrajectory(noise=Socket("NOISE"), guider=Socket("GUIDER"), sampler=Socket("SAMPLER"),
                     sigmas=Socket("SIGMAS"), latent_image=Socket("LATENT"),
                     record_steps: str = String("", tooltip="steps to keep, e.g. '0, 5, 10-12'; empty keeps all"),
                     ctx=Hidden.CONTEXT):
    """SamplerCustomAdvanced that also returns the latent at every step (steps + 1 entries) and the
    denoised estimate of every model step, as LATENT batches, with the level of each latent; shows a
    preview of each recorded step, from which the editor branches."""
    recorder = TrajectoryRecorder(parse_steps(record_steps))
    output, denoised = guided_run(ctx, guider, noise, sampler, sigmas, latent_image, recorder)
    fmt, sampling = guider.model.latent_format, guider.model.model_sampling
    # Stored as the run ending at each level would return it; the sampler's result already is.
    recorder.trajectory.states = [fmt.process_out(sampling.inverse_noise_scaling(torch.tensor(level), x)).cpu()
                                  for x, level in zip(recorder.trajectory.states, recorder.trajectory.levels)]
    recorded = recorder.finish(output["samples"], sigmas)
    source = {key: value for key, value in latent_image.items() if key != "samples"}
    info = TrajectoryInfo(tuple(recorded.steps), tuple(recorded.levels), sigmas.clone(),
                          latent_image["samples"].shape[0], source)
    states = {"samples": torch.cat(recorded.states) if recorded.states else torch.zeros(0), "trajectory": info}
    estimates = {"samples": torch.cat([fmt.process_out(d).cpu() for d in recorded.denoised])
                 if recorded.denoised else torch.zeros(0)}
    return NodeOutput((output, denoised, states, estimates, torch.tensor(recorded.levels, dtype=torch.float32)),
                      ui={"trajectory": step_previews(recorded, fmt, ctx)})


def step_previews(recorded: Trajectory, fmt: LatentFormat, ctx: RunContext) -> list[dict[str, Any]]:
    """One small preview per recorded step (of the first latent of the batch), as UI image entries with the
    step and its level. A step shows the model's denoised estimate there, which says where the run is going
    (the state itself is mostly noise); the last step shows the result."""
    # The estimates are in the model's space, the states stored as LATENT values.
    latents = [d[:1].cpu() for d in recorded.denoised] + [fmt.process_in(s[:1])
                                                    for s in recorded.states[len(recorded.denoised):]]
    if not latents:
        return []
    images = fmt.preview_rgb(torch.cat(latents).float())
    entries = preview_images(images, ctx, "trajectory", png_metadata(None, None))
    return [{**entry, "step": step, "sigma": level} for entry, step, level in zip(entries, recorded.steps,
                                                                                    recorded.levels)]


@node(returns=[("LATENT", "output"), ("LATENT", "denoised_output")], category=CATEGORY)
def BranchFromStep(noise_seed: int = SEED, guider=Socket("GUIDER"), sampler=Socket("SAMPLER"),
                   trajectory=Socket("LATENT", tooltip="a RecordTrajectory's trajectory"),
                   step: int = Int(0, min=0, max=10000, tooltip="the schedule step to continue from"),
                   ctx=Hidden.CONTEXT):
    """Continues a recorded run from one of its steps with this sampler and the rest of its schedule.

    No initial noise is added (the recorded latent holds its noise); the seed drives the sampler's own noise.
    """
    info: TrajectoryInfo | None = trajectory.get("trajectory")
    if info is None:
        raise ValueError("BranchFromStep needs the `trajectory` output of a RecordTrajectory node")
    samples, level = info.entry(trajectory["samples"], step)
    latent: LATENT = {**info.source, "samples": samples}
    sigmas = remaining_sigmas(info.schedule, step, level)
    return guided_run(ctx, guider, SeededNoise(noise_seed, enabled=False), sampler, sigmas, latent)
