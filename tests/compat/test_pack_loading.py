"""Custom node packs loaded as ComfyUI loads them, through the engine's discovery and the `comfyui` pack loader.

The fixture packs under packs/ are written the way real packs are: comfy_pack imports ComfyUI's
modules, prints a banner, subclasses SaveImage and LoraLoader, returns more outputs than it declares,
has lazy inputs and purges sys.modules at the end; zz_prestartup_pack has a prestartup script;
needs_dependency_pack lacks a module; lenient_pack declares nodes loosely, one looseness each
(server_fixture_pack is tested in test_server_wiring.py). Expected values come from the built-in
nodes run on the same graph, or from the declarations themselves.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sigmagraph import compat
from sigmagraph.compat import state
from sigmagraph.engine import Config, Session
from sigmagraph.engine.cli import main
from sigmagraph.engine.discovery import PACKS_NAMESPACE, load_packs
from sigmagraph.engine.testing import run

PACKS = Path(__file__).parent / "packs"
LOADED = ("comfy_pack", "lenient_pack", "needs_dependency_pack", "zz_prestartup_pack")


def custom_nodes(root: Path, names: tuple[str, ...]) -> Path:
    """A custom_nodes folder under `root` holding copies of the named fixture packs."""
    folder = root / "custom_nodes"
    for name in names:
        shutil.copytree(PACKS / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def fixture_config(root: Path, names: tuple[str, ...]) -> Config:
    return Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                  temp_dir=root / "temp", device="cpu", custom_nodes_dirs=(custom_nodes(root, names),))


def forget_packs() -> None:
    for name in [m for m in sys.modules if m.startswith(PACKS_NAMESPACE)]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The fixture packs loaded once; yields (session, the folder_paths module from before they loaded)."""
    previous = state.config()
    root = tmp_path_factory.mktemp("packs")
    config = fixture_config(root, LOADED)
    (config.models_dir / "loras").mkdir(parents=True)
    (config.models_dir / "loras" / "fixture.safetensors").write_bytes(b"")  # never read at strength 0
    compat.install(config)
    import folder_paths

    yield Session(config, load_packs(config)), folder_paths
    state.activate(previous)
    forget_packs()


@pytest.fixture(scope="module")
def session(loaded):
    return loaded[0]


def pack_module(name: str):
    return sys.modules[f"{PACKS_NAMESPACE}.{name}"]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_nodes_json_stays_json_while_packs_print(tmp_path, capsys):
    previous = state.config()
    try:
        code = main(["nodes", "--json", "--custom-nodes-dir", str(custom_nodes(tmp_path, LOADED))])
    finally:
        state.activate(previous)
        forget_packs()
    out, err = capsys.readouterr()
    catalogue = json.loads(out)  # the banner and the prestartup script's line went to stderr
    assert code == 0 and "*** Comfy fixture pack: 6 nodes loaded ***" in err and "fixture prestartup script ran" in err
    assert catalogue["FixtureLazySwitch"]["python_module"] == "custom_nodes.comfy_pack"  # ComfyUI's prefix
    assert catalogue["FixtureImageBatchSplitter"]["display_name"] == "Image Batch Splitter (fixture)"
    assert catalogue["FixtureImageBatchSplitter"]["output"] == ["IMAGE"]
    assert catalogue["LenientHiddenKinds"]["input"]["hidden"] == {  # as declared: the adapter's own is not shown
        "unique_id": "UNIQUE_ID", "token": "AUTH_TOKEN_COMFY_ORG", "dynprompt": "DYNPROMPT", "prompt_id": "PROMPT_ID"}


def test_a_missing_dependency_is_one_line_naming_the_module_and_the_requirements(session):
    folder = session.config.custom_nodes_dirs[0]
    assert [p.line() for p in session.registry.problems if p.pack == "needs_dependency_pack"] == [
        f"skipped needs_dependency_pack: needs the Python module 'sigmagraph_fixture_absent_module' "
        f"(see {folder / 'needs_dependency_pack' / 'requirements.txt'}; install it with pip)"]


def test_prestartup_scripts_run_before_any_pack(session):
    assert pack_module("comfy_pack").PRESTARTUP_SEEN  # comfy_pack sorts before zz_prestartup_pack


def test_a_pack_purging_sys_modules_leaves_engine_and_compat_intact(loaded):
    session, folder_paths = loaded
    assert f"{PACKS_NAMESPACE}.comfy_pack.splitting" not in sys.modules  # the pack did purge what it loaded
    assert sys.modules["folder_paths"] is folder_paths  # and what was there before it is back
    import nodes

    assert nodes.NODE_CLASS_MAPPINGS["FixtureLazySwitch"] is pack_module("comfy_pack").LazySwitch
    assert {"KSampler", "FixtureSaveImageTagged", "LenientSlow"} <= set(session.registry.nodes)


def demo_graph(use_first: bool = True) -> dict:
    """The demo model through the pack's LoraLoader subclass (strength 0: the model as loaded), split, switched
    lazily (the other branch fails if evaluated) by a classic node and a V3 one, and saved by the pack's
    SaveImage subclass and the built-in one; and the built-in SaveImage of the whole batch."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sigmagraph-demo.safetensors"}},
        "2": {"class_type": "FixtureLoraLoaderSameStrength",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "fixture.safetensors", "strength": 0.0}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red star", "clip": ["2", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "seed": 1, "steps": 2, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "karras", "positive": ["3", 0],
                                                   "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "FixtureImageBatchSplitter", "inputs": {"images": ["7", 0], "split_count": 1}},
        "9": {"class_type": "FixtureFail", "inputs": {"image": ["7", 0]}},
        "10": {"class_type": "FixtureLazySwitch", "inputs": {"use_first": use_first, "first": ["8", 0],
                                                             "second": ["9", 0]}},
        "11": {"class_type": "FixtureSaveImageTagged", "inputs": {"images": ["10", 0], "filename_prefix": "pack"}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "builtin"}},
        "13": {"class_type": "FixtureLazyPickV3", "inputs": {"use_first": use_first, "first": ["8", 0],
                                                             "second": ["9", 0]}},
        "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "v3"}},
    }


def test_a_pack_subclassing_core_nodes_runs_the_demo_model(session):
    result = run(session, demo_graph())
    output = session.config.output_dir
    (tagged,) = result.ui_outputs["11"]["images"]
    first, second = result.ui_outputs["12"]["images"]
    assert tagged == {"filename": "pack_tagged_00001_.png", "subfolder": "", "type": "output"}
    # The splitter's first output is the first image of the batch, saved alike by the subclass and the built-in.
    assert np.array_equal(pixels(output / tagged["filename"]), pixels(output / first["filename"]))
    (picked,) = result.ui_outputs["14"]["images"]
    assert np.array_equal(pixels(output / picked["filename"]), pixels(output / first["filename"]))
    assert not np.array_equal(pixels(output / first["filename"]), pixels(output / second["filename"]))
    # The lazy branch that fails was never evaluated; asked for, it is.
    failed = session.run(demo_graph(use_first=False))
    assert failed.status == "error" and failed.error["node_id"] == "9"
    assert session.registry.nodes["FixtureLazyPickV3"].python_module == "custom_nodes.comfy_pack"
    assert "this branch was evaluated" in failed.error["exception_message"]


LENIENT = {
    "1": {"class_type": "LenientHiddenKinds", "inputs": {}},
    "2": {"class_type": "LenientOddNames", "inputs": {"text 1": "x", "text-2": "y"}},
    "3": {"class_type": "LenientLooseWidgets", "inputs": {"none_default": 5, "text_default": 0.5, "out_of_range": 3,
                                                          "fractional": 2, "no_label": "q"}},
    "4": {"class_type": "LenientExtraValues", "inputs": {"value": 4}},
    "5": {"class_type": "LenientRequiredAndOptional", "inputs": {"value": 2}},
    "6": {"class_type": "LenientSelfValidated", "inputs": {"value": 13}},
    "7": {"class_type": "LenientCollect", "inputs": {"first": ["4", 0], "undeclared": ["5", 0]}},
    "8": {"class_type": "LenientSlow", "inputs": {"value": 1}},
}


@pytest.fixture(scope="module")
def lenient(session):
    """Each lenient node's output, shown as text."""
    workflow = dict(LENIENT) | {f"show{nid}": {"class_type": "PreviewAny", "inputs": {"source": [nid, 0]}}
                                for nid in LENIENT}
    result = run(session, workflow)
    return {nid: result.ui_outputs[f"show{nid}"]["text"][0] for nid in LENIENT}


def warnings_of(session, node: str) -> list[str]:
    return [p.error for p in session.registry.warnings if p.node == node]


def test_unknown_hidden_kinds_are_none_and_dynprompt_and_prompt_id_are_supplied(session):
    result = run(session, {"1": LENIENT["1"], "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    assert result.ui_outputs["2"]["text"] == [f"1|None|True|{result.prompt_id}"]


def test_any_text_names_an_input(lenient):
    assert lenient["2"] == "xy"


def test_loose_widgets_are_repaired_with_a_warning_each(session, lenient):
    inputs = session.registry.catalogue(session.config)["LenientLooseWidgets"]["input"]["required"]
    assert inputs["none_default"] == ["INT", {"default": 5, "min": 5, "max": 10, "step": 1}]
    assert inputs["text_default"] == ["FLOAT", {"default": 0.0, "step": 0.01}]
    assert inputs["out_of_range"][1]["default"] == 10
    assert {k: inputs["fractional"][1][k] for k in ("min", "max", "step")} == {"min": 1, "max": 8, "step": 1}
    assert inputs["no_label"][1]["default"] == ""
    assert len(warnings_of(session, "LenientLooseWidgets")) == 7
    assert lenient["3"] == "5|0.5|3|2|'q'"


def test_values_beyond_the_declared_outputs_are_dropped(lenient):
    assert lenient["4"] == "4"


def test_a_name_both_required_and_optional_is_required(session, lenient):
    assert lenient["5"] == "20"
    assert warnings_of(session, "LenientRequiredAndOptional") == [
        "input 'value' is declared required and optional: it is required"]
    checked = session.validate({"1": {"class_type": "LenientRequiredAndOptional", "inputs": {}},
                                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    assert [e["type"] for e in checked.report.node_errors["1"]["errors"]] == ["required_input_missing"]


def test_validate_inputs_decides_for_the_inputs_it_takes(session, lenient):
    assert lenient["6"] == "13"  # above the widget's max, which VALIDATE_INPUTS takes over
    checked = session.validate({"1": {"class_type": "LenientSelfValidated", "inputs": {"value": 4}},
                                "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
    (error,) = checked.report.node_errors["1"]["errors"]
    assert error["type"] == "custom_validation_failed" and "4 is even" in error["message"]


def test_a_kwargs_function_receives_links_to_undeclared_inputs(lenient):
    assert lenient["7"] == "first=4,undeclared=20"


def test_an_async_method_runs(lenient):
    assert lenient["8"] == "101"


def test_is_changed_as_an_instance_method(session):
    runs = pack_module("lenient_pack").RUNS
    for mode, reruns in (("same", 1), ("always", 2)):
        workflow = {"1": {"class_type": "LenientCounted", "inputs": {"value": 7, "mode": mode}},
                    "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
        before = runs["Counted"]
        run(session, workflow)
        run(session, workflow)
        assert runs["Counted"] - before == reruns


def test_only_what_cannot_run_is_refused_with_the_reason(session):
    refused = {p.node: p.error for p in session.registry.problems if p.pack == "lenient_pack"}
    assert refused == {
        "LenientNoMethod": "ValueError: FUNCTION names 'missing', which the class does not define as a method",
        "LenientBrokenInputs": "KeyError: 'no such model folder'"}
