"""Loader nodes: checkpoints, diffusion models, VAEs, text encoders and LoRAs (ComfyUI's names and inputs).

Files come from the models folder's subfolders (checkpoints/, diffusion_models/ and the legacy
unet/, vae/, text_encoders/ and the legacy clip/, loras/); a node re-runs when its file's size or
modification time changes. A file that cannot be used — missing, outside its folder, truncated,
unsafe, of an unknown family — fails the node with an error naming it.
"""

from __future__ import annotations

import torch

from sigmagraph.engine import Combo, Config, Float, Hidden, RunContext, Socket, node

from ..models.checkpoint import open_checkpoint
from ..models.devices import compute_device, parse_dtype
from ..models.families import FAMILIES, FLUX_DEV_FAMILY, SD3, SDXL, ModelFamily
from ..models.loading import load_checkpoint, load_text_encoders, load_unet, load_vae
from ..models.lora import LoraLayer, read_lora
from ..models.runtime import CLIP, apply_lora
from .files import model_file, model_file_fingerprint, model_files
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

STRENGTH = dict(min=-100.0, max=100.0, step=0.01)
DIFFUSION_MODELS = ("diffusion_models", "unet")  # the current folder, then the legacy one
TEXT_ENCODERS = ("text_encoders", "clip")
# The families each `type` of CLIPLoader / DualCLIPLoader may load (the files' widths and layouts pick one).
CLIP_TYPES = {"stable_diffusion": FAMILIES, "sd3": (SD3,)}
DUAL_CLIP_TYPES = {"sdxl": (SDXL,), "sd3": (SD3,), "flux": (FLUX_DEV_FAMILY,)}
# ComfyUI's fp8 weight_dtype choices. "_fast" asks ComfyUI for fp8 matrix products on GPUs that have
# them; here it stores the weights as fp8_e4m3fn does.
FP8_STORAGE = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e4m3fn_fast": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
# Where text encoders compute: the configured device, or the CPU (ComfyUI's optional `device` input).
DEVICE = Combo(["default", "cpu"], default="default", optional=True)


def placement(config: Config) -> tuple[torch.device, torch.dtype | None]:
    """The compute device and the weight dtype the configuration asks for (None: the device's own)."""
    return compute_device(config.device), parse_dtype(config.dtype) if config.dtype is not None else None


def text_encoder_placement(config: Config, device: str) -> tuple[torch.device, torch.dtype | None]:
    """`placement`, or the CPU (in float32) when a loader's `device` input says "cpu"."""
    return (torch.device("cpu"), None) if device == "cpu" else placement(config)


def _load_text_encoders(ctx: RunContext, names: list[str], device: str, families: tuple[ModelFamily, ...]) -> CLIP:
    files = [(model_file(ctx.config, TEXT_ENCODERS, name), name) for name in names]
    return load_text_encoders(files, *text_encoder_placement(ctx.config, device), families=families)


@node(returns=["MODEL", "CLIP", "VAE"], category="loaders", display_name="Load Checkpoint",
      fingerprint=model_file_fingerprint("checkpoints", "ckpt_name"))
def CheckpointLoaderSimple(ckpt_name=Combo(model_files("checkpoints"), files_in="models/checkpoints",
                                           tooltip="The name of the checkpoint (model) to load."),
                           ctx: RunContext = Hidden.CONTEXT):
    """Loads a single-file checkpoint: its diffusion model, text encoder(s) and VAE; the family is detected."""
    return load_checkpoint(model_file(ctx.config, "checkpoints", ckpt_name), ckpt_name, *placement(ctx.config))


@node(returns=["MODEL"], category="advanced/loaders", display_name="Load Diffusion Model",
      fingerprint=model_file_fingerprint(DIFFUSION_MODELS, "unet_name"))
def UNETLoader(unet_name=Combo(model_files(DIFFUSION_MODELS), files_in="models/diffusion_models"),
               weight_dtype=Combo(["default", *FP8_STORAGE, "fp32", "fp16", "bf16"], default="default",
                                  tooltip="default: float32 on the CPU, float16 on CUDA (or --dtype), fp8 files kept "
                                          "in fp8; fp8_*: linear weights stored in fp8 and up-cast layer by layer"),
               ctx: RunContext = Hidden.CONTEXT):
    """Loads a diffusion model (UNet, MMDiT or Flux transformer) alone; the family is detected from its keys and shapes."""
    device, dtype = placement(ctx.config)
    path = model_file(ctx.config, DIFFUSION_MODELS, unet_name)
    if weight_dtype in FP8_STORAGE:
        return load_unet(path, unet_name, device, dtype, storage=FP8_STORAGE[weight_dtype])
    return load_unet(path, unet_name, device, dtype if weight_dtype == "default" else parse_dtype(weight_dtype))


@node(returns=["VAE"], category="loaders", display_name="Load VAE", fingerprint=model_file_fingerprint("vae", "vae_name"))
def VAELoader(vae_name=Combo(model_files("vae"), files_in="models/vae"), ctx: RunContext = Hidden.CONTEXT):
    """Loads a KL autoencoder (4 or 16 latent channels: a VAE file, or the VAE inside a checkpoint)."""
    return load_vae(model_file(ctx.config, "vae", vae_name), vae_name, *placement(ctx.config))


@node(returns=["CLIP"], category="advanced/loaders", display_name="Load CLIP",
      fingerprint=model_file_fingerprint(TEXT_ENCODERS, "clip_name"))
def CLIPLoader(clip_name=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
               type=Combo(list(CLIP_TYPES), default="stable_diffusion",
                          tooltip="stable_diffusion: CLIP-L (SD 1.x), OpenCLIP-H (SD 2.x) or bigG (the SDXL refiner), "
                                  "from its width; sd3: one of SD3's CLIP-L, bigG and T5-XXL"),
               device=DEVICE, ctx: RunContext = Hidden.CONTEXT):
    """Loads one text encoder; which model family it serves is read from its width or layout."""
    return _load_text_encoders(ctx, [clip_name], device, CLIP_TYPES[type])


@node(returns=["CLIP"], category="advanced/loaders", display_name="DualCLIPLoader",
      fingerprint=model_file_fingerprint(TEXT_ENCODERS, "clip_name1", "clip_name2"))
def DualCLIPLoader(clip_name1=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
                   clip_name2=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
                   type=Combo(list(DUAL_CLIP_TYPES), default="sdxl",
                              tooltip="sdxl: CLIP-L + bigG; sd3: two of CLIP-L, bigG and T5-XXL; flux: CLIP-L + T5-XXL"),
                   device=DEVICE, ctx: RunContext = Hidden.CONTEXT):
    """Loads a family's two text encoders, in either order."""
    return _load_text_encoders(ctx, [clip_name1, clip_name2], device, DUAL_CLIP_TYPES[type])


@node(returns=["CLIP"], category="advanced/loaders", display_name="TripleCLIPLoader",
      fingerprint=model_file_fingerprint(TEXT_ENCODERS, "clip_name1", "clip_name2", "clip_name3"))
def TripleCLIPLoader(clip_name1=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
                     clip_name2=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
                     clip_name3=Combo(model_files(TEXT_ENCODERS), files_in="models/text_encoders"),
                     ctx: RunContext = Hidden.CONTEXT):
    """Loads SD3's three text encoders, CLIP-L, bigG and T5-XXL, in any order."""
    return _load_text_encoders(ctx, [clip_name1, clip_name2, clip_name3], "default", (SD3,))


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
