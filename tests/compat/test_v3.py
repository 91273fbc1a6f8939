"""The V3 adapter: ComfyUI `io.ComfyNode` classes as NodeSpecs (catalogue, validation, runs, loading).

The expected catalogue entries are written by hand from ComfyUI's `Schema.get_v1_info` and the
inputs' `as_dict` (comfy_api/latest/_io.py): what ComfyUI's `GET /object_info` sends for these
nodes, not what our code produces. The nodes come from packs/v3_pack, a pack written as ComfyUI
documents V3 packs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from PIL import Image

from sigmagraph.compat.v3 import is_v3_class, load_v3_extension, spec_from_v3, v3_classes_in
from sigmagraph.engine import NodeOutput, Registry, Session
from sigmagraph.engine.discovery import import_pack_path
from sigmagraph.engine.events import PROGRESS
from sigmagraph.engine.spec import ALWAYS_RUN, ComboInput, IntInput, SocketInput, StringInput
from sigmagraph.engine.testing import output

from .conftest import REAL_PACKS

PACKS = Path(__file__).parent / "packs"
MODULE = "sigmagraph_custom_nodes.v3_pack"  # the name the engine imports a folder pack under

REPEAT_TEXT_ENTRY = {
    "input": {"required": {
        "text": ["STRING", {"default": "hi", "multiline": True}],
        "count": ["INT", {"default": 2, "min": 1, "max": 8, "tooltip": "how many times"}],
        "joiner": ["COMFY_DYNAMICCOMBO_V3", {"options": [
            {"key": "space", "inputs": {"required": {}}},
            {"key": "custom", "inputs": {"required": {"separator": ["STRING", {"default": "-", "multiline": False}]}}},
        ]}],
        "extra": ["COMFY_AUTOGROW_V3", {"template": {
            "input": {"required": {"word": ["STRING", {"multiline": False, "forceInput": True}]}},
            "prefix": "word", "min": 0, "max": 3}}],
    }},
    "input_order": {"required": ["text", "count", "joiner", "extra"]},
    "is_input_list": False,
    "output": ["STRING", "INT"],
    "output_is_list": [False, False],
    "output_name": ["joined", "length"],
    "output_tooltips": [None, None],
    "output_matchtypes": None,
    "name": "V3RepeatText",
    "display_name": "Repeat Text (V3)",
    "description": "Repeats a text, joined by a space or a separator of your choice.",
    "python_module": MODULE,
    "category": "testing/v3",
    "output_node": False,
    "deprecated": False,
    "experimental": False,
    "dev_only": False,
    "api_node": False,
    "price_badge": None,
    "search_aliases": ["repeat"],
    "essentials_category": None,
    "has_intermediate_output": False,
}

SHOW_TEXT_ENTRY = REPEAT_TEXT_ENTRY | {
    "input": {
        "required": {"text": ["STRING", {"multiline": False, "forceInput": True}],
                     "case": ["COMBO", {"default": "keep", "multiselect": False,
                                        "options": ["upper", "lower", "keep"]}]},
        "optional": {"image": ["IMAGE", {}]},
        # an output node always gets the prompt and the PNG info (Schema.finalize)
        "hidden": {"unique_id": ["UNIQUE_ID"], "prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]},
    },
    "input_order": {"required": ["text", "case"], "optional": ["image"],
                    "hidden": ["unique_id", "prompt", "extra_pnginfo"]},
    "output": ["STRING"], "output_is_list": [False], "output_name": ["STRING"], "output_tooltips": [None],
    "name": "V3ShowText", "display_name": "Show Text (V3)", "description": "", "output_node": True,
    "search_aliases": None,
}

PASS_ENTRY_CHANGES = {
    "input": {"required": {"value": ["COMFY_MATCHTYPE_V3", {"template": {"template_id": "image_or_mask",
                                                                         "allowed_types": "IMAGE,MASK"}}]}},
    "output": ["COMFY_MATCHTYPE_V3"], "output_name": ["value"], "output_matchtypes": ["image_or_mask"],
}


@pytest.fixture
def pack(config):
    """The test pack, imported afresh (its on_load record starts empty)."""
    return import_pack_path(PACKS / "v3_pack")


@pytest.fixture
def nodes(pack):
    return load_v3_extension(pack)


@pytest.fixture
def specs(nodes):
    return {spec.name: spec for spec in nodes.specs}


@pytest.fixture
def session(config, nodes):
    registry = Registry()
    for spec in nodes.specs:
        assert registry.add(spec, "v3_pack", strict_types=False)
    return Session(config, registry)


def _json(value):
    return json.loads(json.dumps(value))


def test_the_extension_loads_once_and_names_its_nodes_by_schema(pack, nodes):
    assert pack.LOADED == ["on_load"]
    assert sorted(spec.name for spec in nodes.specs) == ["V3Gate", "V3PassImageOrMask", "V3PreviewImage",
                                                         "V3RepeatText", "V3RepeatTwice", "V3ShowText", "V3SolidImage"]
    assert nodes.failures == {}
    # a classic class the extension lists goes to the classic adapter, under its schema's id and name
    assert nodes.classic == {"V3PackClassic": pack.ClassicCounter}
    assert nodes.display_names == {"V3PackClassic": "Classic Counter"}


def test_the_catalogue_shows_v3_nodes_as_comfyui_does(specs, config):
    assert _json(specs["V3RepeatText"].catalogue_entry(config)) == REPEAT_TEXT_ENTRY
    assert _json(specs["V3ShowText"].catalogue_entry(config)) == SHOW_TEXT_ENTRY
    pass_entry = _json(specs["V3PassImageOrMask"].catalogue_entry(config))
    assert {k: pass_entry[k] for k in PASS_ENTRY_CHANGES} == PASS_ENTRY_CHANGES


def test_inputs_become_typed_specs_with_dynamic_inputs_under_dotted_names(specs, config):
    repeat = specs["V3RepeatText"]
    assert [i.name for i in repeat.inputs] == ["text", "count", "joiner", "joiner.separator",
                                               "extra.word0", "extra.word1", "extra.word2"]
    count = repeat.input("count")
    assert isinstance(count, IntInput) and (count.default, count.min, count.max) == (2, 1, 8)
    joiner = repeat.input("joiner")
    assert isinstance(joiner, ComboInput) and joiner.resolve(config) == ["space", "custom"]
    assert joiner.dynamic == {"space": (), "custom": ("joiner.separator",)}
    assert repeat.inactive_inputs({"joiner": "space"}) == {"joiner.separator"}
    word = repeat.input("extra.word0")
    assert isinstance(word, StringInput) and word.optional and word.force_input  # Autogrow min=0
    show = specs["V3ShowText"]
    assert show.is_async and not repeat.is_async
    assert show.input("image").optional and show.input("image").type == "IMAGE"
    assert sorted(kind.value for kind in show.hidden.values()) == ["CONTEXT", "EXTRA_PNGINFO", "PROMPT", "UNIQUE_ID"]
    assert [kind.value for kind in repeat.hidden.values()] == ["CONTEXT"]
    passing = specs["V3PassImageOrMask"]
    assert isinstance(passing.input("value"), SocketInput) and passing.input("value").type == "IMAGE,MASK"
    assert passing.outputs[0].type == "IMAGE,MASK"  # links to IMAGE and to MASK inputs both validate


def test_a_run_nests_dynamic_inputs_and_hands_hidden_values_and_ui(session, pack):
    workflow = {"1": {"class_type": "V3RepeatText", "inputs": {"text": "ab", "count": 2, "joiner": "custom",
                                                                "joiner.separator": "+", "extra.word0": "c"}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": "lower"}}}
    events = []
    result = session.run(workflow, on_event=lambda event, data: events.append((event, data)),
                         extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    assert result.ok, result.error
    assert (output(session, result, "1", 0), output(session, result, "1", 1)) == ("ab+ab+c", 7)
    assert result.ui_outputs["2"] == {"text": ["ab+ab+c @2"]}
    assert (PROGRESS, {"value": 1, "max": 1, "node": "1", "prompt_id": result.prompt_id}) in events
    ran_on, hidden = pack.SEEN[-1]
    assert issubclass(ran_on, pack.ShowText) and ran_on is not pack.ShowText and pack.ShowText.hidden is None
    assert hidden.unique_id == "2" and hidden.prompt["2"]["class_type"] == "V3ShowText"
    assert hidden.extra_pnginfo == {"workflow": {"nodes": []}} and hidden.dynprompt is None


def test_dynamic_inputs_nest_as_comfyui_nests_them(pack):
    io = pack.io

    class Probe(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Probe", outputs=[io.AnyType.Output()], inputs=[
                io.DynamicCombo.Input("mode", options=[
                    io.DynamicCombo.Option("a", [
                        io.Int.Input("n", optional=True),
                        io.DynamicCombo.Input("inner", options=[io.DynamicCombo.Option("p", [io.Float.Input("f")]),
                                                                io.DynamicCombo.Option("q", [])])]),
                    io.DynamicCombo.Option("b", [io.String.Input("s")])]),
                io.Autogrow.Input("grow", template=io.Autogrow.TemplateNames(io.Int.Input("x"), names=["x", "y"],
                                                                             min=0)),
                io.Autogrow.Input("more", template=io.Autogrow.TemplatePrefix(io.Int.Input("m"), prefix="m", max=2)),
            ])

        @classmethod
        def execute(cls, **kwargs):
            return io.NodeOutput(kwargs)

    spec = spec_from_v3(Probe)
    assert spec.inactive_inputs({"mode": "b", "grow.y": 3}) == {"mode.n", "mode.inner", "mode.inner.f"}
    assert not spec.input("more.m0").optional and spec.input("more.m1").optional  # TemplatePrefix's min is 1
    [given] = spec.function(**{"mode": "a", "mode.inner": "p", "mode.inner.f": 0.5, "grow.y": 3}).result
    # ComfyUI's build_nested_inputs: a chosen option's input not given is None, a choice sits in its own
    # dict, an Autogrow has only the slots given, and {} when none is
    assert given == {"mode": {"mode": "a", "n": None, "inner": {"inner": "p", "f": 0.5}}, "grow": {"y": 3},
                     "more": {}}


def test_inputs_of_a_choice_not_taken_are_left_out(session):
    workflow = {"1": {"class_type": "V3RepeatText", "inputs": {"text": "ab", "count": 3, "joiner": "space",
                                                                "joiner.separator": "+"}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": "upper"}}}
    result = session.run(workflow)
    assert result.ok, result.error
    assert result.ui_outputs["2"] == {"text": ["AB AB AB @2"]}


@pytest.mark.parametrize("case, runs_again", [("upper", True), ("keep", False)])
def test_fingerprint_inputs_decides_whether_a_node_runs_again(session, specs, case, runs_again):
    workflow = {"1": {"class_type": "V3RepeatText", "inputs": {"text": "x", "count": 1, "joiner": "space"}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": case}}}
    session.run(workflow)
    again = session.run(workflow)
    assert ("2" in again.ran) is runs_again and ("2" in again.cached) is not runs_again
    assert "1" not in again.ran
    assert specs["V3ShowText"].fingerprint(case="upper") == ALWAYS_RUN


def test_validate_inputs_refusing_is_a_validation_error_of_the_node(session):
    workflow = {"1": {"class_type": "V3RepeatText", "inputs": {"text": "", "count": 1, "joiner": "space"}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": "keep"}}}
    report = session.validate(workflow).report  # as ComfyUI: refused before anything runs
    assert not report.ok
    assert any("node 1" in line and "the text is empty" in line for line in report.lines())


def test_a_preview_writes_pngs_carrying_the_workflow(session, config):
    workflow = {"1": {"class_type": "V3SolidImage", "inputs": {"size": 4, "value": 0.5}},
                "2": {"class_type": "V3PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = session.run(workflow)
    assert result.ok, result.error
    [saved] = result.ui_outputs["2"]["images"]
    assert saved["type"] == "temp" and result.ui_outputs["2"]["animated"] == [False]
    with Image.open(Path(config.temp_dir) / saved["subfolder"] / saved["filename"]) as png:
        assert json.loads(png.text["prompt"])["1"]["class_type"] == "V3SolidImage"
        assert png.getpixel((0, 0)) == (127, 127, 127)  # 255 * 0.5 truncated, as ComfyUI writes images


def test_an_async_execute_also_runs_under_a_running_event_loop(specs):
    show = specs["V3ShowText"]
    expected = NodeOutput(("x @9",), {"text": ["x @9"]})

    async def inside_a_loop():
        blocking = show.function(text="x", case="keep", _v3_unique_id="9")  # runs on a helper thread
        awaited = await show.call_async(text="x", case="keep", _v3_unique_id="9")
        return blocking, awaited

    assert asyncio.run(inside_a_loop()) == (expected, expected)


def test_v3_classes_are_picked_out_of_a_classic_mapping(pack):
    nodes = v3_classes_in({"Repeat": pack.RepeatText, "Counter": pack.ClassicCounter},
                          {"Repeat": "Repeat (mapping)", "Counter": "Counter (mapping)"}, "mixed_pack")
    [spec] = nodes.specs
    assert (spec.name, spec.python_module) == ("Repeat", "mixed_pack")
    assert spec.display_name == "Repeat Text (V3)"  # as in ComfyUI, a V3 node's schema names it
    assert nodes.classic == {"Counter": pack.ClassicCounter}
    assert nodes.display_names == {"Counter": "Counter (mapping)"}
    assert is_v3_class(pack.RepeatText) and not is_v3_class(pack.ClassicCounter)


def test_a_bad_declaration_is_reported_per_node(pack):
    io = pack.io

    class Twice(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Twice", inputs=[io.Int.Input("n"), io.Float.Input("n")],
                             outputs=[io.Int.Output()])

        @classmethod
        def execute(cls, n):
            return io.NodeOutput(n)

    nodes = v3_classes_in({"Twice": Twice, "Repeat": pack.RepeatText})
    assert [spec.name for spec in nodes.specs] == ["Repeat"]
    assert nodes.failures["Twice"].startswith("ValueError: Input ids must be unique")
    with pytest.raises(ValueError, match="must be unique"):
        spec_from_v3(Twice)


@pytest.mark.parametrize("folder", ["ComfyUI-ppm", "ComfyUI-KJNodes", "RES4LYF"])
def test_every_v3_class_of_a_real_pack_converts(config, folder, capsys):
    path = REAL_PACKS / folder
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real packs are fetched for local runs only)")
    try:
        module = import_pack_path(path)
    except Exception as error:  # noqa: BLE001 - the pack may need ComfyUI modules not provided yet
        pytest.skip(f"{folder} does not import: {type(error).__name__}: {error}")
    mapping = getattr(module, "NODE_CLASS_MAPPINGS", None)
    nodes = (v3_classes_in(mapping, getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}), module.__name__)
             if mapping is not None else load_v3_extension(module))
    with capsys.disabled():
        print(f"\n{folder}: {len(nodes.specs)} V3 nodes converted, {len(nodes.failures)} failed, "
              f"{len(nodes.classic)} classic")
    assert nodes.specs and nodes.failures == {}
    for spec in nodes.specs:
        assert _json(spec.catalogue_entry(config))["input"]  # the catalogue renders every converted node


def test_block_execution_blocks_what_depends_on_it_and_the_rest_runs(session):
    workflow = {"1": {"class_type": "V3Gate", "inputs": {"text": "ab", "open": False}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": "keep"}},
                "3": {"class_type": "V3Gate", "inputs": {"text": "cd", "open": True}},
                "4": {"class_type": "V3ShowText", "inputs": {"text": ["3", 0], "case": "upper"}}}
    result = session.run(workflow)
    assert "2" not in result.ui_outputs  # blocked, as ComfyUI's ExecutionBlocker
    assert result.ui_outputs["4"]["text"] == ["CD @4"]  # ShowText appends its unique id


def test_an_expanding_v3_node_runs_the_graph_it_builds(session):
    workflow = {"1": {"class_type": "V3RepeatTwice", "inputs": {"text": "ab", "count": 2}},
                "2": {"class_type": "V3ShowText", "inputs": {"text": ["1", 0], "case": "keep"}}}
    result = session.run(workflow)
    assert result.ok, result.error
    assert result.ui_outputs["2"]["text"] == ["ab ab ab ab @2"]
