"""Loading model files into MODEL, CLIP and VAE values: detect, build on the meta device, assign weights, wrap.

Every module is built on the meta device (`meta_module`: no storage, no init) and given the file's
tensors cast into its dtype on the offload device (checkpoint.load_weights), so loading costs
the model's size and no more; the model manager moves it to the compute device when it is first
used. The compute device and the dtype are the caller's (a node pack reads them from its config);
a dtype of None picks the device's (devices.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import Tensor, nn

from ..diffusion_model import DiffusionModel
from ..sampling.model_sampling import Prediction
from .checkpoint import Checkpoint, CheckpointError, load_weights, open_checkpoint
from .clip import CLIPTextModel, canonical_entries, is_openclip
from .detection import (TEXT_ENCODER_PREFIXES, describe_keys, detect, read_text_encoder_config, read_vae_config,
                        reading, text_encoder_family, text_encoder_prefix, text_encoder_width, vae_prefix)
from .devices import vae_dtype, weight_dtype
from .families import FAMILIES, FAMILY_MARK_KEY, ModelFamily, TextEncoderSlot
from .manager import ModelManager, ModuleHandle, manager_for
from .module_init import meta_module
from .runtime import CLIP, VAE, TextEncoder, UNetNetwork, diffusion_model
from .tokenizer import CLIPTokenizer
from .unet import UNetModel
from .vae import SD_VAE, AutoencoderKL, VAEConfig

M = TypeVar("M", bound=nn.Module)


def _build(factory: Callable[..., M], config: object, tensors: Iterable[tuple[str, Tensor]], dtype: torch.dtype,
           source: str, memory_format: torch.memory_format = torch.contiguous_format) -> M:
    """A module with the weights of (name, tensor) pairs in `dtype`, on the offload device."""
    module = meta_module(factory, config)
    load_weights(module, tensors, dtype, source, memory_format)
    return module


def _text_encoder_tensors(checkpoint: Checkpoint, prefix: str) -> Iterator[tuple[str, Tensor]]:
    """The text encoder under `prefix` in our layout, tensor by tensor."""
    openclip = is_openclip(checkpoint.keys_under(prefix))
    for key, value in checkpoint.items(prefix):
        yield from canonical_entries(key, value, openclip)


def _text_encoder(checkpoint: Checkpoint, prefix: str, slot: TextEncoderSlot, dtype: torch.dtype,
                  manager: ModelManager) -> TextEncoder:
    with reading(checkpoint, f"text encoder ({slot.name})"):
        config = read_text_encoder_config(checkpoint, prefix, slot.config)
    module = _build(CLIPTextModel, config, _text_encoder_tensors(checkpoint, prefix), dtype,
                    f"{checkpoint.name} ({slot.name})")
    return TextEncoder(manager.register(module), slot, CLIPTokenizer(slot.settings.pad_token))


def _vae(checkpoint: Checkpoint, prefix: str, template: VAEConfig, dtype: torch.dtype | None,
         manager: ModelManager) -> VAE:
    with reading(checkpoint, "VAE"):
        vae_config = read_vae_config(checkpoint, prefix, template)
    module = _build(AutoencoderKL, vae_config, checkpoint.items(prefix), vae_dtype(manager.device, dtype),
                    f"{checkpoint.name} (VAE)", AutoencoderKL.memory_format)
    return VAE(ModuleHandle(manager.register(module)))


def _model(checkpoint: Checkpoint, dtype: torch.dtype | None, manager: ModelManager,
           prediction: Prediction | None) -> tuple[DiffusionModel, ModelFamily]:
    family, unet_config, prefix = detect(checkpoint)
    unet = _build(UNetModel, unet_config, checkpoint.items(prefix), weight_dtype(manager.device, dtype),
                  f"{checkpoint.name} (UNet)")
    return diffusion_model(family, UNetNetwork(manager.register(unet)), prediction), family


def load_checkpoint(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None,
                    prediction: Prediction | None = None) -> tuple[DiffusionModel, CLIP, VAE]:
    """CheckpointLoaderSimple: the MODEL, CLIP and VAE of a single-file checkpoint, computing on `device`."""
    manager = manager_for(device)
    with open_checkpoint(path, name) as checkpoint:
        model, family = _model(checkpoint, dtype, manager, prediction)
        parts = []
        for slot in family.text_encoders:
            prefix = text_encoder_prefix(checkpoint, slot.prefixes)
            if prefix is None:
                raise CheckpointError(f"{name}: this {family.name} checkpoint has no {slot.name} text encoder "
                                      f"(nothing under {', '.join(slot.prefixes)}); load one with CLIPLoader")
            parts.append(_text_encoder(checkpoint, prefix, slot, weight_dtype(device, dtype), manager))
        vae = _vae(checkpoint, vae_prefix(checkpoint, (family.vae_prefix,)), family.vae, dtype, manager)
    return model, CLIP(tuple(parts), family.name), vae


def load_unet(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None) -> DiffusionModel:
    """UNETLoader: the MODEL of a file holding a UNet (bare, or inside a checkpoint)."""
    with open_checkpoint(path, name) as checkpoint:
        return _model(checkpoint, dtype, manager_for(device), None)[0]


def load_vae(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None) -> VAE:
    """VAELoader: the KL autoencoder of a file (bare, or inside a checkpoint)."""
    with open_checkpoint(path, name) as checkpoint:
        # What shapes cannot tell (norm groups) comes from the family a file names, else SD's autoencoder.
        mark = checkpoint.metadata.get(FAMILY_MARK_KEY)
        template = next((family.vae for family in FAMILIES if family.name == mark), SD_VAE)
        return _vae(checkpoint, vae_prefix(checkpoint), template, dtype, manager_for(device))


def load_text_encoders(files: list[tuple[Path, str]], device: torch.device, dtype: torch.dtype | None = None,
                       families: Iterable[ModelFamily] = FAMILIES) -> CLIP:
    """CLIPLoader / DualCLIPLoader: a CLIP from text-encoder files, its family chosen by their widths."""
    manager = manager_for(device)
    with ExitStack() as files_open:
        found = []
        for path, name in files:
            checkpoint = files_open.enter_context(open_checkpoint(path, name))
            prefix = text_encoder_prefix(checkpoint, TEXT_ENCODER_PREFIXES)
            if prefix is None:
                raise CheckpointError(f"{name}: no CLIP text encoder found (no token embedding); the file holds "
                                      f"{describe_keys(checkpoint.keys())}")
            found.append((checkpoint, prefix))
        widths = []
        for checkpoint, prefix in found:
            with reading(checkpoint, "text encoder"):
                widths.append(text_encoder_width(checkpoint, prefix))
        family, slots = text_encoder_family(widths, families)
        by_slot = {slot.name: source for slot, source in zip(slots, found)}
        parts = tuple(_text_encoder(*by_slot[slot.name], slot, weight_dtype(device, dtype), manager)
                      for slot in family.text_encoders)
    return CLIP(parts, family.name)
