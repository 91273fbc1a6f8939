"""SamplerGrid: samplers, schedules, step counts, CFG and any sampler or schedule parameter on two axes.

The grid expands (engine/expansion.py) into one SamplerGridCell per cell, one per reference (a
high-step run of a converging sampler, one per CFG and shift in the grid) and a SamplerGridTable
that draws the labelled grid and writes the table. Cells link to the grid's own upstream nodes,
so each is an independent node with its own cache key: shared work runs once, a cell already
computed (in this run or an earlier one) comes from the cache, and a worker pool may spread them.
Each cell reports its progress and honours the interrupt.
"""

from __future__ import annotations

import inspect
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from sigmagraph.engine import Combo, Hidden, Int, NodeOutput, Socket, String, node

from ...diffusion_model import DiffusionModel
from ...guiders import Guider, SamplerChoice, SeededNoise
from ...sampling import schedules
from ...sampling.model_sampling import ModelSampling
from ..sampling import CFG, SEED, STEPS, sampler_names
from ..schedulers import scheduler_names
from ..types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack
from .common import CATEGORY, counting, guided_run, rms
from .drawing import Series, as_image, labelled_grid, line_chart

# The closed-form schedules whose range and rho a grid axis may set.
CLOSED_FORMS = {"karras": schedules.karras_sigmas, "exponential": schedules.exponential_sigmas,
                "polyexponential": schedules.polyexponential_sigmas, "kl_optimal": schedules.kl_optimal_sigmas}
SCHEDULE_PARAMETERS = ("rho", "sigma_min", "sigma_max")
SAMPLER_PARAMETERS = ("eta", "s_churn", "s_noise", "s_tmin", "s_tmax", "r", "order", "solver_type")
BASE_SETTINGS = ("sampler_name", "scheduler", "steps", "cfg", "seed")
AXES = ("none", *BASE_SETTINGS, *SAMPLER_PARAMETERS, *SCHEDULE_PARAMETERS, "shift")
WHOLE_NUMBERS = ("steps", "seed", "order")
TEXTS = ("sampler_name", "scheduler", "solver_type")
LATENT_TO_PIXELS = 8  # a latent pixel is 8 x 8 image pixels (the previews of VAE-less models are scaled so)


@dataclass(frozen=True)
class CellSettings:
    """One run of a grid: the base settings, sampler and schedule parameters, and the model's shift."""

    sampler_name: str
    scheduler: str
    steps: int
    cfg: float
    seed: int
    sampler: dict[str, Any] = field(default_factory=dict)
    schedule: dict[str, float] = field(default_factory=dict)
    shift: float | None = None

    def with_value(self, axis: str, value: Any) -> "CellSettings":
        """These settings with one axis set."""
        if axis == "none":
            return self
        if axis in BASE_SETTINGS:
            return replace(self, **{axis: value})
        if axis in SAMPLER_PARAMETERS:
            return replace(self, sampler={**self.sampler, axis: value})
        if axis in SCHEDULE_PARAMETERS:
            return replace(self, schedule={**self.schedule, axis: value})
        return replace(self, shift=value)

    def cell_inputs(self) -> dict[str, Any]:
        """The literal inputs of this cell's SamplerGridCell."""
        extras = {"sampler": self.sampler, "schedule": self.schedule, "shift": self.shift}
        return {"sampler_name": self.sampler_name, "scheduler": self.scheduler, "steps": self.steps, "cfg": self.cfg,
                "seed": self.seed, "settings": json.dumps(extras, sort_keys=True)}


def axis_values(axis: str, text: str) -> list[Any]:
    """The comma-separated values of an axis, typed (one None for the axis "none")."""
    if axis == "none":
        return [None]
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"the {axis} axis has no values")
    if axis in TEXTS:
        return parts
    return [int(p) for p in parts] if axis in WHOLE_NUMBERS else [float(p) for p in parts]


def grid_cells(base: CellSettings, x_axis: str, xs: list[Any], y_axis: str, ys: list[Any]) -> list[CellSettings]:
    """The cells row by row: y down, x across."""
    return [base.with_value(y_axis, y).with_value(x_axis, x) for y in ys for x in xs]


def value_label(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def grid_title(x_axis: str, y_axis: str) -> str:
    """What the axes vary, for the band above the grid."""
    return ", ".join(f"{name}: {axis}" for name, axis in (("across", x_axis), ("down", y_axis)) if axis != "none")


# ----------------------------------------------------------------------------------------------
# One cell


def shifted(model: DiffusionModel, shift: float | None) -> DiffusionModel:
    """The model with its flow shift set (ModelSamplingSD3's shift), or unchanged for None."""
    if shift is None:
        return model
    sampling = model.model_sampling
    if sampling.prediction != "flow":
        raise ValueError(f"shift applies to flow models; this one predicts {sampling.prediction}")
    return model.with_model_sampling(ModelSampling(replace(sampling.levels, shift=shift), "flow", sampling.sigma_data))


def cell_sigmas(model_sampling: ModelSampling, scheduler: str, steps: int, parameters: dict[str, float],
                discard_penultimate: bool) -> Tensor:
    """A named schedule; with range or rho parameters, its closed form over the model's range so changed."""
    if not parameters:
        return schedules.scheduled_sigmas(model_sampling, scheduler, steps, 1.0, discard_penultimate)
    if scheduler not in CLOSED_FORMS:
        raise ValueError(f"{', '.join(parameters)} apply to the schedules {', '.join(CLOSED_FORMS)}, not {scheduler}")
    closed_form = CLOSED_FORMS[scheduler]
    extra = {"rho": parameters["rho"]} if "rho" in parameters else {}
    if extra and "rho" not in inspect.signature(closed_form).parameters:
        raise ValueError(f"the {scheduler} schedule has no rho")
    sigma_min = parameters.get("sigma_min", model_sampling.sigma_min)
    sigma_max = parameters.get("sigma_max", model_sampling.sigma_max)
    sigmas = closed_form(steps + int(discard_penultimate), sigma_min, sigma_max, **extra)
    return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard_penultimate else sigmas


def check_sampler_parameters(sampler: SamplerChoice) -> None:
    """Fails with the sampler's own parameters when the grid sets one it does not take."""
    taken = inspect.signature(sampler.function).parameters
    unknown = [name for name in sampler.params if name not in taken]
    if unknown:
        own = [p for p in taken if p not in ("model", "x", "sigmas", "extra_args", "callback", "disable")]
        raise ValueError(f"{sampler.name} takes no {', '.join(unknown)}; its parameters: {', '.join(own) or 'none'}")


@node(returns=[("LATENT", "output"), ("INT", "model_calls"), ("FLOAT", "seconds")], category=CATEGORY + "/grid")
def SamplerGridCell(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                    latent_image=Socket("LATENT"), sampler_name: str = String("euler"),
                    scheduler: str = String("normal"), steps: int = STEPS, cfg: float = CFG, seed: int = SEED,
                    settings: str = String("{}", tooltip="JSON: sampler and schedule parameters, shift"),
                    ctx=Hidden.CONTEXT):
    """One cell of a SamplerGrid: KSampler's run with any parameters, counting model calls and timing itself."""
    extras = json.loads(settings)
    calls = [0]
    model = counting(shifted(model, extras.get("shift")), calls)
    sampler = SamplerChoice(sampler_name, extras.get("sampler", {}))
    check_sampler_parameters(sampler)
    sigmas = cell_sigmas(model.model_sampling, scheduler, steps, extras.get("schedule", {}),
                         sampler.discard_penultimate_sigma)
    start = time.perf_counter()
    output, _ = guided_run(ctx, Guider(model, positive, negative, cfg), SeededNoise(seed), sampler, sigmas,
                           latent_image)
    return output, calls[0], time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# The table and the picture


def cell_images(model: DiffusionModel, vae: Any, latents: list[Tensor]) -> Tensor:
    """The cells as images: decoded by the VAE, else the model's latent preview at the image's size."""
    samples = torch.cat(latents)
    if vae is not None:
        return vae.decode(samples)
    fmt = model.latent_format
    preview = fmt.preview_rgb(fmt.process_in(samples.float())).movedim(-1, 1)
    return torch.nn.functional.interpolate(preview, scale_factor=LATENT_TO_PIXELS, mode="nearest").movedim(1, -1)


TABLE_COLUMNS = ("row", "column", "sampler", "scheduler", "steps", "cfg", "parameters", "model_calls", "seconds",
                 "rms_to_reference")


@dataclass(frozen=True)
class Measured:
    """A cell's result: its settings (the cell's inputs), latent, model calls, seconds and RMS to its reference."""

    settings: dict[str, Any]
    latent: Tensor
    calls: int
    seconds: float
    error: float


def measured(plan: dict[str, Any], cells: dict[str, Any]) -> list[Measured]:
    """The cells of a plan with their errors, from the table node's `latent K`... inputs."""
    references = [cells[f"reference {j}"]["samples"] for j in range(len(plan["references"]))]
    out = []
    for k, cell in enumerate(plan["cells"]):
        latent = cells[f"latent {k}"]["samples"]
        out.append(Measured(cell["settings"], latent, cells[f"calls {k}"], cells[f"seconds {k}"],
                            rms(latent, references[cell["reference"]])))
    return out


def table_text(columns: int, results: list[Measured]) -> str:
    """The table: one tab-separated line per cell (row-major), under a header."""
    lines = [TABLE_COLUMNS]
    for k, m in enumerate(results):
        s = m.settings
        lines.append((*divmod(k, columns), s["sampler_name"], s["scheduler"], s["steps"], f"{s['cfg']:g}",
                      s["settings"], m.calls, f"{m.seconds:.4f}", f"{m.error:.8g}"))
    return "\n".join("\t".join(str(v) for v in line) for line in lines)


def error_chart(plan: dict[str, Any], results: list[Measured]) -> Tensor:
    """Error against model calls, log-log, one line per row of the plan."""
    columns = plan["columns"]
    series = [Series(label, [m.calls for m in results[r * columns:(r + 1) * columns]],
                     [m.error for m in results[r * columns:(r + 1) * columns]])
              for r, label in enumerate(plan["row_labels"])]
    return as_image(line_chart(series, plan["title"], "model calls", "RMS to reference", size=(640, 420), log_x=True,
                               log_y=True))


@node(returns=[("IMAGE", "picture"), ("STRING", "table")], category=CATEGORY + "/grid", extra_inputs=True)
def SamplerGridTable(model=Socket("MODEL"), vae=Socket("VAE", optional=True),
                     layout: str = String("{}", tooltip="JSON written by SamplerGrid or SamplerBenchmark"),
                     **cells: Any):
    """Tabulates the cells of a SamplerGrid or SamplerBenchmark (calls, time, distance to the reference) and draws
    them: the grid's labelled images, or the benchmark's chart of error against model calls.

    Takes `latent K`, `calls K`, `seconds K` per cell and `reference J` per reference.
    """
    plan = json.loads(layout)
    results = measured(plan, cells)
    table = table_text(plan["columns"], results)
    if plan["view"] == "chart":
        return NodeOutput((error_chart(plan, results), table), ui={"text": [table]})
    captions = [f"{m.calls} calls, rms {m.error:.3g}" for m in results]
    picture = labelled_grid(cell_images(model, vae, [m.latent for m in results]), plan["rows"], plan["columns"],
                            plan["row_labels"], plan["column_labels"], captions, plan["title"])
    return NodeOutput((as_image(picture), table), ui={"text": [table]})


def expand_cells(uid: str, dynprompt: Any, cells: list[CellSettings], reference: CellSettings,
                 layout: dict[str, Any]) -> NodeOutput:
    """The expansion into one SamplerGridCell per cell and per reference (the reference settings with each cfg and
    shift of the cells) and the SamplerGridTable that reads them; the expanding node's outputs are the table's."""
    # Link the cells to the expanding node's own sources, so each cell is keyed by them (cached like any node).
    own = dynprompt.get_node(uid)["inputs"]
    sources = {name: own[name] for name in ("model", "positive", "negative", "latent_image")}
    graph: dict[str, dict[str, Any]] = {}
    references: list[tuple[float, float | None]] = []
    table_inputs: dict[str, Any] = {"model": own["model"], "vae": own.get("vae")}
    layout_cells = []
    for k, cell in enumerate(cells):
        if (cell.cfg, cell.shift) not in references:
            j = len(references)
            references.append((cell.cfg, cell.shift))
            graph[f"{uid}.reference{j}"] = {"class_type": "SamplerGridCell", "inputs": {
                **sources, **replace(reference, cfg=cell.cfg, shift=cell.shift).cell_inputs()}}
            table_inputs[f"reference {j}"] = [f"{uid}.reference{j}", 0]
        inputs = cell.cell_inputs()
        graph[f"{uid}.cell{k}"] = {"class_type": "SamplerGridCell", "inputs": {**sources, **inputs}}
        table_inputs |= {f"latent {k}": [f"{uid}.cell{k}", 0], f"calls {k}": [f"{uid}.cell{k}", 1],
                         f"seconds {k}": [f"{uid}.cell{k}", 2]}
        layout_cells.append({"settings": inputs, "reference": references.index((cell.cfg, cell.shift))})
    plan = {**layout, "cells": layout_cells, "references": references}
    graph[f"{uid}.table"] = {"class_type": "SamplerGridTable", "inputs": {**table_inputs, "layout": json.dumps(plan)}}
    return NodeOutput(result=([f"{uid}.table", 0], [f"{uid}.table", 1]), expand=graph)


REFERENCE_SAMPLER = Combo(sampler_names, default="dpmpp_2m", tooltip="a converging sampler for the reference run")
REFERENCE_SCHEDULER = Combo(scheduler_names, default="karras")
REFERENCE_STEPS = Int(100, min=1, max=10000)
OPTIONAL_VAE = Socket("VAE", optional=True, tooltip="decodes the cells; without it, the latent preview")


@node(returns=[("IMAGE", "grid"), ("STRING", "table")], category=CATEGORY)
def SamplerGrid(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                latent_image=Socket("LATENT"), vae=OPTIONAL_VAE, seed: int = SEED, steps: int = STEPS,
                cfg: float = CFG, sampler_name=Combo(sampler_names, default="euler"),
                scheduler=Combo(scheduler_names, default="normal"),
                x_axis=Combo(AXES, default="sampler_name"), x_values: str = String("euler, heun, dpmpp_2m"),
                y_axis=Combo(AXES, default="steps"), y_values: str = String("5, 10, 20"),
                reference_sampler=REFERENCE_SAMPLER, reference_scheduler=REFERENCE_SCHEDULER,
                reference_steps: int = REFERENCE_STEPS, uid=Hidden.UNIQUE_ID, dynprompt=Hidden.DYNPROMPT):
    """Runs every combination of two axes of settings (samplers, schedules, steps, cfg, seed, any sampler or
    schedule parameter, shift) as a labelled image grid, with a table of model calls, seconds and RMS distance
    to a reference run (reference_sampler at reference_steps, per cfg and shift)."""
    xs, ys = axis_values(x_axis, x_values), axis_values(y_axis, y_values)
    cells = grid_cells(CellSettings(sampler_name, scheduler, steps, cfg, seed), x_axis, xs, y_axis, ys)
    layout = {"view": "grid", "rows": len(ys), "columns": len(xs), "title": grid_title(x_axis, y_axis),
              "row_labels": [value_label(y) for y in ys], "column_labels": [value_label(x) for x in xs]}
    reference = CellSettings(reference_sampler, reference_scheduler, reference_steps, cfg, seed)
    return expand_cells(uid, dynprompt, cells, reference, layout)


@node(returns=[("IMAGE", "chart"), ("STRING", "table")], category=CATEGORY)
def SamplerBenchmark(model=Socket("MODEL"), positive=Socket("CONDITIONING"), negative=Socket("CONDITIONING"),
                     latent_image=Socket("LATENT"), seed: int = SEED, cfg: float = CFG,
                     samplers: str = String("euler, heun, dpmpp_2m"), schedulers: str = String("karras, normal"),
                     steps: str = String("4, 8, 16, 32"), reference_sampler=REFERENCE_SAMPLER,
                     reference_scheduler=REFERENCE_SCHEDULER, reference_steps: int = REFERENCE_STEPS,
                     uid=Hidden.UNIQUE_ID, dynprompt=Hidden.DYNPROMPT):
    """Which sampler for this model and prompt: the RMS error against a reference run versus model calls, for
    every sampler x schedule at each step count, as a log-log chart and a table (one row per cell)."""
    names, schedule_names = axis_values("sampler_name", samplers), axis_values("scheduler", schedulers)
    counts = axis_values("steps", steps)
    pairs = [(s, sch) for s in names for sch in schedule_names]
    cells = [CellSettings(s, sch, n, cfg, seed) for s, sch in pairs for n in counts]
    layout = {"view": "chart", "rows": len(pairs), "columns": len(counts), "title": "error against model calls",
              "row_labels": [f"{s} / {sch}" for s, sch in pairs], "column_labels": [str(n) for n in counts]}
    reference = CellSettings(reference_sampler, reference_scheduler, reference_steps, cfg, seed)
    return expand_cells(uid, dynprompt, cells, reference, layout)
