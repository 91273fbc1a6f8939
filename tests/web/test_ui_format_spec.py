"""One set of UI-format rules: the engine's converter and the editor's (web/ui_format.js) on the same cases.

tests/web/ui_format_cases.json holds ComfyUI UI-format documents with the API prompts they stand for,
written out by hand. Both converters must give exactly those prompts, so neither can drift from the
other or from ComfyUI. The editor's modules run in Node (no browser): the converter, and the graph
model's load → save round trip, which must keep groups, notes, reroutes, sizes, colours and modes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sigmagraph.engine import Registry
from sigmagraph.engine.ui_format import ui_to_api
from sigmagraph.nodes.packs import image_output

from ..engine import testing_pack
from . import image_pack
from .live_server import folders_config

REPO = Path(__file__).resolve().parents[2]
CASES = json.loads((Path(__file__).with_name("ui_format_cases.json")).read_text())["cases"]

# Reads {objectInfo, documents} on stdin; prints, per document, the converter's prompt, the prompt of
# the graph model's save of it, and that save itself.
RUNNER = """
import { readCatalogue } from "./web/catalogue.js";
import { Graph } from "./web/graph.js";
import { uiToApi } from "./web/ui_format.js";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { objectInfo, documents } = JSON.parse(input);
const catalogue = readCatalogue(objectInfo);
const results = documents.map((doc) => {
  const graph = new Graph(catalogue);
  graph.loadUi(doc);
  const saved = graph.toUi();
  return { converted: uiToApi(doc, catalogue), resaved: uiToApi(saved, catalogue), saved };
});
process.stdout.write(JSON.stringify(results));
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    registry = Registry()
    for module, pack in ((testing_pack, "testing"), (image_output, "image_output"), (image_pack, "image_pack")):
        registry.load_module(module, pack)
    assert not registry.problems, registry.problems
    return registry


@pytest.fixture(scope="module")
def editor_results(registry, tmp_path_factory) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is absent (apt-get install nodejs); it runs the editor's modules")
    object_info = registry.catalogue(folders_config(tmp_path_factory.mktemp("spec")))
    documents = [case["ui"] for case in CASES]
    completed = subprocess.run([node, "--input-type=module", "--eval", RUNNER],
                               input=json.dumps({"objectInfo": object_info, "documents": documents}),
                               capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def without_controls(prompt: dict) -> dict:
    """The prompt without `_meta.control_after_generate`, which only the editor keeps."""
    return {nid: {**entry, "_meta": {k: v for k, v in entry["_meta"].items() if k != "control_after_generate"}}
            for nid, entry in prompt.items()}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_engine_converts_as_comfyui_does(case, registry):
    assert ui_to_api(case["ui"], registry) == without_controls(case["api"])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_the_editor_converts_as_comfyui_does(index, editor_results):
    assert editor_results[index]["converted"] == CASES[index]["api"]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_the_editor_saves_what_it_loaded(index, editor_results):
    """Loaded into the graph model and saved again, a UI document still stands for the same prompt."""
    assert editor_results[index]["resaved"] == CASES[index]["api"]


def test_the_editor_keeps_groups_notes_reroutes_and_layout(editor_results):
    original = CASES[1]["ui"]
    saved = editor_results[1]["saved"]
    assert saved["groups"] == original["groups"]
    by_id = {n["id"]: n for n in saved["nodes"]}
    assert by_id[10]["type"] == "Note" and by_id[10]["widgets_values"] == ["a note"]
    assert by_id[4]["type"] == "Reroute" and by_id[4]["inputs"][0]["link"] is not None
    assert (by_id[7]["mode"], by_id[9]["mode"]) == (4, 2)
    assert by_id[5]["title"] == "My sum"
    assert (by_id[5]["size"], by_id[5]["color"], by_id[5]["bgcolor"]) == ([260, 120], "#223", "#335")
    assert by_id[3]["flags"] == {"collapsed": True}
    # The PrimitiveNode is folded into the widget it fed: the value stays, the extra node goes.
    assert 6 not in by_id and by_id[5]["widgets_values"] == [3]
