"""Loader nodes: checkpoints, diffusion models, VAEs, text encoders and LoRAs (ComfyUI's names and inputs).

Files come from the models folder's subfolders (checkpoints/, unet/, vae/, clip/, loras/); a
node re-runs when its file's size or modification time changes. A file that cannot be used —
missing, outside its folder, truncated, unsafe, of an unknown family — fails the node with an
error naming it.
"""

from __future__ import annotations

import torch

from sigmagraph.engine import Combo, Config, Float, Hidden, RunContext, Socket, node

from ..models.checkpoint import open_checkpoint
from ..models.devices import compute_device, parse_dtype
from ..models.families import FAMILIES, SDXL
from ..models.loading import load_checkpoint, load_text_encoders, load_unet, load_vae
from ..models.lora import LoraLayer, read_lora
from ..models.runtime import apply_lora
from .files import model_file, model_file_fingerprint, model_files
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

STRENGTH = dict(min=-100.0, max=100.0, step=0.01)
# The families each `type` of CLIPLoader / DualCLIPLoader may load (the files' widths pick one).
CLIP_TYPES = {"stable_diffusion": FAMILIES}
DUAL_CLIP_TYPES = {"sdxl": (SDXL,)}


def placement(config: Config) -> tuple[torch.device, torch.dtype | None]:
    """The compute device and the weight dtype the configuration asks for (None: the device's own)."""
    return compute_device(config.device), parse_dtype(config.dtype) if config.dtype is not None else None


@node(returns=["MODEL", "CLIP", "VAE"], category="loaders", display_name="Load Checkpoint",
      fingerprint=model_file_fingerprint("checkpoints", "ckpt_name"))
def CheckpointLoaderSimple(ckpt_name=Combo(model_files("checkpoints"), files_in="models/checkpoints",
                                           tooltip="The name of the checkpoint (model) to load."),
                           ctx: RunContext = Hidden.CONTEXT):
    """Loads a single-file checkpoint: its diffusion model, text encoder(s) and VAE; the family is detected."""
    return load_checkpoint(model_file(ctx.config, "checkpoints", ckpt_name), ckpt_name, *placement(ctx.config))


@node(returns=["MODEL"], category="advanced/loaders", display_name="Load Diffusion Model",
      fingerprint=model_file_fingerprint("unet", "unet_name"))
def UNETLoader(unet_name=Combo(model_files("unet"), files_in="models/unet"),
               weight_dtype=Combo(["default", "fp32", "fp16", "bf16"], default="default",
                                  tooltip="default: float32 on the CPU, float16 on CUDA (or --dtype)"),
               ctx: RunContext = Hidden.CONTEXT):
    """Loads a diffusion model (UNet) alone; the family is detected from its shapes."""
    device, dtype = placement(ctx.config)
    if weight_dtype != "default":
        dtype = parse_dtype(weight_dtype)
    return load_unet(model_file(ctx.config, "unet", unet_name), unet_name, device, dtype)


@node(returns=["VAE"], category="loaders", display_name="Load VAE", fingerprint=model_file_fingerprint("vae", "vae_name"))
def VAELoader(vae_name=Combo(model_files("vae"), files_in="models/vae"), ctx: RunContext = Hidden.CONTEXT):
    """Loads a KL autoencoder (a VAE file, or the VAE inside a checkpoint)."""
    return load_vae(model_file(ctx.config, "vae", vae_name), vae_name, *placement(ctx.config))


@node(returns=["CLIP"], category="advanced/loaders", display_name="Load CLIP",
      fingerprint=model_file_fingerprint("clip", "clip_name"))
def CLIPLoader(clip_name=Combo(model_files("clip"), files_in="models/clip"),
               type=Combo(list(CLIP_TYPES), default="stable_diffusion",
                          tooltip="CLIP-L: SD 1.x, OpenCLIP-H: SD 2.x, bigG: the SDXL refiner (from its width)"),
               ctx: RunContext = Hidden.CONTEXT):
    """Loads one text encoder; which model family it serves is read from its width."""
    return load_text_encoders([(model_file(ctx.config, "clip", clip_name), clip_name)], *placement(ctx.config),
                              families=CLIP_TYPES[type])


@node(returns=["CLIP"], category="advanced/loaders", display_name="DualCLIPLoader",
      fingerprint=model_file_fingerprint("clip", "clip_name1", "clip_name2"))
def DualCLIPLoader(clip_name1=Combo(model_files("clip"), files_in="models/clip"),
                   clip_name2=Combo(model_files("clip"), files_in="models/clip"),
                   type=Combo(list(DUAL_CLIP_TYPES), default="sdxl"), ctx: RunContext = Hidden.CONTEXT):
    """Loads SDXL's two text encoders, CLIP-L and bigG, in either order."""
    files = [(model_file(ctx.config, "clip", name), name) for name in (clip_name1, clip_name2)]
    return load_text_encoders(files, *placement(ctx.config), families=DUAL_CLIP_TYPES[type])


def _lora_layers(ctx: RunContext, lora_name: str) -> dict[str, LoraLayer]:
    with open_checkpoint(model_file(ctx.config, "loras", lora_name), lora_name) as checkpoint:
        return read_lora(checkpoint)


@node(returns=["MODEL", "CLIP"], category="loaders", display_name="Load LoRA",
      fingerprint=model_file_fingerprint("loras", "lora_name"))
def LoraLoader(model=Socket("MODEL"), clip=Socket("CLIP"),
               lora_name=Combo(model_files("loras"), files_in="models/loras"),
               strength_model: float = Float(1.0, **STRENGTH), strength_clip: float = Float(1.0, **STRENGTH),
               ctx: RunContext = Hidden.CONTEXT):
    """Applies a LoRA to the diffusion model and the text encoder; the inputs themselves stay unchanged."""
    if strength_model == 0 and strength_clip == 0:
        return model, clip
    return apply_lora(_lora_layers(ctx, lora_name), lora_name, model, strength_model, clip, strength_clip)


@node(returns=["MODEL"], category="loaders", display_name="LoraLoaderModelOnly",
      fingerprint=model_file_fingerprint("loras", "lora_name"))
def LoraLoaderModelOnly(model=Socket("MODEL"), lora_name=Combo(model_files("loras"), files_in="models/loras"),
                        strength_model: float = Float(1.0, **STRENGTH), ctx: RunContext = Hidden.CONTEXT):
    """Applies a LoRA to the diffusion model only."""
    if strength_model == 0:
        return model
    return apply_lora(_lora_layers(ctx, lora_name), lora_name, model, strength_model)[0]
