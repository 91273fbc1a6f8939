"""The `sigmagraph` command: run, validate, nodes (and serve).

Exit codes: 0 success; 1 a node failed or the run was interrupted; 2 the workflow is invalid
(no output node is valid) or the arguments are wrong. Invalid outputs beside valid ones are
printed as warnings, and the valid ones run, as ComfyUI does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from .config import Config
from .events import EXECUTED, EXECUTING, EXECUTION_ERROR, EXECUTION_INTERRUPTED, PREVIEW, PROGRESS
from .plan import natural_key
from .session import Session
from .validation import ValidationReport
from .workflow import WorkflowError

OK, FAILED, INVALID = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits with 2 too; keep its usage line
        self.print_usage(sys.stderr)
        self.exit(INVALID, f"{self.prog}: error: {message}\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", type=Path, help="models folder (default $SIGMAGRAPH_MODELS_DIR or ./models)")
    p.add_argument("--custom-nodes-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of custom node packs (repeatable)")
    p.add_argument("--disable-custom-nodes", action="store_true", help="load only the built-in node packs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sigmagraph", description="Node-graph engine for diffusion image generation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run a workflow headless (JSON in API or UI format, or a PNG)")
    run.add_argument("workflow", type=Path)
    run.add_argument("--output-dir", type=Path, default=Path("output"))
    run.add_argument("--input-dir", type=Path, default=Path("input"))
    run.add_argument("--set", action="append", default=[], metavar="NODE_ID.INPUT=VALUE",
                     help="override an input (VALUE is JSON, else a string); repeatable")
    run.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    run.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], help="weight dtype (default: per device)")
    run.add_argument("--json", action="store_true", help="print one JSON object per event instead of progress bars")
    _add_common(run)
    validate = sub.add_parser("validate", help="check a workflow without running it")
    validate.add_argument("workflow", type=Path)
    _add_common(validate)
    nodes = sub.add_parser("nodes", help="list the node catalogue")
    nodes.add_argument("--json", action="store_true", help="the same document as GET /object_info")
    _add_common(nodes)
    serve = sub.add_parser("serve", help="start the HTTP/websocket API and the canvas editor")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8188, help="port (default 8188; 0 picks a free one)")
    serve.add_argument("--output-dir", type=Path, default=Path("output"))
    serve.add_argument("--input-dir", type=Path, default=Path("input"))
    serve.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    serve.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], help="weight dtype (default: per device)")
    serve.add_argument("--enable-cors-header", nargs="?", const="*", default=None, metavar="ORIGIN",
                       help="let browser pages from ORIGIN call the API (no ORIGIN: any page; unsafe)")
    serve.add_argument("--max-upload-size", type=_megabytes, default=100.0, metavar="MB",
                       help="largest accepted request body, uploads included (default 100)")
    _add_common(serve)
    return parser


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def _megabytes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive size in MB")
    return value


def _config(args: argparse.Namespace) -> Config:
    fields: dict[str, Any] = {"custom_nodes_dirs": tuple(args.custom_nodes_dir),
                              "disable_custom_nodes": args.disable_custom_nodes}
    if args.models_dir:
        fields["models_dir"] = args.models_dir
    for name in ("output_dir", "input_dir", "dtype"):
        if getattr(args, name, None):
            fields[name] = getattr(args, name)
    if getattr(args, "cpu", False):
        fields["device"] = "cpu"
    return Config(**fields)


def apply_overrides(workflow: dict[str, Any], overrides: Sequence[str]) -> None:
    """Applies `--set NODE_ID.INPUT=VALUE` overrides (raises WorkflowError naming the bad one)."""
    for item in overrides:
        target, sep, raw = item.partition("=")
        node_id, dot, input_name = target.partition(".")
        if not sep or not dot or not node_id or not input_name:
            raise WorkflowError(f"--set {item!r}: expected NODE_ID.INPUT=VALUE")
        if node_id not in workflow:
            raise WorkflowError(f"--set {item!r}: the workflow has no node {node_id!r} "
                                f"(nodes: {', '.join(sorted(workflow))})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        workflow[node_id].setdefault("inputs", {})[input_name] = value


def _print_report(report: ValidationReport, as_json: bool, runnable: bool = False) -> None:
    """The problems of a workflow; when `runnable`, as warnings about the outputs that will not be produced."""
    if as_json:
        kind = "validation_warning" if runnable else "validation_error"
        print(json.dumps({"type": kind, "data": report.to_json()}), flush=True)
        return
    skipped = sorted({o for entry in report.node_errors.values() for o in entry["dependent_outputs"]}, key=natural_key)
    print(f"warning: skipping output node(s) {', '.join(skipped)}, which are invalid:" if runnable
          else "The workflow is invalid:", file=sys.stderr)
    for line in report.lines():
        print(f"  {line}", file=sys.stderr)


class _TerminalProgress:
    """Renders events as one tqdm bar per long node, and collects the files written."""

    def __init__(self, session: Session, workflow: dict[str, Any]):
        self.session, self.workflow = session, workflow
        self.bar = None
        self.files: list[Path] = []

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        from tqdm import tqdm

        if event == PROGRESS:
            if self.bar is None or self.bar.total != data["max"] or getattr(self.bar, "node", None) != data["node"]:
                self._close()
                title = self.workflow.get(data["node"], {}).get("class_type", data["node"])
                self.bar = tqdm(total=data["max"], desc=f"{data['node']} {title}", file=sys.stderr, leave=True)
                self.bar.node = data["node"]
            self.bar.update(data["value"] - self.bar.n)
        elif event in (EXECUTING, EXECUTION_ERROR, EXECUTION_INTERRUPTED):
            self._close()
        if event == EXECUTED:
            for image in data["output"].get("images", []):
                folder = self.session.config.folder(image.get("type", "output"))
                self.files.append(folder / image.get("subfolder", "") / image["filename"])

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _json_events(event: str, data: dict[str, Any]) -> None:
    if event != PREVIEW:
        print(json.dumps({"type": event, "data": data}, default=str), flush=True)


def _command_run(session: Session, args: argparse.Namespace) -> int:
    workflow = session.load(args.workflow)
    apply_overrides(workflow, args.set)
    checked = session.validate(workflow)
    if not checked.report.ok:
        _print_report(checked.report, args.json, runnable=checked.ok)
    if not checked.ok:
        return INVALID
    sink = _json_events if args.json else _TerminalProgress(session, workflow)
    result = session.run(checked, on_event=sink)
    if result.status == "error":
        if not args.json:
            error = result.error or {}
            print(f"node {error.get('node_id')} ({error.get('node_type')}) failed: {error.get('exception_message')}",
                  file=sys.stderr)
        return FAILED
    if result.status == "interrupted":
        return FAILED
    if not args.json:
        for path in sink.files:
            print(path)
    return OK


def _command_validate(session: Session, args: argparse.Namespace) -> int:
    checked = session.validate(session.load(args.workflow))
    if not checked.report.ok:
        _print_report(checked.report, False, runnable=checked.ok)
    if not checked.ok:
        return INVALID
    print(f"{args.workflow}: valid" if checked.report.ok else f"{args.workflow}: runnable (outputs "
          f"{', '.join(checked.outputs)})")
    return OK


def _command_nodes(session: Session, args: argparse.Namespace) -> int:
    catalogue = session.registry.catalogue(session.config)
    if args.json:
        print(json.dumps(catalogue, indent=1))
        return OK
    for name, entry in catalogue.items():
        print(f"{name:32s} {entry['category']:40s} -> {', '.join(entry['output']) or '(output node)'}")
    for problem in session.registry.problems:
        print(problem.line(), file=sys.stderr)
    return OK


def _command_serve(session: Session, args: argparse.Namespace) -> int:
    from .server import ServerOptions, serve  # aiohttp is imported only by the command that needs it
    from .server.options import MEGABYTE

    return serve(session, ServerOptions(host=args.host, port=args.port, cors_origin=args.enable_cors_header,
                                        max_upload_bytes=round(args.max_upload_size * MEGABYTE)))


COMMANDS = {"run": _command_run, "validate": _command_validate, "nodes": _command_nodes, "serve": _command_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sigmagraph` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    session = Session(_config(args))
    try:
        return COMMANDS[args.command](session, args)
    except WorkflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return INVALID
    except KeyboardInterrupt:
        session.interrupt.request()
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
