"""LATENT nodes: empty latents, batch and size operations, noise masks, and .latent files.

A LATENT is `{"samples": [B, C, H/8, W/8], "noise_mask"?: [B, 1, h, w], "batch_index"?: [int]}`
with the autoencoder's latents unscaled. `.latent` files are ComfyUI's: safetensors with the
tensor under "latent_tensor"; files written before ComfyUI stored latents unscaled lack the
"latent_format_version_0" marker and hold latents scaled by SD's 0.18215, which LoadLatent undoes.
"""

from __future__ import annotations

import json
import math

import torch
from safetensors.torch import save_file

from sigmagraph.engine import Combo, Float, Hidden, Int, NodeOutput, RunContext, Socket, String, node
from sigmagraph.engine.paths import next_output_path

from ..models.checkpoint import CheckpointError, SafetensorsCheckpoint
from ..models.families import SD3_LATENT, SD_LATENT
from ..resize import CROP_METHODS, LATENT_METHODS, resize
from .files import input_file_fingerprint, input_files, input_path
from .types import MAX_RESOLUTION, SOCKET_TYPES  # noqa: F401 - SOCKET_TYPES registers the socket types

SIZE = dict(min=16, max=MAX_RESOLUTION, step=8)
LATENT_KEY = "latent_tensor"
FORMAT_MARKER = "latent_format_version_0"  # present: stored unscaled; absent: scaled by SD's 0.18215


@node(returns=["LATENT"], category="latent", display_name="Empty Latent Image")
def EmptyLatentImage(width: int = Int(512, **SIZE), height: int = Int(512, **SIZE),
                     batch_size: int = Int(1, min=1, max=4096)):
    """A batch of zero latents for a width x height image (4 channels, 1/8 of the size)."""
    return {"samples": torch.zeros([batch_size, 4, height // 8, width // 8])}


@node(returns=["LATENT"], category="latent/sd3", display_name="EmptySD3LatentImage")
def EmptySD3LatentImage(width: int = Int(1024, min=16, max=MAX_RESOLUTION, step=16),
                        height: int = Int(1024, min=16, max=MAX_RESOLUTION, step=16),
                        batch_size: int = Int(1, min=1, max=4096)):
    """A batch of zero latents for SD3's and Flux's 16-channel autoencoder (1/8 of the size)."""
    return {"samples": torch.zeros([batch_size, SD3_LATENT.channels, height // 8, width // 8])}


@node(returns=["LATENT"], category="latent/inpaint", display_name="Set Latent Noise Mask")
def SetLatentNoiseMask(samples=Socket("LATENT"), mask=Socket("MASK")):
    """Marks the region to repaint (mask 1): sampling keeps the rest of the latent."""
    return {**samples, "noise_mask": mask.reshape(-1, 1, *mask.shape[-2:])}


@node(returns=["LATENT"], category="latent", display_name="Upscale Latent")
def LatentUpscale(samples=Socket("LATENT"), upscale_method=Combo(LATENT_METHODS, default="nearest-exact"),
                  width: int = Int(512, min=0, max=MAX_RESOLUTION, step=8),
                  height: int = Int(512, min=0, max=MAX_RESOLUTION, step=8),
                  crop=Combo(CROP_METHODS, default="disabled")):
    """Resizes latents to an image size in pixels (0 for one side keeps the aspect ratio; both 0: unchanged)."""
    if width == 0 and height == 0:
        return samples
    latent = samples["samples"]
    width, height = (max(64, width) if width else 0), (max(64, height) if height else 0)
    if width == 0:
        width = max(64, round(latent.shape[-1] * height / latent.shape[-2]))
    elif height == 0:
        height = max(64, round(latent.shape[-2] * width / latent.shape[-1]))
    return {**samples, "samples": resize(latent, width // 8, height // 8, upscale_method, crop)}


@node(returns=["LATENT"], category="latent", display_name="Upscale Latent By")
def LatentUpscaleBy(samples=Socket("LATENT"), upscale_method=Combo(LATENT_METHODS, default="nearest-exact"),
                    scale_by: float = Float(1.5, min=0.01, max=8.0, step=0.01)):
    """Resizes latents by a factor."""
    latent = samples["samples"]
    width, height = round(latent.shape[-1] * scale_by), round(latent.shape[-2] * scale_by)
    return {**samples, "samples": resize(latent, width, height, upscale_method)}


def _masks_for_batch(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """A noise mask repeated to cover every latent of a batch."""
    return mask.repeat(math.ceil(batch / mask.shape[0]), 1, 1, 1)[:batch] if mask.shape[0] < batch else mask


@node(returns=["LATENT"], category="latent/batch", display_name="Latent From Batch")
def LatentFromBatch(samples=Socket("LATENT"), batch_index: int = Int(0, min=0, max=63),
                    length: int = Int(1, min=1, max=64)):
    """A run of latents from a batch; they keep their seeds' noise (batch_index) as in the full batch."""
    latent = samples["samples"]
    start = min(latent.shape[0] - 1, batch_index)
    stop = start + min(latent.shape[0] - start, length)
    out = {**samples, "samples": latent[start:stop].clone()}
    if "noise_mask" in samples:
        masks = samples["noise_mask"]
        out["noise_mask"] = masks.clone() if masks.shape[0] == 1 else _masks_for_batch(masks, latent.shape[0])[start:stop]
    out["batch_index"] = samples.get("batch_index", list(range(latent.shape[0])))[start:stop]
    return out


@node(returns=["LATENT"], category="latent/batch", display_name="Repeat Latent Batch")
def RepeatLatentBatch(samples=Socket("LATENT"), amount: int = Int(1, min=1, max=64)):
    """The batch repeated `amount` times (each copy gets its own noise)."""
    latent = samples["samples"]
    out = {**samples, "samples": latent.repeat(amount, 1, 1, 1)}
    if "noise_mask" in samples and samples["noise_mask"].shape[0] > 1:
        out["noise_mask"] = _masks_for_batch(samples["noise_mask"], latent.shape[0]).repeat(amount, 1, 1, 1)
    if "batch_index" in samples:
        indices = samples["batch_index"]
        offset = max(indices) - min(indices) + 1
        out["batch_index"] = indices + [index + copy * offset for copy in range(1, amount) for index in indices]
    return out


@node(category="_for_testing", output_node=True, display_name="Save Latent")
def SaveLatent(samples=Socket("LATENT"), filename_prefix: str = String("latents/ComfyUI"), prompt=Hidden.PROMPT,
               extra_pnginfo=Hidden.EXTRA_PNGINFO, ctx: RunContext = Hidden.CONTEXT):
    """Writes the latents to a .latent file in the output folder, with the workflow in its metadata."""
    folder = ctx.config.output_dir
    path = next_output_path(folder, filename_prefix, "latent")
    metadata = {"prompt": json.dumps(prompt) if prompt is not None else ""}
    metadata.update({key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()})
    save_file({LATENT_KEY: samples["samples"].contiguous(), FORMAT_MARKER: torch.tensor([])}, str(path), metadata)
    subfolder = path.parent.relative_to(folder.resolve()).as_posix()
    return NodeOutput(ui={"latents": [{"filename": path.name, "subfolder": "" if subfolder == "." else subfolder,
                                       "type": "output"}]})


@node(returns=["LATENT"], category="_for_testing", display_name="Load Latent", fingerprint=input_file_fingerprint("latent"))
def LoadLatent(latent=Combo(input_files((".latent",)), files_in="input"), ctx: RunContext = Hidden.CONTEXT):
    """Reads a .latent file from the input folder."""
    with SafetensorsCheckpoint(input_path(ctx.config, latent), latent) as file:
        if LATENT_KEY not in file:
            raise CheckpointError(f"{latent}: not a latent file (no {LATENT_KEY!r} tensor)")
        samples = file.read(LATENT_KEY).float()
        if FORMAT_MARKER not in file:
            samples = SD_LATENT.process_out(samples)
    return {"samples": samples}
