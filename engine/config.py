"""The one configuration object handed to the executor, the server and the node packs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Config:
    """Folders, device choice and cache policy for one process."""

    models_dir: Path = field(default_factory=lambda: Path(os.environ.get("SIGMAGRAPH_MODELS_DIR", "models")))
    output_dir: Path = Path("output")
    input_dir: Path = Path("input")
    temp_dir: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / "sigmagraph")
    device: str = "auto"  # "auto" picks CUDA when available; "cpu" forces the CPU (--cpu)
    dtype: str | None = None  # weight dtype override (--dtype); None picks per device
    cache_bytes: int | None = 8 * 2**30  # byte budget of the output cache; None = unbounded
    cache_enabled: bool = True  # False: keep outputs only while a run needs them (--cache-none)
    custom_nodes_dirs: tuple[Path, ...] = ()
    disable_custom_nodes: bool = False

    def folder(self, kind: str) -> Path:
        """The root folder of a kind: "models", "output", "input" or "temp"."""
        roots = {"models": self.models_dir, "output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
        if kind not in roots:
            raise ValueError(f"unknown folder kind {kind!r}; expected one of {sorted(roots)}")
        return roots[kind]
