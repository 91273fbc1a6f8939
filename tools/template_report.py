"""ComfyUI's official workflow templates against Sigmagraph: how many load, convert and validate.

Every workflow of the `comfyui-workflow-templates-json` package (pip install
comfyui-workflow-templates-json) is converted from ComfyUI's UI format with the built-in node packs
and validated, then classified:
- refused: the conversion raised a WorkflowError;
- missing node types: its API graph uses node types that no built-in pack defines;
- unsupported model family: every node type exists, but a loader's `type` (the model family of a
  text encoder) is one the packs cannot load yet;
- validates: every node type exists and validation reports nothing but model or input files that
  are not installed;
- invalid: any other validation error.

    python tools/template_report.py                            # prints the counts and the table
    python tools/template_report.py --write docs/compatibility.md  # rewrites its "Official templates" section
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from sigmagraph.engine import Config, Registry, Session
from sigmagraph.engine.spec import ComboInput
from sigmagraph.engine.ui_format import ui_to_api
from sigmagraph.engine.workflow import WorkflowError

PACKAGE = "comfyui_workflow_templates_json"
NOT_WORKFLOWS = {"fuse_options.json"}  # and the index*.json catalogues
SECTION = "## Official templates"
TABLE_MIN = 5  # the table lists the node types that block at least this many templates


@dataclass(frozen=True)
class TemplateResult:
    """What became of one template."""

    name: str
    status: str
    uses_subgraphs: bool
    missing: tuple[str, ...] = ()  # node types no pack defines
    problems: tuple[str, ...] = ()  # the refusal, or the validation errors that are not missing files


def template_files() -> list[Path]:
    """The workflow files of the templates package (ImportError when it is not installed)."""
    folder = Path(str(files(PACKAGE) / "templates"))
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("index") and p.name not in NOT_WORKFLOWS)


def _input_spec(registry: Registry, class_type: str, input_name: str | None) -> Any:
    spec = registry.nodes.get(class_type)
    return spec.input(input_name) if spec is not None and input_name else None


def _is_missing_file(registry: Registry, class_type: str, error: dict[str, Any]) -> bool:
    inp = _input_spec(registry, class_type, error["extra_info"].get("input_name"))
    return error["type"] == "value_not_in_list" and isinstance(inp, ComboInput) and inp.files_in is not None


def _is_model_family(registry: Registry, class_type: str, error: dict[str, Any]) -> bool:
    """A loader's `type` choice: the family of the model it loads."""
    spec = registry.nodes.get(class_type)
    loads_files = spec is not None and any(isinstance(i, ComboInput) and i.files_in for i in spec.inputs)
    return error["type"] == "value_not_in_list" and error["extra_info"].get("input_name") == "type" and loads_files


def check_template(path: Path, session: Session) -> TemplateResult:
    """Converts and validates one template file."""
    document = json.loads(path.read_text(encoding="utf-8"))
    uses_subgraphs = bool((document.get("definitions") or {}).get("subgraphs"))
    try:
        api = ui_to_api(document, session.registry)
    except WorkflowError as e:
        return TemplateResult(path.name, "refused", uses_subgraphs, problems=(str(e),))
    missing = tuple(sorted({n["class_type"] for n in api.values() if n["class_type"] not in session.registry.nodes}))
    if missing:
        return TemplateResult(path.name, "missing node types", uses_subgraphs, missing)
    report = session.validate(api).report
    errors = [(node_id, entry["class_type"], e)
              for node_id, entry in report.node_errors.items() for e in entry["errors"]]
    remaining = [(n, c, e) for n, c, e in errors if not _is_missing_file(session.registry, c, e)]
    problems = tuple(f"node {n} ({c}): {e['message']}" for n, c, e in remaining)
    problems += (report.error["message"],) if report.error else ()
    if not problems:
        status = "validates"
    elif report.error is None and all(_is_model_family(session.registry, c, e) for _, c, e in remaining):
        status = "unsupported model family"
    else:
        status = "invalid"
    return TemplateResult(path.name, status, uses_subgraphs, problems=problems)


def survey(session: Session) -> list[TemplateResult]:
    """Every template, checked."""
    return [check_template(path, session) for path in template_files()]


def markdown(results: list[TemplateResult]) -> str:
    """The "Official templates" section of docs/compatibility.md."""
    counts = Counter(r.status for r in results)
    blocking = Counter(t for r in results for t in r.missing)
    only = Counter(r.missing[0] for r in results if len(r.missing) == 1)
    version = importlib.metadata.version("comfyui-workflow-templates-json")
    lines = [
        SECTION, "",
        f"ComfyUI's {len(results)} official workflow templates (`comfyui-workflow-templates-json` {version}), "
        "converted from ComfyUI's UI format with the built-in node packs and validated "
        "(`python tools/template_report.py --write docs/compatibility.md` rewrites this section; "
        "`tests/compat/test_templates.py` checks it).", "",
        f"- loaded and converted: {len(results) - counts['refused']} of {len(results)} "
        f"({sum(r.uses_subgraphs for r in results)} use subgraphs); refused: {counts['refused']}",
        f"- validate, apart from model and input files that are not installed: {counts['validates']}",
        f"- every node type exists, but a loader's model family is not supported yet: "
        f"{counts['unsupported model family']}",
        f"- other validation errors: {counts['invalid']}",
        f"- need node types the built-in packs do not define: {counts['missing node types']}", "",
    ]
    for status in ("validates", "unsupported model family", "invalid"):
        named = [r for r in results if r.status == status]
        if named:
            lines.append(f"{status.capitalize()}: " + ", ".join(f"`{r.name}`" for r in named) + ".")
            lines += [f"  - `{r.name}`: {p}" for r in named if status != "validates" for p in r.problems]
            lines.append("")
    rows = sorted(((t, n) for t, n in blocking.items() if n >= TABLE_MIN), key=lambda kv: (-kv[1], kv[0]))
    lines += [f"Missing node types that block {TABLE_MIN} templates or more, by the number of templates each one "
              "blocks (\"alone\": of those, the templates that need no other missing type):", "",
              "| node type | templates | alone |", "| --- | ---: | ---: |"]
    lines += [f"| `{t}` | {n} | {only[t]} |" for t, n in rows]
    lines += ["", f"Another {len(blocking) - len(rows)} missing node types block fewer than {TABLE_MIN} "
              "templates each."]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replaces the section of a Markdown file that `section` heads (up to the next `## `), or appends it."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Compatibility with ComfyUI\n"
    heading = section.splitlines()[0]
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        after = text[end + 1:] if end >= 0 else ""
        text = text[:start] + section + ("\n" + after if after else "")
    path.write_text(text, encoding="utf-8")


def publish(section: str, path: Path | None) -> None:
    """Prints a section, and writes it into the Markdown file `path` when one is given."""
    if path is not None:
        write_section(path, section)
    sys.stdout.write(section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, metavar="MARKDOWN", help="rewrite this file's Official templates section")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        folders = {name: Path(root) / name for name in ("models", "output", "input", "temp")}
        config = Config(models_dir=folders["models"], output_dir=folders["output"], input_dir=folders["input"],
                        temp_dir=folders["temp"], device="cpu", disable_custom_nodes=True)
        publish(markdown(survey(Session(config))), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
