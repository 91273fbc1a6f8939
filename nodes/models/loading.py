"""Loading model files into MODEL, CLIP and VAE values: detect, build empty, copy weights in, wrap.

Every module is built with `empty_module` on the offload device in its final dtype and filled
tensor by tensor (checkpoint.copy_weights), so loading costs the model's size and no more; the
model manager moves it to the compute device when it is first used.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import torch
from torch import Tensor, nn

from sigmagraph.engine import Config

from ..diffusion_model import DiffusionModel
from ..sampling.model_sampling import Prediction
from .checkpoint import Checkpoint, CheckpointError, copy_weights, open_checkpoint
from .clip import CLIPTextModel, canonical_entries, is_openclip
from .detection import (TEXT_ENCODER_PREFIXES, describe_keys, detect, read_text_encoder_config, read_vae_config,
                        reading, text_encoder_family, text_encoder_prefix, text_encoder_width, vae_prefix)
from .devices import OFFLOAD_DEVICE, compute_device, vae_dtype, weight_dtype
from .families import FAMILIES, FAMILY_MARK_KEY, ModelFamily, TextEncoderSlot
from .manager import ModelManager, ModuleHandle, manager_for
from .module_init import empty_module
from .runtime import CLIP, VAE, TextEncoder, UNetNetwork, diffusion_model
from .tokenizer import CLIPTokenizer
from .unet import UNetModel
from .vae import SD_VAE, AutoencoderKL, VAEConfig

M = TypeVar("M", bound=nn.Module)


def _build(factory: Callable[..., M], config: object, tensors: Iterable[tuple[str, Tensor]], dtype: torch.dtype,
           source: str) -> M:
    """A module built empty on the offload device in `dtype`, filled from (name, tensor) pairs."""
    module = empty_module(factory, config, device=OFFLOAD_DEVICE, dtype=dtype)
    copy_weights(module, tensors, source)
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


def _vae(checkpoint: Checkpoint, prefix: str, template: VAEConfig, config: Config, manager: ModelManager) -> VAE:
    with reading(checkpoint, "VAE"):
        vae_config = read_vae_config(checkpoint, prefix, template)
    module = _build(AutoencoderKL, vae_config, checkpoint.items(prefix), vae_dtype(config, manager.device),
                    f"{checkpoint.name} (VAE)")
    return VAE(ModuleHandle(manager.register(module)))


def _model(checkpoint: Checkpoint, dtype: torch.dtype | None, config: Config, manager: ModelManager,
           prediction: Prediction | None) -> tuple[DiffusionModel, ModelFamily]:
    family, unet_config, prefix = detect(checkpoint)
    unet = _build(UNetModel, unet_config, checkpoint.items(prefix), dtype or weight_dtype(config, manager.device),
                  f"{checkpoint.name} (UNet)")
    return diffusion_model(family, UNetNetwork(manager.register(unet)), prediction), family


def load_checkpoint(path: Path, name: str, config: Config,
                    prediction: Prediction | None = None) -> tuple[DiffusionModel, CLIP, VAE]:
    """CheckpointLoaderSimple: the MODEL, CLIP and VAE of a single-file checkpoint."""
    manager = manager_for(compute_device(config))
    with open_checkpoint(path, name) as checkpoint:
        model, family = _model(checkpoint, None, config, manager, prediction)
        parts = []
        for slot in family.text_encoders:
            prefix = text_encoder_prefix(checkpoint, slot.prefixes)
            if prefix is None:
                raise CheckpointError(f"{name}: this {family.name} checkpoint has no {slot.name} text encoder "
                                      f"(nothing under {', '.join(slot.prefixes)}); load one with CLIPLoader")
            parts.append(_text_encoder(checkpoint, prefix, slot, weight_dtype(config, manager.device), manager))
        vae = _vae(checkpoint, vae_prefix(checkpoint, (family.vae_prefix,)), family.vae, config, manager)
    return model, CLIP(tuple(parts), family.name), vae


def load_unet(path: Path, name: str, config: Config, dtype: torch.dtype | None = None) -> DiffusionModel:
    """UNETLoader: the MODEL of a file holding a UNet (bare, or inside a checkpoint)."""
    with open_checkpoint(path, name) as checkpoint:
        return _model(checkpoint, dtype, config, manager_for(compute_device(config)), None)[0]


def load_vae(path: Path, name: str, config: Config) -> VAE:
    """VAELoader: the KL autoencoder of a file (bare, or inside a checkpoint)."""
    with open_checkpoint(path, name) as checkpoint:
        # What shapes cannot tell (norm groups) comes from the family a file names, else SD's autoencoder.
        mark = checkpoint.metadata.get(FAMILY_MARK_KEY)
        template = next((family.vae for family in FAMILIES if family.name == mark), SD_VAE)
        return _vae(checkpoint, vae_prefix(checkpoint), template, config, manager_for(compute_device(config)))


def load_text_encoders(files: list[tuple[Path, str]], config: Config,
                       families: Iterable[ModelFamily] = FAMILIES) -> CLIP:
    """CLIPLoader / DualCLIPLoader: a CLIP from text-encoder files, its family chosen by their widths."""
    manager = manager_for(compute_device(config))
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
        dtype = weight_dtype(config, manager.device)
        parts = tuple(_text_encoder(*by_slot[slot.name], slot, dtype, manager) for slot in family.text_encoders)
    return CLIP(parts, family.name)
