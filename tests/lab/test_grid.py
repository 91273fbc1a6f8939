"""SamplerGrid on the analytic model: cells through the cache, the table against separate KSampler runs, labels."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.engine import Config, Session
from sigmagraph.engine.testing import output, run

SEED = 11
SAMPLERS = ("euler", "heun", "dpmpp_2m")
STEPS = (4, 6, 8)
REFERENCE = {"sampler_name": "dpmpp_2m", "scheduler": "karras", "steps": 40}


def upstream():
    return {
        "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4,
                                                               "spread": 1.0, "prediction_type": "eps"}},
        "2": {"class_type": "NoConditioning", "inputs": {}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 48, "height": 32, "batch_size": 1}},
    }


def grid(x_values=", ".join(SAMPLERS), y_values=", ".join(map(str, STEPS))):
    wf = upstream()
    wf["4"] = {"class_type": "SamplerGrid", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0], "seed": SEED,
        "steps": 20, "cfg": 1.0, "sampler_name": "euler", "scheduler": "karras", "x_axis": "sampler_name",
        "x_values": x_values, "y_axis": "steps", "y_values": y_values, "reference_sampler": REFERENCE["sampler_name"],
        "reference_scheduler": REFERENCE["scheduler"], "reference_steps": REFERENCE["steps"]}}
    wf["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    return wf


def ksampler(session, sampler_name, scheduler, steps):
    """The same run as a plain KSampler, in a workflow of its own."""
    wf = upstream()
    wf["4"] = {"class_type": "KSampler", "inputs": {
        "model": ["1", 0], "seed": SEED, "steps": steps, "cfg": 1.0, "sampler_name": sampler_name,
        "scheduler": scheduler, "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0], "denoise": 1.0}}
    wf["5"] = {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["4", 0]}}
    wf["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}
    result = run(session, wf)
    return output(session, result, "4")["samples"].double()


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """A session of its own, so that no earlier test has cached the upstream nodes."""
    root = tmp_path_factory.mktemp("grid")
    return Session(Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                          temp_dir=root / "temp", device="cpu", disable_custom_nodes=True))


@pytest.fixture(scope="module")
def first_run(session):
    result = run(session, grid())
    return result, output(session, result, "4", 0), output(session, result, "4", 1)


def table_rows(table: str) -> list[dict[str, str]]:
    header, *lines = table.splitlines()
    names = header.split("\t")
    return [dict(zip(names, line.split("\t"))) for line in lines]


def test_nine_cells_and_one_reference_each_upstream_node_once(first_run):
    result, _, _ = first_run
    cells = [n for n in result.ran if n.startswith("4.cell")]
    references = [n for n in result.ran if n.startswith("4.reference")]
    assert len(cells) == 9 and references == ["4.reference0"]
    assert all(result.ran.count(n) == 1 for n in ("1", "2", "3", "4.table"))


def test_the_table_equals_separate_runs(session, first_run):
    _, _, table = first_run
    rows = table_rows(table)
    reference = ksampler(session, **REFERENCE)
    assert len(rows) == 9
    for row in rows:
        sampler, steps = row["sampler"], int(row["steps"])
        assert (int(row["row"]), int(row["column"])) == (STEPS.index(steps), SAMPLERS.index(sampler))
        separate = ksampler(session, sampler, "karras", steps)
        expected = float((separate - reference).pow(2).mean().sqrt())
        assert float(row["rms_to_reference"]) == pytest.approx(expected, rel=1e-6)
        # model calls: one per step, Heun two per step but the last (Euler to sigma 0)
        assert int(row["model_calls"]) == (2 * steps - 1 if sampler == "heun" else steps)
    # More steps of a converging sampler come closer to the reference.
    errors = {(r["sampler"], int(r["steps"])): float(r["rms_to_reference"]) for r in rows}
    assert errors[("dpmpp_2m", 8)] < errors[("dpmpp_2m", 4)] and errors[("heun", 8)] < errors[("euler", 8)]


def test_the_grid_has_labels_above_and_left(first_run):
    _, image, _ = first_run
    picture = image[0]  # [H, W, 3]
    band = 24  # a title band, then the column labels, then rows of cells each with a caption band under it
    label_width = picture.shape[1] - 3 * 48
    assert picture.shape[0] == 2 * band + 3 * (32 + band)
    ink = picture.mean(-1) < 0.5
    assert ink[:band].sum() > 50  # the title
    for c in range(3):  # each column label has dark text in its part of the label band
        assert ink[band:2 * band, label_width + c * 48:label_width + (c + 1) * 48].sum() > 10
    for r in range(3):  # each row label in the left band, at its row
        top = 2 * band + r * (32 + band)
        assert ink[top:top + 32, :label_width].sum() > 5
    assert not ink[band:2 * band, :label_width].any()  # the corner stays blank


def test_changing_one_axis_value_runs_only_the_new_cells(session, first_run):
    result = run(session, grid(x_values="euler, heun, lms"))
    ran = [n for n in result.ran if n.startswith("4.")]
    assert sorted(ran) == ["4.cell2", "4.cell5", "4.cell8", "4.table"]  # the lms column; the reference is cached


def test_the_benchmark_charts_error_against_model_calls(session):
    from sigmagraph.nodes.packs.lab.drawing import PALETTE

    wf = upstream()
    wf["4"] = {"class_type": "SamplerBenchmark", "inputs": {
        "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0], "seed": SEED,
        "cfg": 1.0, "samplers": "euler, heun", "schedulers": "karras", "steps": "4, 8, 16",
        "reference_sampler": REFERENCE["sampler_name"], "reference_scheduler": REFERENCE["scheduler"],
        "reference_steps": REFERENCE["steps"]}}
    wf["5"] = {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}
    result = run(session, wf)
    assert "4.reference0" in result.cached  # the grid's reference: same sources and settings, same key
    rows = table_rows(output(session, result, "4", 1))
    calls = {(r["sampler"], int(r["steps"])): int(r["model_calls"]) for r in rows}
    errors = {(r["sampler"], int(r["steps"])): float(r["rms_to_reference"]) for r in rows}
    assert calls == {("euler", 4): 4, ("euler", 8): 8, ("euler", 16): 16, ("heun", 4): 7, ("heun", 8): 15,
                     ("heun", 16): 31}
    for sampler in ("euler", "heun"):
        assert errors[sampler, 4] > errors[sampler, 8] > errors[sampler, 16]
    # Heun is second order: doubling the steps cuts its error more than Euler's
    assert errors["heun", 8] / errors["heun", 16] > errors["euler", 8] / errors["euler", 16]
    chart = (output(session, result, "4", 0)[0] * 255).round().numpy()
    for k in range(2):  # a line per sampler, in its colour
        assert (abs(chart - PALETTE[k]).max(-1) <= 2).sum() > 100


def test_sampler_and_schedule_parameters_as_axes(session):
    wf = grid()
    wf["4"]["inputs"].update(sampler_name="euler_ancestral", steps=6, x_axis="eta", x_values="0, 1",
                             y_axis="rho", y_values="7, 3")
    rows = table_rows(output(session, run(session, wf), "4", 1))
    reference = ksampler(session, **REFERENCE)
    # eta 0 makes euler_ancestral Euler; rho 7 is karras itself
    euler = float((ksampler(session, "euler", "karras", 6) - reference).pow(2).mean().sqrt())
    assert float(rows[0]["rms_to_reference"]) == pytest.approx(euler, rel=1e-6)
    assert rows[1]["parameters"] == '{"sampler": {"eta": 1.0}, "schedule": {"rho": 7.0}, "shift": null}'
    assert float(rows[2]["rms_to_reference"]) != float(rows[0]["rms_to_reference"])  # rho 3 is another schedule
    wf["4"]["inputs"].update(sampler_name="euler", x_axis="eta")  # euler takes no eta: the cell says so
    result = session.run(wf)
    assert result.status == "error" and "euler takes no eta" in result.error["exception_message"]


def test_an_interrupt_stops_the_grid_between_steps_of_a_cell(session):
    def interrupt_at_first_progress(event, data):
        if event == "progress":
            session.interrupt.request()

    result = session.run(grid(y_values="30, 31, 32"), on_event=interrupt_at_first_progress)
    session.interrupt.clear()
    assert result.status == "interrupted"
    assert not any(n.startswith("4.cell") for n in result.ran)  # the cell that was running never finished
