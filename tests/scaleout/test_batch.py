"""`sigmagraph run` over several workflows and sweeps: in turn with one cache, or spread over Ray workers."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sigmagraph.engine.batch import expand_sweeps
from sigmagraph.engine.cli import main
from sigmagraph.nodes.demo.generate import SAMPLER, shipped_workflow

HERE = Path(__file__).parent


def test_sweeps_expand_to_every_combination_in_order():
    assert expand_sweeps(["5.seed=1..3", "2.text=a..b", "4.batch_size=2..1"]) == [
        [f"5.seed={seed}", "2.text=a..b", f"4.batch_size={size}"] for seed in (1, 2, 3) for size in (2, 1)]
    assert expand_sweeps(["5.seed=-1..1"]) == [["5.seed=-1"], ["5.seed=0"], ["5.seed=1"]]
    assert expand_sweeps([]) == [[]]


@pytest.fixture
def packs(tmp_path) -> Path:
    folder = tmp_path / "custom_nodes"
    folder.mkdir()
    shutil.copy(HERE.parent / "engine" / "testing_pack.py", folder / "testing_pack.py")
    shutil.copy(HERE.parent / "server" / "server_pack.py", folder / "server_pack.py")
    return folder


def picture(prefix: str) -> dict:
    return {"1": {"class_type": "Constant", "inputs": {"value": 1.0}},
            "2": {"class_type": "Picture", "inputs": {"value": ["1", 0], "steps": 1, "delay_ms": 0, "prefix": prefix}}}


def test_two_workflows_and_a_sweep_run_in_turn(tmp_path, packs, capsys):
    files = []
    for name in ("a", "b"):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(picture(name)))
    out = tmp_path / "out"
    code = main(["run", *map(str, files), "--set", "1.value=10..12", "--output-dir", str(out),
                 "--custom-nodes-dir", str(packs), "--models-dir", str(tmp_path / "models")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 7
    assert lines[0] == f"[1/6] a.json 1.value=10: success on local: {out / 'a_00001_.png'}"
    assert lines[-1].startswith("6 prompts: 6 succeeded, 0 failed, in ")
    # each prompt saw its own value: the Picture node's grey level
    levels = {p.name: Image.open(p).getpixel((0, 0))[0] for p in out.glob("*.png")}
    assert levels == {"a_00001_.png": 10, "a_00002_.png": 11, "a_00003_.png": 12,
                      "b_00001_.png": 10, "b_00002_.png": 11, "b_00003_.png": 12}


def test_an_invalid_prompt_in_a_sweep_stops_the_batch_before_it_runs(tmp_path, packs, capsys):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(picture("w")))
    code = main(["run", str(path), "--set", "1.value=999..1001", "--output-dir", str(tmp_path / "out"),
                 "--custom-nodes-dir", str(packs), "--models-dir", str(tmp_path / "models")])
    assert code == 2 and not (tmp_path / "out").exists()  # Constant's max is 1000: nothing ran
    assert "node 1 (Constant)" in capsys.readouterr().err


def test_workers_without_ray_is_a_clear_error(tmp_path, packs, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(picture("w")))
    code = main(["run", str(path), "--workers", "auto", "--custom-nodes-dir", str(packs),
                 "--models-dir", str(tmp_path / "models"), "--output-dir", str(tmp_path / "out")])
    assert code == 2 and "pip install 'sigmagraph[ray]'" in capsys.readouterr().err


def test_a_seed_sweep_spreads_over_two_ray_workers(ray_cluster, tmp_path, capsys):
    workflow = shipped_workflow()
    workflow["4"]["inputs"].update(width=32, height=32, batch_size=1)
    workflow[SAMPLER]["inputs"]["steps"] = 2
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(workflow))
    out = tmp_path / "out"
    code = main(["run", str(path), "--set", f"{SAMPLER}.seed=1..4", "--workers", "auto", "--num-workers", "2",
                 "--output-dir", str(out), "--models-dir", str(tmp_path / "models"), "--cpu",
                 "--disable-custom-nodes"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[-1].startswith("4 prompts: 4 succeeded, 0 failed")
    finished = lines[:-1]
    assert len(finished) == 4 and {line.split(" on ")[1].split(":")[0] for line in finished} <= {"ray-0", "ray-1"}
    # every file came home once, with the prompt that made it (its seed) in its PNG metadata
    seeds = sorted(json.loads(Image.open(p).text["prompt"])[SAMPLER]["inputs"]["seed"] for p in out.glob("*.png"))
    assert seeds == [1, 2, 3, 4]
