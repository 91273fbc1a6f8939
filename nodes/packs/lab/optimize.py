"""OptimizeSchedule: the schedule that minimises a sampler's error on the user's model, saved for later use.

The error of a schedule is the RMS distance between the sampler's result along it and a reference
run (reference_sampler at reference_steps on the karras schedule), on the given latents, from the
seed's noise, through the same path as KSampler. The fit (nodes/sampling/schedule_fit.py) is a
one-time cost, which the report states; a name saves the result in models/schedules/<name>.json,
after which BasicScheduler, KSampler and every scheduler list offer it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from sigmagraph.engine import Combo, Hidden, Int, Socket, String, node

from ...guiders import Guider, SamplerChoice, SeededNoise
from ...sampling.schedule_fit import fit_schedule, write_schedule
from ...sampling.schedules import scheduled_sigmas
from ..sampling import CFG, SEED, sampler_names
from ..schedulers import scheduler_names
from ..types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack
from .common import CATEGORY, counting, rms

REFERENCE_SCHEDULE = "karras"


@node(returns=[("SIGMAS", "sigmas"), ("STRING", "report")], category=CATEGORY)
def OptimizeSchedule(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                     latent_image=Socket("LATENT", tooltip="the latents to fit on (a batch: a few are enough)"),
                     sampler_name=Combo(sampler_names, default="dpmpp_2m"), steps: int = Int(10, min=2, max=200),
                     cfg: float = CFG, seed: int = SEED,
                     initial_scheduler=Combo(scheduler_names, default="exponential"),
                     reference_sampler=Combo(sampler_names, default="dpmpp_2m"),
                     reference_steps: int = Int(100, min=2, max=10000),
                     max_evaluations: int = Int(400, min=1, max=100000, tooltip="sampler runs the search may make"),
                     name: str = String("", tooltip="save as models/schedules/<name>.json (empty: do not save)"),
                     ctx=Hidden.CONTEXT):
    """Fits the sigmas of `steps` steps for this sampler, model and prompt: starting from initial_scheduler, it
    minimises the RMS error against a reference_steps run of reference_sampler; optionally saves them by name."""
    start, calls = time.perf_counter(), [0]
    guider = Guider(counting(model, calls), positive, negative, cfg)
    noise, sampler = SeededNoise(seed), SamplerChoice(sampler_name)
    reference_choice = SamplerChoice(reference_sampler)
    sampling = model.model_sampling

    def run(choice: SamplerChoice, sigmas: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return guider.sample(noise, latent_image, choice, sigmas)[0]["samples"]

    reference = run(reference_choice, scheduled_sigmas(sampling, REFERENCE_SCHEDULE, reference_steps, 1.0,
                                                       reference_choice.discard_penultimate_sigma))
    initial = scheduled_sigmas(sampling, initial_scheduler, steps, 1.0, sampler.discard_penultimate_sigma)
    fit = fit_schedule(lambda sigmas: rms(run(sampler, sigmas), reference), initial, max_evaluations=max_evaluations,
                       on_evaluation=lambda k: ctx.progress(k, max_evaluations))
    seconds = time.perf_counter() - start
    report = (f"{sampler_name}, {steps} steps: rms to the reference {fit.initial_error:.4g} ({initial_scheduler}) "
              f"-> {fit.error:.4g} (fitted); cost {fit.evaluations} runs, {calls[0]} model calls, {seconds:.1f} s")
    if name:
        path = write_schedule(Path(ctx.config.models_dir) / "schedules", name, fit.sigmas, {
            "sampler": sampler_name, "steps": steps, "error": fit.error, "initial_scheduler": initial_scheduler,
            "initial_error": fit.initial_error, "reference": f"{reference_sampler} {reference_steps} steps",
            "model_calls": calls[0], "seconds": round(seconds, 3)})
        report += f"; saved as {name} ({path.name})"
    return fit.sigmas, report
