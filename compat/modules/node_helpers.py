"""ComfyUI's `node_helpers`: conditioning options, forgiving image opening, the file hasher, dtypes."""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable

import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from comfy.cli_args import args

log = logging.getLogger(__name__)

HASHES = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
RANGE_GAP = 1e-5  # samplers compare percents strictly: entries split at a boundary must not overlap


def conditioning_set_values(conditioning: list, values: dict[str, Any] = {}, append: bool = False) -> list:  # noqa: B006
    """A copy of the CONDITIONING with `values` set on every entry (added to the old value with append)."""
    out = []
    for cond, options in conditioning:
        options = dict(options)
        for key, value in values.items():
            old = options.get(key) if append else None
            options[key] = value if old is None else old + value
        out.append([cond, options])
    return out


def conditioning_set_values_with_timestep_range(conditioning: list, values: dict[str, Any] = {},  # noqa: B006
                                                start_percent: float = 0.0, end_percent: float = 1.0) -> list:
    """`values` set only during [start_percent, end_percent]: each entry is split where the ranges meet."""
    if start_percent > end_percent:
        log.warning("start_percent (%s) must be <= end_percent (%s); conditioning unchanged", start_percent,
                    end_percent)
        return conditioning
    out = []
    for entry in conditioning:
        cond_start, cond_end = entry[1].get("start_percent", 0.0), entry[1].get("end_percent", 1.0)
        start, end = max(start_percent, cond_start), min(end_percent, cond_end)
        if start >= end:
            out.append(entry)
            continue
        if start > cond_start:
            out += conditioning_set_values([entry], {"start_percent": cond_start, "end_percent": start - RANGE_GAP})
        out += conditioning_set_values([entry], {**values, "start_percent": start, "end_percent": end})
        if end < cond_end:
            out += conditioning_set_values([entry], {"start_percent": end + RANGE_GAP, "end_percent": cond_end})
    return out


def pillow(fn: Callable[[Any], Any], arg: Any) -> Any:
    """fn(arg), retried with PIL's LOAD_TRUNCATED_IMAGES on when PIL fails on a damaged file."""
    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = True
        try:
            return fn(arg)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def open_image(path: str) -> Image.Image:
    """Image.open, forgiving truncated files."""
    return pillow(Image.open, path)


def hasher() -> Callable[..., Any]:
    """The hash constructor of --default-hashing-function (sha256)."""
    return HASHES[args.default_hashing_function]


def string_to_torch_dtype(string: str) -> torch.dtype | None:
    """"fp32", "fp16" or "bf16" as a torch dtype (None for anything else)."""
    return DTYPES.get(string)


def image_alpha_fix(destination: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The source brought to the destination's channel count: alpha dropped, or an opaque alpha added."""
    if destination.shape[-1] < source.shape[-1]:
        source = source[..., : destination.shape[-1]]
    elif destination.shape[-1] > source.shape[-1]:
        source = torch.nn.functional.pad(source, (0, 1), value=1.0)
    return destination, source
