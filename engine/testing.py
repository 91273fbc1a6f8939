"""Helpers for testing node packs: a session with your pack loaded, runs that fail loudly, outputs.

    from sigmagraph.engine.testing import pack_session, run, output

    session = pack_session("custom_nodes/my_pack", tmp_path)
    result = run(session, workflow)          # raises AssertionError with the reason if it fails
    image = output(session, result, "7")     # the first value of node 7's first output
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from .config import Config
from .discovery import import_pack_path, load_packs
from .executor import RunResult
from .session import Session


def pack_session(packs: str | Path | ModuleType | Iterable[str | Path | ModuleType] = (),
                 tmp_path: Path | None = None, device: str = "cpu") -> Session:
    """A session with the built-in packs plus the given packs (paths or modules), folders under tmp_path."""
    root = Path(tmp_path) if tmp_path is not None else Path(".")
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device=device)
    registry = load_packs(config)
    for pack in [packs] if isinstance(packs, (str, Path, ModuleType)) else packs:
        module = pack if isinstance(pack, ModuleType) else import_pack_path(Path(pack))
        registry.load_module(module, module.__name__.rsplit(".", 1)[-1])
    problems = [p.line() for p in registry.problems]
    assert not problems, "node packs failed to load:\n" + "\n".join(problems)
    return Session(config, registry)


def run(session: Session, workflow: dict[str, Any]) -> RunResult:
    """Validates and runs a workflow; an invalid workflow or a failing node raises AssertionError."""
    checked = session.validate(workflow)
    assert checked.report.ok, "invalid workflow:\n" + "\n".join(checked.report.lines())  # every output valid
    result = session.run(checked)
    if not result.ok:
        error = result.error or {}
        detail = "".join(error.get("traceback") or [])
        raise AssertionError(f"node {error.get('node_id')} ({error.get('node_type')}) "
                             f"{result.status}: {error.get('exception_message', '')}\n{detail}")
    return result


def output(session: Session, result: RunResult, node_id: str, slot: int = 0) -> Any:
    """The first value of a node's output slot after a run (read from the session's cache)."""
    entry = session.executor.cache.get(result.keys[node_id])
    assert entry is not None, f"node {node_id}'s outputs are not cached (cache disabled or evicted)"
    return entry.outputs[slot][0]
