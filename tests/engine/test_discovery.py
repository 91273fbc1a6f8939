"""Pack discovery: folders and entry points, broken packs skipped with a reason, conflicts reported."""

from __future__ import annotations

import importlib.metadata
import sys
import textwrap

import pytest

from sigmagraph.engine import Config
from sigmagraph.engine import discovery
from sigmagraph.engine.cli import main
from sigmagraph.engine.testing import run
from sigmagraph.engine.session import Session

PACKS = {
    "good_pack.py": """
        from sigmagraph.engine import Float, Socket, SocketType, node
        SOCKET_TYPES = [SocketType(name="GOOD", color="#123456")]

        @node(returns=["GOOD"])
        def MakeGood(value: float = Float(1.5)):
            return value

        @node(output_node=True)
        def ShowGood(value=Socket("GOOD")):
            return {"ui": {"good": [value]}}
    """,
    "classic_pack/__init__.py": """
        class Doubler:
            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {"value": ("GOOD",), "times": ("INT", {"default": 2, "min": 1, "max": 8})}}
            RETURN_TYPES = ("GOOD", "GOOD")
            RETURN_NAMES = ("doubled", "parts")
            OUTPUT_IS_LIST = (False, True)
            FUNCTION = "double"
            CATEGORY = "classic"

            def double(self, value, times):
                return (value * times, [value] * times)

            @classmethod
            def IS_CHANGED(cls, **kwargs):
                return ""

        NODE_CLASS_MAPPINGS = {"Doubler": Doubler}
        NODE_DISPLAY_NAME_MAPPINGS = {"Doubler": "Doubler (classic)"}
        WEB_DIRECTORY = "./js"
    """,
    "syntax_error.py": "def broken(:\n",
    "raises_at_import.py": "raise RuntimeError('needs a GPU driver')\n",
    "invalid_spec.py": """
        from sigmagraph.engine import Int, node

        @node(returns=["INT"])
        def OutOfRange(value: int = Int(50, min=0, max=10)):
            return value
    """,
    "conflict.py": """
        from sigmagraph.engine import Float, node

        @node(returns=["LATENT"])
        def EmptyLatentImage(width: float = Float(1.0)):
            return None
    """,
    "skipped.py.disabled": "raise RuntimeError('never imported')\n",
}


@pytest.fixture
def pack_dir(tmp_path):
    folder = tmp_path / "custom_nodes"
    for name, source in PACKS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    (folder / "classic_pack" / "js").mkdir()
    (folder / "classic_pack" / "js" / "ext.js").write_text("export function setup() {}\n")
    yield folder
    for name in [m for m in sys.modules if m.startswith(discovery.PACKS_NAMESPACE)]:
        del sys.modules[name]


def test_broken_packs_are_skipped_with_one_line_each(pack_dir, tmp_path):
    registry = discovery.load_packs(Config(custom_nodes_dirs=(pack_dir,), output_dir=tmp_path / "out"))
    lines = [p.line() for p in registry.problems]
    assert any(line.startswith("skipped syntax_error.py: SyntaxError") for line in lines)
    assert "skipped raises_at_import.py: RuntimeError: needs a GPU driver" in lines
    assert any(line.startswith("skipped invalid_spec.py: ValidationError") and "outside [0, 10]" in line
               for line in lines)
    assert any("conflict.py: node EmptyLatentImage: node name 'EmptyLatentImage' is already defined by latent"
               in line for line in lines)
    assert not any("skipped.py" in line for line in lines)
    assert {"MakeGood", "ShowGood", "Doubler", "KSampler"} <= set(registry.nodes)
    assert registry.nodes["EmptyLatentImage"].python_module == "sigmagraph.nodes.packs.latent"  # built-in kept
    assert registry.types["GOOD"].color == "#123456"
    assert registry.web_directories["classic_pack"].endswith("classic_pack/js")


def test_the_good_packs_run(pack_dir, tmp_path):
    session = Session(Config(custom_nodes_dirs=(pack_dir,), output_dir=tmp_path / "out"))
    result = run(session, {"1": {"class_type": "MakeGood", "inputs": {"value": 2.0}},
                           "2": {"class_type": "Doubler", "inputs": {"value": ["1", 0], "times": 3}},
                           "3": {"class_type": "ShowGood", "inputs": {"value": ["2", 0]}},
                           "4": {"class_type": "ShowGood", "inputs": {"value": ["2", 1]}}})
    assert result.ui_outputs["3"]["good"] == [6.0] and result.ui_outputs["4"]["good"] == [2.0, 2.0, 2.0]


def test_disable_custom_nodes(pack_dir):
    registry = discovery.load_packs(Config(custom_nodes_dirs=(pack_dir,), disable_custom_nodes=True))
    assert "MakeGood" not in registry.nodes and not registry.problems and "KSampler" in registry.nodes


def test_entry_point_packs(tmp_path, monkeypatch):
    (tmp_path / "installed_pack.py").write_text(textwrap.dedent(PACKS["good_pack.py"]))
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin = list(importlib.metadata.entry_points(group=discovery.ENTRY_POINT_GROUP))
    extra = [importlib.metadata.EntryPoint("installed", "installed_pack", discovery.ENTRY_POINT_GROUP),
             importlib.metadata.EntryPoint("missing", "no_such_module_xyz", discovery.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(discovery, "entry_points", lambda group: builtin + extra)
    registry = discovery.load_packs(Config())
    assert "MakeGood" in registry.nodes and "KSampler" in registry.nodes
    assert [p.pack for p in registry.problems] == ["missing"]
    assert "MakeGood" not in discovery.load_packs(Config(disable_custom_nodes=True)).nodes


def test_cli_lists_nodes_and_problems(pack_dir, capsys):
    assert main(["nodes", "--custom-nodes-dir", str(pack_dir)]) == 0
    captured = capsys.readouterr()
    assert "Doubler" in captured.out and "skipped raises_at_import.py" in captured.err
