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


def with_packs(monkeypatch, points=None, loaders=()):
    """Makes `points` the installed node-pack entry points (None: those installed) and `loaders` the pack loaders."""
    installed = importlib.metadata.entry_points
    groups = {discovery.LOADER_GROUP: list(loaders)}
    if points is not None:
        groups[discovery.ENTRY_POINT_GROUP] = points
    monkeypatch.setattr(discovery, "entry_points", lambda group: groups[group] if group in groups
                        else installed(group=group))


@pytest.fixture(autouse=True)
def engine_only(monkeypatch):
    """The engine's own behaviour: no pack loader (the ComfyUI one is tested in tests/compat)."""
    with_packs(monkeypatch)


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
    with_packs(monkeypatch, builtin + extra)
    registry = discovery.load_packs(Config())
    assert "MakeGood" in registry.nodes and "KSampler" in registry.nodes
    assert [p.pack for p in registry.problems] == ["missing"]
    assert "MakeGood" not in discovery.load_packs(Config(disable_custom_nodes=True)).nodes


def test_a_package_of_packs_registers_each_member_as_a_pack(tmp_path, monkeypatch):
    package = tmp_path / "pack_collection"
    package.mkdir()
    (package / "__init__.py").write_text('NODE_PACKS = ("good", "broken")\n')
    (package / "good.py").write_text(textwrap.dedent(PACKS["good_pack.py"]))
    (package / "broken.py").write_text(PACKS["raises_at_import.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    builtin = list(importlib.metadata.entry_points(group=discovery.ENTRY_POINT_GROUP))
    collection = importlib.metadata.EntryPoint("collection", "pack_collection", discovery.ENTRY_POINT_GROUP)
    with_packs(monkeypatch, builtin + [collection])
    registry = discovery.load_packs(Config())
    assert registry.node_pack["MakeGood"] == "collection:good" and registry.node_pack["KSampler"] == "sampling"
    assert [p.line() for p in registry.problems] == ["skipped collection:broken: RuntimeError: needs a GPU driver"]
    for name in [m for m in sys.modules if m.startswith("pack_collection")]:
        del sys.modules[name]


def test_cli_lists_nodes_and_problems(pack_dir, capsys):
    assert main(["nodes", "--custom-nodes-dir", str(pack_dir)]) == 0
    captured = capsys.readouterr()
    assert "Doubler" in captured.out and "skipped raises_at_import.py" in captured.err


class RecordingLoader:
    """A pack loader that records what discovery asks of it, and makes one spec of its own per pack."""

    def __init__(self):
        self.calls: list[tuple] = []

    def prepare(self, config):
        self.calls.append(("prepare",))

    def node_specs(self, module, pack):
        from sigmagraph.engine.registry import PackProblem
        from sigmagraph.engine.spec import NodeSpec, OutputSpec

        self.calls.append(("node_specs", pack))
        if not hasattr(module, "NODE_CLASS_MAPPINGS"):
            return [], []
        made = NodeSpec(name=f"Loaded_{module.__name__.rsplit('.', 1)[-1]}", display_name="made by the loader",
                        outputs=(OutputSpec(type="INT", name="INT"),), function=lambda: 1)
        return [made], [PackProblem(pack, "the loader refused it", "Refused")]

    def wrap_classic(self, cls, spec):
        self.calls.append(("wrap_classic", spec.name))
        return spec.model_copy(update={"category": "wrapped"})

    def after_pack(self, module, pack):
        self.calls.append(("after_pack", pack))


RECORDER = RecordingLoader()


def test_custom_packs_go_through_the_pack_loaders_in_comfyuis_order(tmp_path, monkeypatch):
    folder = tmp_path / "custom_nodes"
    (folder / "b_pack").mkdir(parents=True)
    (folder / "b_pack" / "__init__.py").write_text(textwrap.dedent("""
        from tests.engine.test_discovery import RECORDER
        RECORDER.calls.append(("import", "b_pack"))

        class Kept:
            @classmethod
            def INPUT_TYPES(cls):
                return {"required": {}}
            RETURN_TYPES = ("INT",)
            FUNCTION = "run"
            def run(self):
                return (1,)

        NODE_CLASS_MAPPINGS = {"Kept": Kept, "Refused": Kept}
    """))
    (folder / "z_pack").mkdir()
    (folder / "z_pack" / "__init__.py").write_text("")
    (folder / "z_pack" / "prestartup_script.py").write_text(
        "from tests.engine.test_discovery import RECORDER\nRECORDER.calls.append(('prestartup', 'z_pack'))\n")
    RECORDER.calls.clear()
    with_packs(monkeypatch, loaders=[importlib.metadata.EntryPoint(
        "recording", "tests.engine.test_discovery:RECORDER", discovery.LOADER_GROUP)])
    registry = discovery.load_packs(Config(custom_nodes_dirs=(folder,)))
    assert RECORDER.calls == [("prepare",), ("prestartup", "z_pack"), ("import", "b_pack"), ("node_specs", "b_pack"),
                              ("wrap_classic", "Kept"), ("after_pack", "b_pack"), ("node_specs", "z_pack"),
                              ("after_pack", "z_pack")]
    assert registry.nodes["Kept"].category == "wrapped" and "Loaded_b_pack" in registry.nodes
    assert "Refused" not in registry.nodes  # the loader's refusal stands: no classic conversion behind it
    assert [p.line() for p in registry.problems] == ["skipped b_pack: node Refused: the loader refused it"]
    assert registry.loaders == [RECORDER] and registry.nodes["KSampler"].category != "wrapped"


def test_without_custom_packs_no_loader_is_imported(monkeypatch):
    with_packs(monkeypatch, loaders=[importlib.metadata.EntryPoint(
        "absent", "no_such_loader_module_xyz:LOADER", discovery.LOADER_GROUP)])
    registry = discovery.load_packs(Config())
    assert not registry.problems and registry.loaders == [] and "no_such_loader_module_xyz" not in sys.modules


def write_pack(folder, name, source, requirements=None):
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(textwrap.dedent(source))
    if requirements is not None:
        (folder / name / "requirements.txt").write_text(requirements)


def test_packs_load_as_comfyui_loads_them(tmp_path, capsys):
    folder = tmp_path / "custom_nodes"
    write_pack(folder, "a_printing", """
        import sys
        print("a banner")
        before = set(sys.modules)
        import colorsys, json  # colorsys is new here; json was loaded before
        NODE_CLASS_MAPPINGS = {}
        for name in set(sys.modules) - before:
            del sys.modules[name]
        del sys.modules["json"]  # a rougher purge: a module loaded before the pack
    """)
    write_pack(folder, "b_lacking", "import sigmagraph_absent_dependency_xyz\n", requirements="xyz\n")
    write_pack(folder, "c_swallowing", """
        try:
            from sigmagraph_absent_helper_xyz import Node
        except ImportError:
            print("could not load the helpers")
        NODE_CLASS_MAPPINGS = {"Node": Node}
    """)
    (folder / "d_file_pack.py").write_text(textwrap.dedent(PACKS["good_pack.py"]))
    import json

    registry = discovery.load_packs(Config(custom_nodes_dirs=(folder,)))
    out, err = capsys.readouterr()
    assert out == "" and "a banner" in err and "could not load the helpers" in err
    assert sys.modules["json"] is json  # the modules loaded before a pack stay
    assert [p.line() for p in registry.problems] == [
        f"skipped b_lacking: needs the Python module 'sigmagraph_absent_dependency_xyz' "
        f"(see {folder / 'b_lacking' / 'requirements.txt'}; install it with pip)",
        "skipped c_swallowing: NameError: name 'Node' is not defined "
        "(modules not found while it loaded: sigmagraph_absent_helper_xyz)"]
    # ComfyUI's catalogue names a folder pack's module custom_nodes.<name> (a file pack's without .py)
    assert registry.nodes["MakeGood"].python_module == "custom_nodes.d_file_pack"


def test_a_failing_prestartup_script_is_a_warning(tmp_path):
    folder = tmp_path / "custom_nodes"
    write_pack(folder, "pack", PACKS["good_pack.py"])
    (folder / "pack" / "prestartup_script.py").write_text("raise OSError('no GPU')\n")
    registry = discovery.load_packs(Config(custom_nodes_dirs=(folder,)))
    assert "MakeGood" in registry.nodes and not registry.problems
    assert [w.line() for w in registry.warnings] == ["warning: pack: its prestartup_script.py failed: OSError: no GPU"]
