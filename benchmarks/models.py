"""The model stack on the CPU: load time and peak memory, UNet step time, VAE decode time (prints numbers).

    python benchmarks/models.py [--checkpoint FILE.safetensors] [--repeats 3] [--parts vae unet mmdit]
    python benchmarks/models.py --parts mmdit [--mmdit-depth 24]

Without --checkpoint it writes a random SD 1.5 checkpoint (full size, fp16, the original key layout;
tools/make_random_checkpoint.py) to a temporary folder first. Measured:
- loading it as CheckpointLoaderSimple does: seconds, and the growth of peak RSS against the size of the
  loaded weights (fp32 on the CPU: twice the fp16 file);
- decoding one 256x256 and one 512x512 image with the VAE (float32), as VAEDecode does;
- one UNet step as KSampler runs it with CFG (a batch of 2: conditioned and unconditioned) at 256x256
  and 512x512, in float32 and in bfloat16.
Times are the median of --repeats runs after one warm-up run. On cores shared with other work, run
with OMP_WAIT_POLICY=PASSIVE: OpenMP threads spin-waiting for a busy sibling slow small operations
down several times.

With `--parts mmdit`: an SD3.5-Medium-shaped MMDiT (24 joint blocks of width 1536, QK norms, dual
attention in 13 blocks: 2.5 B parameters; --mmdit-depth fewer blocks for a quick run) with random
weights, written as a bare fp16 network file, loaded as UNETLoader loads it in float32, bfloat16 and
with fp8 storage (float32 compute): load seconds, peak RSS growth against the loaded weights, and
one step at 256x256 with CFG (a batch of 2, 154 context tokens). Measured at full size (2.47 B, 24 blocks)
on the idle 2-core VM: float32 load 6.57 s, peak RSS 1.003x the weights, step 10.39 s; bfloat16 3.08 s,
1.008x, 4.39 s; fp8 storage 7.80 s, 1.016x, 17.39 s. (Before tensors larger than the file window were cast
a window at a time with their pages released: 1.043x, 1.090x and 1.143x.)

Before and after issue #12 (memory-mapped windows cast straight into modules built on the meta
device without torch.nn.init; the autoencoder channels-last with in-place activations and its
upsampling convolutions computed per output phase), measured alternately on the same shared 2-core
VM (torch 2.13, the random SD 1.5 checkpoint, OMP_WAIT_POLICY=PASSIVE), best runs of each when the
machine was nearly idle (its load moved single runs by 10-30%):

                           before                   after
    load                   3.67 s (RSS 1.027x)      1.76 s (RSS 1.019x)     0.48x
    VAE decode 256x256     3.49 s (CPU 6.68 s)      2.85 s (CPU 5.23 s)     0.82x (CPU 0.78x)
    VAE decode 512x512     17.99 s (CPU 32.9 s)     13.04 s (CPU 24.3 s)    0.72x (CPU 0.74x)

Loading is now mostly the kernel faulting in the 4 GiB of fp32 weights (2-3 GB/s on this VM); the
decoder is 92% oneDNN convolutions. Measured again on the idle machine, each version's autoencoder
decoding the same random weights (median of 5 decodes at 256x256, of 3 at 512x512, versions
alternating process by process, 2 threads; the upsamplers' phase kernels now kept between calls):

    VAE decode 256x256     3.88 s                   2.79 s                  0.72x
    VAE decode 512x512     16.10 s                  11.92 s                 0.74x
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from sigmagraph.nodes.models.loading import load_checkpoint, load_unet
from sigmagraph.nodes.models.mmdit import SD35_MEDIUM

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("vae", "unet")


def memory_mib(field: str) -> float:
    """VmRSS or VmHWM of this process in MiB (Linux)."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[field].split()[0]) / 1024


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_checkpoint(folder: Path) -> Path:
    """A random SD 1.5 checkpoint, written by another process so this one's peak memory is the load's alone."""
    path = folder / "random-sd15.safetensors"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_random_checkpoint.py"), str(path), "--family", "sd15"],
                   check=True, stdout=subprocess.DEVNULL)
    return path


def random_mmdit(folder: Path, depth: int) -> Path:
    """A random SD3.5-Medium-shaped network file (bare keys, fp16) with `depth` joint blocks, written by another process."""
    width = [] if depth == SD35_MEDIUM.depth else ["--depth", str(depth), "--width", str(SD35_MEDIUM.hidden_size)]
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_random_checkpoint.py"), str(folder), "--family",
                    "sd35m", "--split", *width], check=True, stdout=subprocess.DEVNULL)
    return folder / "diffusion_models" / "sd35m.safetensors"


MMDIT_VARIANTS = {"float32": (torch.float32, None), "bfloat16": (torch.bfloat16, None),
                  "fp8 storage, float32 compute": (torch.float32, torch.float8_e4m3fn)}


def measure_mmdit_variant(path: Path, label: str, repeats: int) -> None:
    """Loads the MMDiT file as one variant and times a step (run in a process of its own: a clean peak RSS)."""
    dtype, storage = MMDIT_VARIANTS[label]
    generator = torch.Generator().manual_seed(0)
    latent, context = torch.randn(2, 16, 32, 32, generator=generator), torch.randn(2, 154, 4096, generator=generator)
    pooled, timestep = torch.randn(2, 2048, generator=generator), torch.tensor([500.0, 500.0])
    Path("/proc/self/clear_refs").write_text("5")
    before = memory_mib("VmRSS")
    start = time.perf_counter()
    model = load_unet(path, path.name, torch.device("cpu"), dtype, storage=storage)
    seconds = time.perf_counter() - start
    weights = model.network.managed.nbytes / 2**20
    growth = memory_mib("VmHWM") - before
    parameters = sum(t.numel() for t in model.network.managed.module.state_dict().values()) / 1e9
    with torch.inference_mode():
        step = timed(lambda: model.network(latent, timestep, context, y=pooled), repeats)
    print(f"MMDiT {parameters:.2f} B, {label}: load {seconds:.2f} s, peak RSS grew {growth:.0f} MiB for "
          f"{weights:.0f} MiB of weights ({growth / weights:.3f}x); step 256x256 CFG batch 2: {step:.2f} s", flush=True)


def measure_mmdit(folder: Path, depth: int, repeats: int) -> None:
    """Load and step figures of an SD3.5-Medium-shaped MMDiT in float32, bfloat16 and fp8 storage."""
    path = random_mmdit(folder, depth)
    print(f"MMDiT file {path.name} ({depth} blocks): {path.stat().st_size / 2**30:.2f} GiB on disk", flush=True)
    spawn = multiprocessing.get_context("spawn")
    for label in MMDIT_VARIANTS:
        process = spawn.Process(target=measure_mmdit_variant, args=(path, label, repeats))
        process.start()
        process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="an SD 1.5 .safetensors file (default: a random one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=PARTS + ("mmdit",), default=PARTS,
                        help="what to measure besides loading")
    parser.add_argument("--mmdit-depth", type=int, default=SD35_MEDIUM.depth, help="joint blocks of the MMDiT")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if "mmdit" in args.parts:
        with tempfile.TemporaryDirectory() as folder:
            measure_mmdit(Path(folder), args.mmdit_depth, args.repeats)
        if set(args.parts) == {"mmdit"}:
            return

    with tempfile.TemporaryDirectory() as folder:
        path = args.checkpoint or random_checkpoint(Path(folder))
        print(f"checkpoint {path.name}: {path.stat().st_size / 2**30:.2f} GiB on disk")
        Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
        before = memory_mib("VmRSS")
        start = time.perf_counter()
        model, clip, vae = load_checkpoint(path, path.name, torch.device("cpu"), torch.float32)
        seconds = time.perf_counter() - start
        weights = sum(part.managed.nbytes for part in (model.network, *clip.parts, vae.handle)) / 2**20
        growth = memory_mib("VmHWM") - before
        print(f"load ({model.family}): {seconds:.2f} s; peak RSS grew {growth:.0f} MiB for {weights:.0f} MiB of "
              f"fp32 weights ({growth / weights:.3f}x)")

    with torch.inference_mode():
        if "vae" in args.parts:
            for size in (256, 512):
                latent = torch.randn(1, 4, size // 8, size // 8)
                print(f"VAE decode {size}x{size}, float32: {timed(lambda: vae.decode(latent), args.repeats):.2f} s")
        if "unet" in args.parts:
            network = model.network
            unet = network.use()
            context = torch.randn(2, 77, 768)
            for dtype in (torch.float32, torch.bfloat16):
                unet.to(dtype)
                for size in (256, 512):
                    latent = torch.randn(2, 4, size // 8, size // 8)
                    step = timed(lambda: network(latent, torch.tensor([500.0, 500.0]), context), args.repeats)
                    print(f"UNet step, CFG batch of 2, {size}x{size}, {str(dtype).removeprefix('torch.')}: "
                          f"{step:.2f} s")


if __name__ == "__main__":
    main()
