"""The server's own settings (the engine's folders and devices live in Config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..paths import package_folder

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """Where to listen, who may call, and the limits; the defaults are the safe ones."""

    host: str = "127.0.0.1"
    port: int = 8188  # 0 picks a free port
    cors_origin: str | None = None  # --enable-cors-header: this origin (or "*") may call from a browser
    max_upload_bytes: int = 100 * MEGABYTE  # also the limit of JSON bodies
    web_root: Path | None = field(default_factory=lambda: package_folder("sigmagraph.web"))
    workflows_dir: Path | None = field(default_factory=lambda: package_folder("sigmagraph.workflows"))
    preview_interval: float = 0.25  # seconds between two preview frames of one prompt (about 4 per second)
    history_limit: int = 10000  # finished prompts kept for GET /history, oldest dropped first
    state_dir: str | Path = ":memory:"  # the queue and history database's folder (`serve` defaults to ./state)
    workers: str | None = None  # None: one in-process worker; "auto" or "ray://HOST:PORT": a pool on Ray
    num_workers: int | None = None  # the pool's size (default 2)
