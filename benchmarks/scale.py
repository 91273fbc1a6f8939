"""Scale-out: demo-model throughput with the in-process worker and with 1 and 2 Ray workers, and the
per-prompt overhead of the Ray path. Prints a Markdown table.

    python benchmarks/scale.py          # needs the ray extra; starts a private Ray cluster on 127.0.0.1

Throughput: 16 prompts of the SD demo's workflow at 64x64 (batch 1, 10 steps), seeds 1..16, queued at
once after one warm-up prompt per worker (the model load is not counted). Ray workers split the
machine's cores (torch threads = cores / workers); the in-process worker is measured with torch's
default threads and with one, since torch's threads collapse when other processes hold the
cores. Overhead: one fully cached prompt at a time (every node comes from the cache), from
queueing to its history entry; median of 20.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import ray
import torch

from sigmagraph.engine import Config, Session
from sigmagraph.engine.server.history import History
from sigmagraph.engine.server.hub import Hub
from sigmagraph.engine.server.options import ServerOptions
from sigmagraph.engine.server.prompt_queue import PromptQueue
from sigmagraph.engine.server.ray_workers import RayWorkers, init_loopback
from sigmagraph.engine.server.store import Store
from sigmagraph.engine.server.worker import PromptWorker
from sigmagraph.nodes.demo.checkpoint import DEMO_MODELS
from sigmagraph.nodes.demo.generate import txt2img_workflow

PROMPTS = 16
STEPS = 10
OVERHEAD_REPEATS = 20


def workflow(seed: int) -> dict:
    return txt2img_workflow("a red circle left of a blue square", seed=seed, batch=1, model=DEMO_MODELS["sd"],
                           steps=STEPS)


def run_all(session: Session, queue: PromptQueue, history: History, seeds: list[int]) -> float:
    """Queues one prompt per seed at once; seconds until every one is in the history."""
    ids = [str(uuid.uuid4()) for _ in seeds]
    start = time.perf_counter()
    for prompt_id, seed in zip(ids, seeds):
        document = workflow(seed)
        queue.put(prompt_id, document, {}, session.validate(document))
    while not all(prompt_id in history for prompt_id in ids):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    failed = [pid for pid in ids if history.get(pid)[pid]["status"]["status_str"] != "success"]
    assert not failed, f"{len(failed)} prompts failed"
    return elapsed


def measure(session: Session, workers: int | None) -> tuple[float, float]:
    """(prompts per minute, median seconds per cached prompt) with the in-process worker (None) or N Ray workers."""
    session.release_memory()  # each row starts cold: the in-process rows share this session's cache
    store = Store()
    queue, history = PromptQueue(store=store), History(store)
    if workers is None:
        pool = PromptWorker(queue, history, session, Hub(), preview_interval=0.25)
    else:
        pool = RayWorkers(queue, history, session, Hub(), ServerOptions(workers="auto", num_workers=workers))
    pool.start()
    try:
        run_all(session, queue, history, list(range(100, 100 + (workers or 1))))  # warm-up: load the model
        throughput = 60.0 * PROMPTS / run_all(session, queue, history, list(range(1, PROMPTS + 1)))
        cached = [run_all(session, queue, history, [1]) for _ in range(OVERHEAD_REPEATS)]
        return throughput, statistics.median(cached)
    finally:
        pool.stop()


def main() -> None:
    cores = os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="sigmagraph-scale-"))
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device="cpu", disable_custom_nodes=True)
    session = Session(config)
    init_loopback(ray, num_cpus=cores, log_to_driver=False, _temp_dir=str(root / "ray"))
    print(f"{cores} cores, torch {torch.__version__} ({torch.get_num_threads()} threads in process), "
          f"ray {ray.__version__}; {PROMPTS} prompts of {STEPS} steps at 64x64\n")
    print("| workers | torch threads each | prompts/min | cached prompt, ms |")
    print("|---|---|---|---|")
    default_threads = torch.get_num_threads()
    for workers, threads in ((None, default_threads), (None, 1), (1, cores), (2, max(1, cores // 2))):
        torch.set_num_threads(threads if workers is None else default_threads)
        throughput, overhead = measure(session, workers)
        label = "in-process" if workers is None else f"Ray x{workers}"
        print(f"| {label} | {threads} | {throughput:.1f} | {1000 * overhead:.1f} |", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
