"""The worker actor's class on its own (no Ray): its message stream, its files, and prompts it cannot run.

Also the server's side of files coming home: the never-overwrite counter and the renaming.
"""

from __future__ import annotations

import json
import struct
from io import BytesIO

import pytest
from PIL import Image

from sigmagraph.engine import Config
from sigmagraph.engine.server.output_files import OutputFile, rename_files, write_home
from sigmagraph.engine.server.ray_actor import FILES, RESULT, PromptRunner
from sigmagraph.nodes.demo.generate import txt2img_workflow


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> PromptRunner:
    root = tmp_path_factory.mktemp("actor")
    worker = PromptRunner(Config(models_dir=root / "models", input_dir=root / "input", device="cpu",
                                 disable_custom_nodes=True), "w-test", torch_threads=1)
    yield worker
    worker.close()
    assert not worker.folder.exists()


def messages(runner: PromptRunner, workflow: dict, outputs: list[str]) -> list[tuple[str, object]]:
    return [m for batch in runner.run("p-1", workflow, {"client_id": "c"}, outputs, 0.0) for m in batch]


def test_a_run_streams_events_previews_files_then_its_result(runner):
    workflow = txt2img_workflow("a red circle", seed=5, batch=1, steps=2)
    workflow["7"] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "far"}}
    stream = messages(runner, workflow, ["7"])
    kinds = [kind for kind, _ in stream]
    assert kinds[-1] == RESULT and kinds.count(RESULT) == 1 and "execution_success" in kinds
    assert any(kind == "preview" and struct.unpack(">II", data[:8]) == (1, 1) for kind, data in stream)
    (files,) = [data for kind, data in stream if kind == FILES]
    executed = next(data for kind, data in stream if kind == "executed" and data["node"] == "7")
    assert kinds.index(FILES) == kinds.index("executed") - 1  # the bytes come just before the event naming them
    (file,) = files
    assert (file.type, file.subfolder, file.filename) == ("output", "", "far_00001_.png")
    assert executed["output"]["images"] == [{"filename": "far_00001_.png", "subfolder": "", "type": "output"}]
    assert json.loads(Image.open(BytesIO(file.data)).text["prompt"])["5"]["inputs"]["seed"] == 5
    result = stream[-1][1]
    assert result["status"] == "success" and result["prompt_id"] == "p-1"
    # the same prompt again: every node cached, the file named again but not sent again
    again = messages(runner, workflow, ["7"])
    assert FILES not in [kind for kind, _ in again] and again[-1][1]["cached"]
    assert runner.describe()["cached_nodes"] > 0 and runner.describe()["state"] == "idle"


def test_a_prompt_this_worker_cannot_validate_names_the_worker_and_the_file(runner):
    workflow = txt2img_workflow("a red circle", seed=5, batch=1, ckpt_name="elsewhere.safetensors", steps=2)
    stream = messages(runner, workflow, ["7"])
    assert [kind for kind, _ in stream] == ["execution_error", RESULT]
    error = stream[0][1]
    assert error["exception_type"] == "sigmagraph.InvalidOnWorker"
    assert "worker w-test" in error["exception_message"] and "elsewhere.safetensors" in error["exception_message"]
    assert stream[1][1]["status"] == "error"


def test_files_come_home_under_the_next_free_name_and_events_follow(tmp_path):
    config = Config(output_dir=tmp_path / "output", temp_dir=tmp_path / "temp")
    (tmp_path / "output" / "sub").mkdir(parents=True)
    (tmp_path / "output" / "sub" / "far_00001_.png").write_bytes(b"taken")  # a local run's file
    (tmp_path / "output" / "plain.txt").write_bytes(b"taken")
    renamed = write_home(config, [OutputFile("output", "sub", "far_00001_.png", b"one"),
                                  OutputFile("output", "sub", "far_00002_.png", b"two"),
                                  OutputFile("temp", "", "far_00001_.png", b"temp"),
                                  OutputFile("output", "", "plain.txt", b"new")])
    assert renamed == {("output", "sub", "far_00001_.png"): "far_00002_.png",
                       ("output", "sub", "far_00002_.png"): "far_00003_.png",
                       ("temp", "", "far_00001_.png"): "far_00001_.png",
                       ("output", "", "plain.txt"): "plain_00001_.txt"}
    assert (tmp_path / "output" / "sub" / "far_00001_.png").read_bytes() == b"taken"  # never overwritten
    assert (tmp_path / "output" / "sub" / "far_00003_.png").read_bytes() == b"two"
    assert (tmp_path / "temp" / "far_00001_.png").read_bytes() == b"temp"
    ui = {"images": [{"filename": "far_00002_.png", "subfolder": "sub", "type": "output"},
                     {"filename": "x.png", "subfolder": "", "type": "input"}], "animated": [False]}
    assert rename_files(ui, renamed) == {"images": [{"filename": "far_00003_.png", "subfolder": "sub",
                                                     "type": "output"}, ui["images"][1]], "animated": [False]}
