"""GET /system_stats: the machine, the torch devices, and the node packs that failed to load."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..config import Config
from ..registry import Registry


def _memory() -> tuple[int, int]:
    """(total, available) RAM in bytes; zeros where the platform does not say."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


def _devices(config: Config, ram: tuple[int, int]) -> tuple[str | None, list[dict[str, Any]]]:
    """torch's version and ComfyUI's device entries: the CUDA devices in use, else the CPU."""
    if importlib.util.find_spec("torch") is None:
        return None, []
    import torch

    if config.device != "cpu" and torch.cuda.is_available():
        devices = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            reserved = torch.cuda.memory_reserved(index)
            devices.append({"name": torch.cuda.get_device_name(index), "type": "cuda", "index": index,
                            "vram_total": total, "vram_free": free, "torch_vram_total": reserved,
                            "torch_vram_free": reserved - torch.cuda.memory_allocated(index)})
        return torch.__version__, devices
    total, free = ram  # ComfyUI reports the CPU with RAM as its memory
    return torch.__version__, [{"name": "cpu", "type": "cpu", "index": None, "vram_total": total, "vram_free": free,
                                "torch_vram_total": total, "torch_vram_free": free}]


def system_stats(config: Config, registry: Registry) -> dict[str, Any]:
    """ComfyUI's `{system, devices}` plus `node_pack_problems` (packs or nodes skipped at load)."""
    ram = _memory()
    torch_version, devices = _devices(config, ram)
    try:
        own_version = version("sigmagraph")
    except PackageNotFoundError:
        own_version = "unknown"
    return {
        "system": {"os": sys.platform, "ram_total": ram[0], "ram_free": ram[1], "sigmagraph_version": own_version,
                   "python_version": sys.version, "pytorch_version": torch_version, "embedded_python": False,
                   "argv": sys.argv},
        "devices": devices,
        "node_pack_problems": [{**asdict(problem), "message": problem.line()} for problem in registry.problems],
    }
