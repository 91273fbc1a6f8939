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

from .batch import BatchReport, batch_prompt, expand_sweeps, run_in_turn, run_on_pool, written_files
from .config import Config
from .events import EXECUTED, EXECUTING, EXECUTION_ERROR, EXECUTION_INTERRUPTED, PREVIEW, PROGRESS
from .plan import natural_key
from .session import Session
from .validation import ValidatedWorkflow, ValidationReport
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
    run = sub.add_parser("run", help="run workflows headless (JSON in API or UI format, or PNGs)")
    run.add_argument("workflow", type=Path, nargs="+", help="one or more workflows (several run as a batch)")
    run.add_argument("--output-dir", type=Path, default=Path("output"))
    run.add_argument("--input-dir", type=Path, default=Path("input"))
    run.add_argument("--set", action="append", default=[], metavar="NODE_ID.INPUT=VALUE",
                     help="override an input (VALUE is JSON, else a string); A..B sweeps the integers from A "
                          "to B, one prompt each; repeatable")
    run.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    run.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], help="weight dtype (default: per device)")
    run.add_argument("--json", action="store_true", help="print one JSON object per event instead of progress bars")
    _add_workers(run)
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
    serve.add_argument("--state-dir", default="state", metavar="DIR",
                       help="where the queue and history are kept across restarts (default ./state; "
                            "':memory:' keeps nothing)")
    serve.add_argument("--front-end", default="sigmagraph", metavar="sigmagraph|comfyui|PATH",
                       help="what / serves: Sigmagraph's canvas editor (default), ComfyUI's own front end "
                            "(pip install 'sigmagraph[comfyui-frontend]'), or the folder of a built front end")
    _add_workers(serve)
    _add_common(serve)
    return parser


def _add_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", metavar="auto|ray://HOST:PORT",
                   help="run prompts on a pool of Ray workers: 'auto' joins the local cluster or starts one, "
                        "ray://HOST:PORT connects to a remote one (needs the ray extra)")
    p.add_argument("--num-workers", type=_positive, metavar="N", help="workers in the pool (default: 2)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive count")
    return value


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
            self.files += written_files(self.session.config, {data["node"]: data["output"]})

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _json_events(event: str, data: dict[str, Any]) -> None:
    if event != PREVIEW:
        print(json.dumps({"type": event, "data": data}, default=str), flush=True)


def _command_run(session: Session, args: argparse.Namespace) -> int:
    combinations = expand_sweeps(args.set)
    if len(args.workflow) == 1 and len(combinations) == 1 and not args.workers:
        return _run_one(session, args.workflow[0], combinations[0], args)
    return _run_batch(session, args, combinations)


def _run_batch(session: Session, args: argparse.Namespace, combinations: list[list[str]]) -> int:
    """Every workflow with every sweep combination: all validated first, then run in turn or on the pool."""
    prompts = []
    for path in args.workflow:
        base = session.load(path)
        for overrides in combinations:
            workflow = json.loads(json.dumps(base))  # a copy per prompt: overrides must not leak between them
            checked = _checked(session, workflow, overrides, args.json)
            if checked is None:
                return INVALID
            label = path.name if len(combinations) == 1 else f"{path.name} {' '.join(overrides)}"
            prompts.append(batch_prompt(label, workflow, checked))
    report = BatchReport(len(prompts), args.json)
    if args.workers:
        from .server.ray_workers import RayMissing

        try:
            run_on_pool(session, prompts, args.workers, args.num_workers, report)
        except RayMissing as e:
            print(f"error: {e}", file=sys.stderr)
            return INVALID
    else:
        run_in_turn(session, prompts, report)
    report.summary()
    return OK if report.ok else FAILED


def _checked(session: Session, workflow: dict[str, Any], overrides: list[str],
             as_json: bool) -> ValidatedWorkflow | None:
    """The workflow with its overrides, validated (its problems printed); None when nothing of it can run."""
    apply_overrides(workflow, overrides)
    checked = session.validate(workflow)
    if not checked.report.ok:
        _print_report(checked.report, as_json, runnable=checked.ok)
    return checked if checked.ok else None


def _run_one(session: Session, path: Path, overrides: list[str], args: argparse.Namespace) -> int:
    workflow = session.load(path)
    checked = _checked(session, workflow, overrides, args.json)
    if checked is None:
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
    from .server.front_end import FrontEndMissing, front_end_root
    from .server.options import MEGABYTE

    try:
        web_root = front_end_root(args.front_end)
    except FrontEndMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return INVALID
    return serve(session, ServerOptions(host=args.host, port=args.port, cors_origin=args.enable_cors_header,
                                        web_root=web_root,
                                        max_upload_bytes=round(args.max_upload_size * MEGABYTE),
                                        state_dir=args.state_dir, workers=args.workers,
                                        num_workers=args.num_workers))


CONSOLE_LOG_FORMAT = "%(name)s: %(message)s"  # also the server's log for the front end (server/logs.py)
COMMANDS = {"run": _command_run, "validate": _command_validate, "nodes": _command_nodes, "serve": _command_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sigmagraph` console script."""
    logging.basicConfig(level=logging.WARNING, format=CONSOLE_LOG_FORMAT)
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
