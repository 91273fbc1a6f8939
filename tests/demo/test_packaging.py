"""A plain (non-editable) install carries the demo checkpoints, the workflows and the tokenizer vocabulary."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_the_package_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    wheel, = tmp_path.glob("sigmagraph-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    checkpoints = ("sigmagraph-demo-flow.safetensors", "sigmagraph-demo.safetensors")
    for required in (*(f"sigmagraph/nodes/demo/{name}" for name in checkpoints), "sigmagraph/workflows/default.json",
                     "sigmagraph/workflows/demo_sd.json", "sigmagraph/workflows/inpaint.json",
                     "sigmagraph/web/index.html", "sigmagraph/nodes/models/tokenizer_data/bpe_simple_vocab_16e6.txt.gz"):
        assert required in names, required
    for name in checkpoints:
        assert (ROOT / "nodes" / "demo" / name).stat().st_size == \
            zipfile.ZipFile(wheel).getinfo(f"sigmagraph/nodes/demo/{name}").file_size
