"""The one configuration object handed to the executor, the server and the node packs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

FOLDER_FIELDS = {"models": "models_dir", "output": "output_dir", "input": "input_dir", "temp": "temp_dir"}


@dataclass(frozen=True)
class Config:
    """Folders, device choice and cache policy for one process.

    Folders may be given as strings or any os.PathLike; they are stored as Path.
    """

    models_dir: Path = field(default_factory=lambda: Path(os.environ.get("SIGMAGRAPH_MODELS_DIR", "models")))
    output_dir: Path = Path("output")
    input_dir: Path = Path("input")
    temp_dir: Path = field(default_factory=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / "sigmagraph")
    device: str = "auto"  # "auto" picks CUDA when available; "cpu" forces the CPU (--cpu)
    dtype: str | None = None  # weight dtype override (--dtype); None picks per device
    cache_bytes: int | None = 8 * 2**30  # byte budget of the output cache; None = unbounded
    cache_enabled: bool = True  # False: keep outputs only while a run needs them (--cache-none)
    custom_nodes_dirs: tuple[Path, ...] = ()  # one folder may be given alone
    disable_custom_nodes: bool = False

    def __post_init__(self) -> None:
        # frozen: the converted values are set the way dataclasses set fields
        for name in FOLDER_FIELDS.values():
            object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "custom_nodes_dirs", _paths(self.custom_nodes_dirs))

    def folder(self, kind: str) -> Path:
        """The root folder of a kind: "models", "output", "input" or "temp"."""
        if kind not in FOLDER_FIELDS:
            raise ValueError(f"unknown folder kind {kind!r}; expected one of {sorted(FOLDER_FIELDS)}")
        return getattr(self, FOLDER_FIELDS[kind])


def _paths(folders: str | os.PathLike | Iterable[str | os.PathLike]) -> tuple[Path, ...]:
    """Folders as a tuple of Path; a single folder (a string is one name, not its letters) becomes a 1-tuple."""
    return (Path(folders),) if isinstance(folders, (str, os.PathLike)) else tuple(Path(f) for f in folders)
