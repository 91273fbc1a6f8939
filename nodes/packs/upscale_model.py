"""Upscale-model nodes: UpscaleModelLoader and ImageUpscaleWithModel (ComfyUI's names, inputs and outputs).

Files come from models/upscale_models/: ESRGAN and Real-ESRGAN models (RRDBNet, any key layout,
x1 to x8) and Real-ESRGAN's compact models; another architecture fails the loader with an error
naming the file.
"""

from __future__ import annotations

from sigmagraph.engine import Combo, Hidden, RunContext, Socket, SocketType, node

from ..models.upscale_model import load_upscale_model
from .files import model_file, model_file_fingerprint, model_files
from .loaders import placement
from .types import SOCKET_TYPES as DOMAIN_TYPES

SOCKET_TYPES = DOMAIN_TYPES + [
    SocketType(name="UPSCALE_MODEL", color="#ff9800", description="an image upscaling network (ESRGAN...)"),
]


@node(returns=["UPSCALE_MODEL"], category="loaders", display_name="Load Upscale Model",
      fingerprint=model_file_fingerprint("upscale_models", "model_name"))
def UpscaleModelLoader(model_name=Combo(model_files("upscale_models"), files_in="models/upscale_models"),
                       ctx: RunContext = Hidden.CONTEXT):
    """Loads an image upscaling model (ESRGAN, Real-ESRGAN, Real-ESRGAN compact)."""
    path = model_file(ctx.config, "upscale_models", model_name)
    return load_upscale_model(path, model_name, placement(ctx.config)[0])


@node(returns=["IMAGE"], category="image/upscaling", display_name="Upscale Image (using Model)")
def ImageUpscaleWithModel(upscale_model=Socket("UPSCALE_MODEL"), image=Socket("IMAGE"),
                          ctx: RunContext = Hidden.CONTEXT):
    """Upscales an image with a model, in tiles of 512 pixels; an alpha channel is resized alongside."""
    return upscale_model.upscale(image, ctx.progress)
