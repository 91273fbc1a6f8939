"""ComfyUI's `latent_preview`: sampler callbacks that report progress with a preview of the denoised latent.

`prepare_callback(model, steps)` gives ComfyUI's `callback(step, x0, x, total_steps)`: each call
becomes a progress event of the running node through comfy.utils.ProgressBar, with the latent ->
RGB preview of the model's latent format (Sigmagraph's previews). TAESD decoders are used when a
pack hands one to TAESDPreviewerImpl; Sigmagraph ships none.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from PIL import Image

import comfy.utils
from comfy.cli_args import LatentPreviewMethod, args
from sigmagraph.compat.values import from_comfy
from sigmagraph.nodes.diffusion_model import LatentFormat

MAX_PREVIEW_RESOLUTION = args.preview_size


def preview_to_image(latent_image: torch.Tensor) -> Image.Image:
    """An [H, W, 3] image in -1..1 as an 8-bit PIL image (truncated, as ComfyUI)."""
    pixels = ((latent_image + 1.0) / 2.0).clamp(0, 1).mul(255).to(device="cpu", dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


class LatentPreviewer:
    """Turns the denoised latent of a step into a preview image."""

    def decode_latent_to_preview(self, x0: torch.Tensor) -> Image.Image:
        raise NotImplementedError

    def decode_latent_to_preview_image(self, preview_format: str, x0: torch.Tensor) -> tuple[str, Image.Image, int]:
        """(format, image, max size): what a ProgressBar update carries as its preview."""
        return preview_format, self.decode_latent_to_preview(x0), MAX_PREVIEW_RESOLUTION


class TAESDPreviewerImpl(LatentPreviewer):
    """Previews with a tiny autoencoder: any object whose decode(latent [1, C, h, w]) gives [1, 3, H, W] in -1..1."""

    def __init__(self, taesd: Any):
        self.taesd = taesd

    def decode_latent_to_preview(self, x0: torch.Tensor) -> Image.Image:
        return preview_to_image(self.taesd.decode(x0[:1])[0].movedim(0, 2))


class LatentFormatPreviewer(LatentPreviewer):
    """Previews with a Sigmagraph latent format's own latent -> RGB projection."""

    def __init__(self, latent_format: LatentFormat,
                 latent_rgb_factors_reshape: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.latent_format = latent_format
        self.latent_rgb_factors_reshape = latent_rgb_factors_reshape

    def decode_latent_to_preview(self, x0: torch.Tensor) -> Image.Image:
        if self.latent_rgb_factors_reshape is not None:
            x0 = self.latent_rgb_factors_reshape(x0)
        first = x0[:1, :, 0] if x0.ndim == 5 else x0[:1]  # the first image (of a video: its first frame)
        rgb = self.latent_format.preview_rgb(first.float())[0]  # in 0..1
        return preview_to_image(rgb * 2.0 - 1.0)


class Latent2RGBPreviewer(LatentFormatPreviewer):
    """Previews by a linear map of each latent pixel to RGB ([channels][3] factors, optional bias)."""

    def __init__(self, latent_rgb_factors: Any, latent_rgb_factors_bias: Any = None,
                 latent_rgb_factors_reshape: Callable[[torch.Tensor], torch.Tensor] | None = None):
        factors = tuple(tuple(float(v) for v in row) for row in torch.as_tensor(latent_rgb_factors).tolist())
        bias = (0.0, 0.0, 0.0) if latent_rgb_factors_bias is None else tuple(float(v) for v in latent_rgb_factors_bias)
        super().__init__(LatentFormat(channels=len(factors), rgb_factors=factors, rgb_bias=bias),
                         latent_rgb_factors_reshape)


def get_previewer(device: Any, latent_format: Any) -> LatentPreviewer | None:
    """The previewer of a latent format (ComfyUI's or Sigmagraph's); None when previews are off or impossible."""
    if args.preview_method == LatentPreviewMethod.NoPreviews:
        return None
    if isinstance(latent_format, LatentFormat):
        return LatentFormatPreviewer(latent_format)
    factors = getattr(latent_format, "latent_rgb_factors", None)
    if factors is None:
        return None
    return Latent2RGBPreviewer(factors, getattr(latent_format, "latent_rgb_factors_bias", None),
                               getattr(latent_format, "latent_rgb_factors_reshape", None))


def prepare_callback(model: Any, steps: int, x0_output_dict: dict | None = None
                     ) -> Callable[[int, torch.Tensor, torch.Tensor, int], None]:
    """ComfyUI's sampler callback for `model`: progress (with previews) of the running node; x0 kept in x0_output_dict."""
    diffusion_model = from_comfy("MODEL", model)
    previewer = get_previewer(diffusion_model.device, diffusion_model.latent_format)
    pbar = comfy.utils.ProgressBar(steps)

    def callback(step: int, x0: torch.Tensor, x: torch.Tensor, total_steps: int) -> None:
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        preview = previewer.decode_latent_to_preview_image("JPEG", x0) if previewer else None
        pbar.update_absolute(step + 1, total_steps, preview)

    return callback
