"""A demo model: how fast its workflow runs from the command line, and how well samplers follow prompts per call.

1. Wall time of `sigmagraph run workflows/<the model's workflow>` in a fresh process, five times —
   process start, imports, node discovery, checkpoint load, 20 sampling steps with CFG, decode
   and four PNGs saved — next to a bare `python -c "import torch"` for scale. For the flow demo
   this is the README's first command (workflows/default.json).
2. Prompt following (nodes/demo/quality.py: caption promises kept, colour accuracy, shapes kept)
   over the 12 evaluation captions x 4 seeds, for several samplers at 4, 6, 10 and 20 model calls
   on the workflow's schedule (flow: simple; SD: Karras) and CFG.
3. Accuracy: RMS distance to the converged picture (dpmpp_2m, 200 steps) at 5, 10 and 20 model
   calls, unguided (CFG 1: the network's own ODE) and at the workflow's CFG.

Writes benchmarks/results/demo-flow.md or demo.md (SD). A few minutes on two CPU cores.

    python benchmarks/demo.py [--model flow|sd]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sigmagraph.engine import Config, Session
from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS
from sigmagraph.nodes.demo.generate import LATENT, SAMPLER, shipped_workflow, txt2img
from sigmagraph.nodes.demo.quality import EVALUATION_CAPTIONS, quality

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Model calls per step of each sampler, as the sampler benchmark documents them (CFG's halves are one call).
from benchmarks.samplers import steps_for_budget  # noqa: E402
RESULTS = {"flow": ROOT / "benchmarks" / "results" / "demo-flow.md", "sd": ROOT / "benchmarks" / "results" / "demo.md"}
SEEDS = 4
BUDGETS = (4, 6, 10, 20)
ACCURACY_BUDGETS = (5, 10, 20)
ACCURACY_SAMPLERS = ("euler", "heun", "lms", "dpmpp_2m", "ipndm", "uni_pc", "deis")
SAMPLERS = ("euler", "euler_ancestral", "heun", "lms", "dpmpp_2m", "dpmpp_2m_sde", "ipndm", "uni_pc", "deis")


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", choices=sorted(DEMO_MODELS), default="flow")
    args = parser.parse_args()
    model = DEMO_MODELS[args.model]
    workflow = shipped_workflow(model.workflow)
    settings = workflow[SAMPLER]["inputs"]
    assert workflow[LATENT]["inputs"]["batch_size"] == 4
    schedule, cfg_default = settings["scheduler"], settings["cfg"]
    lines = [f"# Demo model benchmark: {model.path.name}", ""]
    with tempfile.TemporaryDirectory() as folder:
        first = wall_times(["sigmagraph", "run", f"workflows/{model.workflow}", "--output-dir", folder], 5)
        bare = wall_times([sys.executable, "-c", "import torch"], 3)
        lines += [f"## `sigmagraph run workflows/{model.workflow}`, fresh process", "",
                  f"- wall time: median {statistics.median(first):.2f} s, best {min(first):.2f} s, "
                  f"worst {max(first):.2f} s (5 runs)",
                  f"- of which `python -c 'import torch'` alone: median {statistics.median(bare):.2f} s", ""]
        print("\n".join(lines[-4:]), flush=True)

        session = Session(Config(models_dir=Path(folder) / "models", output_dir=Path(folder) / "out",
                                 temp_dir=Path(folder) / "temp", input_dir=Path(folder) / "in",
                                 disable_custom_nodes=True))
        lines += [f"## Prompt following per model call ({settings['sampler_name']} {settings['steps']} steps is the "
                  "default)", "",
                  f"{len(EVALUATION_CAPTIONS)} captions x {SEEDS} seeds, {schedule} schedule, CFG {cfg_default:g}. "
                  "Each cell: share of caption promises kept / colour accuracy of the regions / shapes kept.", "",
                  "| sampler | " + " | ".join(f"{b} calls" for b in BUDGETS) + " |",
                  "|---|" + "---|" * len(BUDGETS)]
        for sampler in SAMPLERS:
            cells = []
            for budget in BUDGETS:
                steps = steps_for_budget(sampler, budget)
                pictures = [(image, caption) for caption in EVALUATION_CAPTIONS
                            for image in txt2img(session, caption, seed=100, batch=SEEDS, model=model, steps=steps,
                                                 sampler_name=sampler, scheduler=schedule)]
                report = quality(pictures)
                cells.append(f"{report.kept_share:.0%} / {report.colour_accuracy:.3f} / {report.shape_share:.0%}")
            lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
        lines += ["", "## Accuracy per model call: RMS distance (8-bit levels) to the converged picture", "",
                  f"dpmpp_2m at 200 steps is the reference; 6 captions x 2 seeds, {schedule} schedule.", "",
                  "| CFG | sampler | " + " | ".join(f"{b} calls" for b in ACCURACY_BUDGETS) + " |",
                  "|---|---|" + "---|" * len(ACCURACY_BUDGETS)]
        captions = EVALUATION_CAPTIONS[::2]
        for cfg in (1.0, cfg_default):
            def images(caption: str, sampler: str, steps: int) -> np.ndarray:
                return np.stack(txt2img(session, caption, seed=100, batch=2, model=model, steps=steps,
                                        sampler_name=sampler, scheduler=schedule, cfg=cfg)).astype(np.float64)
            reference = {caption: images(caption, "dpmpp_2m", 200) for caption in captions}
            for sampler in ACCURACY_SAMPLERS:
                cells = [np.sqrt(np.mean([((images(c, sampler, steps_for_budget(sampler, budget)) - reference[c]) ** 2).mean()
                                          for c in captions])) for budget in ACCURACY_BUDGETS]
                lines.append(f"| {cfg:g} | {sampler} | " + " | ".join(f"{cell:.2f}" for cell in cells) + " |")
                print(lines[-1], flush=True)
    RESULTS[args.model].write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS[args.model].relative_to(ROOT)}")


if __name__ == "__main__":
    main()
