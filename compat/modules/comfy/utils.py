"""ComfyUI's `comfy.utils`: model files, state-dict helpers, resampling, tiling and the progress bar.

Resampling is Sigmagraph's (nodes/resize.py: ComfyUI's centre crop, "bislerp" and "lanczos"; any
other method is torch's interpolate mode, as in ComfyUI). Pickled model files are read with
`weights_only=True` whatever `safe_load` says: opening a model file never runs its code. A
ProgressBar reports to the running node's context (progress events, previews, and the interrupt
check), unless a pack installed its own hook with set_progress_bar_global_hook.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable

import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sigmagraph.compat import state
from sigmagraph.nodes.packs.latent_ops import repeat_to_batch as _repeat_to_batch
from sigmagraph.nodes.resize import bislerp, center_crop, lanczos

PROGRESS_BAR_ENABLED = True


# ------------------------------------------------------------------------------------------------
# Model files and state dicts


def load_torch_file(ckpt: str, safe_load: bool = False, device: Any = None, return_metadata: bool = False
                    ) -> dict[str, Tensor] | tuple[dict[str, Tensor], dict[str, str] | None]:
    """The tensors of a .safetensors/.sft file, or of a pickle (.ckpt/.pt/.pth/.bin) read as plain tensors only."""
    device = torch.device(device or "cpu")
    metadata = None
    if ckpt.lower().endswith((".safetensors", ".sft")):
        with safetensors.safe_open(ckpt, framework="pt", device=str(device)) as file:
            metadata = file.metadata()
            sd = {key: file.get_tensor(key) for key in file.keys()}
    else:
        loaded = torch.load(ckpt, map_location=device, weights_only=True)
        sd = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    return (sd, metadata) if return_metadata else sd


def save_torch_file(sd: dict[str, Tensor], ckpt: str, metadata: dict[str, str] | None = None) -> None:
    """Writes tensors to a safetensors file, with string metadata."""
    safetensors.torch.save_file(sd, ckpt, metadata=metadata)


def calculate_parameters(sd: dict[str, Tensor], prefix: str = "") -> int:
    """The number of values in the tensors whose keys start with prefix."""
    return sum(tensor.nelement() for key, tensor in sd.items() if key.startswith(prefix))


def state_dict_key_replace(state_dict: dict[str, Any], keys_to_replace: dict[str, str]) -> dict[str, Any]:
    """Renames keys in place (old -> new); returns the dict."""
    for old, new in keys_to_replace.items():
        if old in state_dict:
            state_dict[new] = state_dict.pop(old)
    return state_dict


def state_dict_prefix_replace(state_dict: dict[str, Any], replace_prefix: dict[str, str], filter_keys: bool = False
                              ) -> dict[str, Any]:
    """Replaces key prefixes (old -> new); in place, or into a new dict of only those keys with filter_keys."""
    out = {} if filter_keys else state_dict
    for old, new in replace_prefix.items():
        for key in [k for k in state_dict if k.startswith(old)]:
            out[new + key[len(old):]] = state_dict.pop(key)
    return out


def get_attr(obj: Any, attr: str) -> Any:
    """obj.a.b.c for attr "a.b.c"."""
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def set_attr(obj: Any, attr: str, value: Any) -> Any:
    """Sets obj.a.b.c = value for attr "a.b.c"; returns the previous value."""
    *path, last = attr.split(".")
    owner = get_attr(obj, ".".join(path)) if path else obj
    previous = getattr(owner, last)
    setattr(owner, last, value)
    return previous


def set_attr_param(obj: Any, attr: str, value: Tensor) -> Any:
    """set_attr with the value as a frozen nn.Parameter."""
    return set_attr(obj, attr, nn.Parameter(value, requires_grad=False))


def copy_to_param(obj: Any, attr: str, value: Tensor) -> None:
    """Copies value into the existing tensor at obj.a.b.c (in place: views of it see the change)."""
    get_attr(obj, attr).data.copy_(value)


# ------------------------------------------------------------------------------------------------
# Batches, masks and resampling


def repeat_to_batch_size(tensor: Tensor, batch_size: int, dim: int = 0) -> Tensor:
    """The tensor cut or tiled along `dim` to batch_size entries."""
    return _repeat_to_batch(tensor, batch_size, dim)


def resize_to_batch_size(tensor: Tensor, batch_size: int) -> Tensor:
    """batch_size entries picked evenly from the batch (nearest neighbour in batch index)."""
    count = tensor.shape[0]
    if count == batch_size or batch_size <= 1:
        return tensor[:batch_size]
    if batch_size < count:
        scale = (count - 1) / (batch_size - 1)
        picks = [min(round(i * scale), count - 1) for i in range(batch_size)]
    else:
        scale = count / batch_size
        picks = [min(math.floor((i + 0.5) * scale), count - 1) for i in range(batch_size)]
    return tensor[picks]


def common_upscale(samples: Tensor, width: int, height: int, upscale_method: str, crop: str) -> Tensor:
    """Resizes [B, C, H, W] (or [B, C, T, H, W], frame by frame) after an optional centre crop.

    Methods: "bislerp", "lanczos" (values 0..1), or any mode of torch's interpolate.
    """
    shape = tuple(samples.shape)
    if len(shape) > 4:
        frames = samples.reshape(shape[0], shape[1], -1, shape[-2], shape[-1]).movedim(2, 1)
        samples = frames.reshape(-1, shape[1], shape[-2], shape[-1])
    if crop == "center":
        samples = center_crop(samples, width, height)
    if upscale_method == "bislerp":
        out = bislerp(samples, width, height)
    elif upscale_method == "lanczos":
        out = lanczos(samples, width, height)
    else:
        out = F.interpolate(samples, size=(height, width), mode=upscale_method)
    if len(shape) == 4:
        return out
    return out.reshape(shape[0], -1, shape[1], height, width).movedim(2, 1).reshape(shape[:-2] + (height, width))


def reshape_mask(input_mask: Tensor, output_shape: tuple[int, ...]) -> Tensor:
    """A mask resized to a latent's or image's shape [B, C, (T,) H, W]: interpolated, channels and batch repeated."""
    dims = len(output_shape) - 2
    if dims == 1:
        mode = "linear"
    elif dims == 2:
        input_mask = input_mask.reshape(-1, 1, input_mask.shape[-2], input_mask.shape[-1])
        mode = "bilinear"
    else:
        if input_mask.ndim < 5:
            input_mask = input_mask.reshape(1, 1, -1, input_mask.shape[-2], input_mask.shape[-1])
        mode = "trilinear"
    mask = F.interpolate(input_mask, size=tuple(output_shape[2:]), mode=mode)
    if mask.shape[1] < output_shape[1]:
        mask = mask.repeat((1, output_shape[1]) + (1,) * dims)[:, :output_shape[1]]
    return repeat_to_batch_size(mask, output_shape[0])


# ------------------------------------------------------------------------------------------------
# Tiled processing


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles of one axis start: every tile - overlap, the last one ending at the edge."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - overlap, max(1, tile - overlap)))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return starts


def get_tiled_scale_steps(width: int, height: int, tile_x: int, tile_y: int, overlap: int) -> int:
    """How many tiles tiled_scale processes for one image."""
    return len(_tile_starts(height, tile_y, overlap)) * len(_tile_starts(width, tile_x, overlap))


@torch.inference_mode()
def tiled_scale_multidim(samples: Tensor, function: Callable[[Tensor], Tensor], tile: tuple[int, ...] = (64, 64),
                         overlap: int | tuple[int, ...] = 8, upscale_amount: Any = 4, out_channels: int = 3,
                         output_device: Any = "cpu", downscale: bool = False, index_formulas: Any = None,
                         pbar: Any = None) -> Tensor:
    """`function` (an upscaler, a VAE) applied tile by tile, the overlaps blended with linear ramps.

    Sizes scale by `upscale_amount` (one number or one per axis; a callable maps a size), or
    divide with `downscale`; tile positions scale by `index_formulas` (default: upscale_amount).
    A batch entry that fits in one tile is processed whole. `pbar.update(1)` follows each tile.
    """
    dims = len(tile)

    def per_axis(value: Any) -> list[Any]:
        return list(value) if isinstance(value, (tuple, list)) else [value] * dims

    scales, overlaps = per_axis(upscale_amount), per_axis(overlap)
    positions = per_axis(upscale_amount if index_formulas is None else index_formulas)

    def scaled(rule: Any, value: float) -> float:
        return rule(value) if callable(rule) else (value / rule if downscale else value * rule)

    def out_shape(spatial: torch.Size) -> list[int]:
        return [round(scaled(scales[d], spatial[d])) for d in range(dims)]

    output = torch.empty([samples.shape[0], out_channels] + out_shape(samples.shape[2:]), device=output_device)
    for b in range(samples.shape[0]):
        sample = samples[b:b + 1]
        if all(sample.shape[d + 2] <= tile[d] for d in range(dims)):
            output[b:b + 1] = function(sample).to(output_device)
            if pbar is not None:
                pbar.update(1)
            continue
        total = torch.zeros([1, out_channels] + out_shape(sample.shape[2:]), device=output_device)
        weight = torch.zeros_like(total)
        starts = [_tile_starts(sample.shape[d + 2], tile[d], overlaps[d]) for d in range(dims)]
        for corner in itertools.product(*starts):
            piece = sample
            for d, start in enumerate(corner):
                piece = piece.narrow(d + 2, start, min(tile[d], sample.shape[d + 2] - start))
            result = function(piece).to(output_device)
            mask = torch.ones_like(result)
            for d in range(dims):
                feather = round(scaled(scales[d], overlaps[d]))
                if feather >= mask.shape[d + 2]:
                    continue
                for t in range(feather):
                    mask.narrow(d + 2, t, 1).mul_((t + 1) / feather)
                    mask.narrow(d + 2, mask.shape[d + 2] - 1 - t, 1).mul_((t + 1) / feather)
            region, region_weight = total, weight
            for d, start in enumerate(corner):
                offset = round(scaled(positions[d], start))
                region = region.narrow(d + 2, offset, mask.shape[d + 2])
                region_weight = region_weight.narrow(d + 2, offset, mask.shape[d + 2])
            region.add_(result * mask)
            region_weight.add_(mask)
            if pbar is not None:
                pbar.update(1)
        output[b:b + 1] = total / weight
    return output


def tiled_scale(samples: Tensor, function: Callable[[Tensor], Tensor], tile_x: int = 64, tile_y: int = 64,
                overlap: int = 8, upscale_amount: Any = 4, out_channels: int = 3, output_device: Any = "cpu",
                pbar: Any = None) -> Tensor:
    """tiled_scale_multidim over images [B, C, H, W] with tile_x x tile_y tiles."""
    return tiled_scale_multidim(samples, function, (tile_y, tile_x), overlap=overlap, upscale_amount=upscale_amount,
                                out_channels=out_channels, output_device=output_device, pbar=pbar)


# ------------------------------------------------------------------------------------------------
# Progress


def report_progress(value: int, total: int, preview_image: Any = None, prompt_id: str | None = None,
                    node_id: str | None = None) -> None:
    """The default hook: a progress event (and preview) of the running node, then the interrupt check."""
    run = state.current_run()
    if run is None:
        return
    if node_id is not None and str(node_id) != run.node_id:
        run = dataclasses.replace(run, node_id=str(node_id))
    # ComfyUI's previews are ("JPEG", PIL image, max size); the run's events carry the image itself.
    # ("PNG", image, None) is a whole picture (ComfyUI's SaveImageWebsocket): sent in full, never throttled.
    if isinstance(preview_image, tuple) and preview_image[0] == "PNG" and preview_image[2] is None:
        run.send_image(preview_image[1])
        preview_image = None
    image = preview_image[1] if isinstance(preview_image, tuple) else preview_image
    run.progress(value, total, image)


def __getattr__(name: str) -> Any:
    if name == "PROGRESS_BAR_HOOK":
        return state.progress_bar_hook or report_progress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_progress_bar_enabled(enabled: bool) -> None:
    """Sets PROGRESS_BAR_ENABLED, which packs read to show their own bars."""
    global PROGRESS_BAR_ENABLED
    PROGRESS_BAR_ENABLED = enabled


def set_progress_bar_global_hook(function: Callable[..., Any] | None) -> None:
    """Makes `function(value, total, preview, node_id=...)` receive the updates of ProgressBars created later."""
    state.set_progress_bar_hook(function)


class ProgressBar:
    """ComfyUI's progress bar: each update reports value / total (and a preview) through the hook."""

    def __init__(self, total: int, node_id: str | None = None):
        self.total = total
        self.current = 0
        self.node_id = node_id
        self.hook = state.progress_bar_hook or report_progress

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        if total is not None:
            self.total = total
        self.current = min(value, self.total)
        self.hook(self.current, self.total, preview, node_id=self.node_id)

    def update(self, value: int) -> None:
        self.update_absolute(self.current + value)
