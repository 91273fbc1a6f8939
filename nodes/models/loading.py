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
from .detection import (TEXT_ENCODER_PREFIXES, architecture_of, describe_keys, detect, read_t5_config,
                        read_text_encoder_config, read_vae_config, reading, text_encoder_family, text_encoder_kind,
                        text_encoder_prefix, vae_prefix)
from .devices import vae_dtype, weight_dtype
from .families import FAMILIES, FAMILY_MARK_KEY, ModelFamily, TextEncoderSlot
from .manager import ModelManager, ModuleHandle, manager_for
from .module_init import meta_module
from .runtime import CLIP, VAE, DiffusionNetwork, TextEncoder, diffusion_model
from .t5 import T5EncoderModel, canonical_state_dict
from .t5_text import T5Tokenizer, tokenizer_path
from .tokenizer import CLIPTokenizer
from .vae import SD_VAE, AutoencoderKL, VAEConfig
from .weight_storage import is_scaled_fp8, stored_fp8_dtype, upcast_linears, without_fp8_extras

M = TypeVar("M", bound=nn.Module)


def _build(factory: Callable[..., M], config: object, tensors: Iterable[tuple[str, Tensor]], dtype: torch.dtype,
           source: str, memory_format: torch.memory_format = torch.contiguous_format) -> M:
    """A module with the weights of (name, tensor) pairs in `dtype`, on the offload device."""
    module = meta_module(factory, config)
    load_weights(module, tensors, dtype, source, memory_format)
    return module


def _clip_tensors(checkpoint: Checkpoint, prefix: str) -> Iterator[tuple[str, Tensor]]:
    """The CLIP text encoder under `prefix` in our layout, tensor by tensor."""
    openclip = is_openclip(checkpoint.keys_under(prefix))
    for key, value in checkpoint.items(prefix):
        yield from canonical_entries(key, value, openclip)


def _text_encoder(checkpoint: Checkpoint, prefix: str, slot: TextEncoderSlot, path: Path, dtype: torch.dtype,
                  manager: ModelManager) -> TextEncoder:
    """The encoder under `prefix` for `slot`; a T5's tokenizer is read from beside the file at `path`."""
    source = f"{checkpoint.name} ({slot.name})"
    with reading(checkpoint, f"text encoder ({slot.name})"):
        config = (read_t5_config if slot.is_t5 else read_text_encoder_config)(checkpoint, prefix, slot.config)
    if slot.is_t5:
        tokenizer = T5Tokenizer(tokenizer_path(path), slot.settings.min_length)
        module = meta_module(T5EncoderModel, config)
        # Renamed from the keys alone, so each tensor is read as it is assigned (no view of the whole file held).
        keys = canonical_state_dict({key: prefix + key for key in checkpoint.keys_under(prefix)})
        load_weights(module, without_fp8_extras((key, checkpoint.view(stored)) for key, stored in keys.items()),
                     dtype, source, dtypes=_linear_storage(module, checkpoint, prefix, dtype))
    else:
        tokenizer = CLIPTokenizer(slot.settings.pad_token, slot.settings.min_length)
        module = _build(CLIPTextModel, config, _clip_tensors(checkpoint, prefix), dtype, source)
    return TextEncoder(manager.register(module, dtype), slot, tokenizer)


def _vae(checkpoint: Checkpoint, prefix: str, template: VAEConfig, dtype: torch.dtype | None,
         manager: ModelManager) -> VAE:
    with reading(checkpoint, "VAE"):
        vae_config = read_vae_config(checkpoint, prefix, template)
    module = _build(AutoencoderKL, vae_config, checkpoint.items(prefix), vae_dtype(manager.device, dtype),
                    f"{checkpoint.name} (VAE)", AutoencoderKL.memory_format)
    return VAE(ModuleHandle(manager.register(module)))


def _linear_storage(module: nn.Module, checkpoint: Checkpoint, prefix: str, compute: torch.dtype,
                    storage: torch.dtype | None = None, keep_file_fp8: bool = True) -> dict[str, torch.dtype] | None:
    """Readies a meta-built module's linear layers for fp8 weights (weight_storage.py); their storage dtypes.

    fp8 storage when `storage` asks for it, or when the file stores fp8 weights and `keep_file_fp8`;
    a scaled-fp8 file otherwise up-casts on load and still applies its scales. None: nothing to ready.
    """
    storage = storage or (stored_fp8_dtype(checkpoint, prefix, module) if keep_file_fp8 else None)
    if storage is None and is_scaled_fp8(checkpoint, prefix):
        storage = compute
    return None if storage is None else upcast_linears(module, checkpoint, prefix, storage)


def _model(checkpoint: Checkpoint, dtype: torch.dtype | None, manager: ModelManager, prediction: Prediction | None,
           storage: torch.dtype | None = None) -> tuple[DiffusionModel, ModelFamily]:
    """The MODEL of the file's network; linear weights in fp8 when `storage` asks or the file stores them so."""
    family, config, prefix = detect(checkpoint)
    arch = architecture_of(config)
    compute = weight_dtype(manager.device, dtype)
    module = meta_module(arch.module, config)
    dtypes = _linear_storage(module, checkpoint, prefix, compute, storage, keep_file_fp8=dtype is None)
    load_weights(module, without_fp8_extras(checkpoint.items(prefix)), compute, f"{checkpoint.name} ({arch.name})",
                 dtypes=dtypes)
    network = DiffusionNetwork(manager.register(module, compute))
    return diffusion_model(family, network, prediction), family


def load_checkpoint(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None,
                    prediction: Prediction | None = None) -> tuple[DiffusionModel, CLIP, VAE]:
    """CheckpointLoaderSimple: the MODEL, CLIP and VAE of a single-file checkpoint, computing on `device`.

    A family's optional text encoders (SD3's) are loaded when the file has them.
    """
    manager = manager_for(device)
    with open_checkpoint(path, name) as checkpoint:
        model, family = _model(checkpoint, dtype, manager, prediction)
        parts = []
        for slot in family.text_encoders:
            prefix = text_encoder_prefix(checkpoint, slot.prefixes)
            if prefix is None and slot.optional:
                continue
            if prefix is None:
                raise CheckpointError(f"{name}: this {family.name} checkpoint has no {slot.name} text encoder "
                                      f"(nothing under {', '.join(slot.prefixes)}); load one with a CLIP loader")
            parts.append(_text_encoder(checkpoint, prefix, slot, path, weight_dtype(device, dtype), manager))
        vae = _vae(checkpoint, vae_prefix(checkpoint, (family.vae_prefix,)), family.vae, dtype, manager)
    return model, CLIP(tuple(parts), family.name, family.join_text), vae


def load_unet(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None,
              storage: torch.dtype | None = None) -> DiffusionModel:
    """UNETLoader: the MODEL of a file holding a diffusion network (bare, or inside a checkpoint).

    `storage` (a float8 dtype) keeps the linear weights in it, computing in `dtype` (weight_storage.py);
    a file of float8 weights keeps them so unless `dtype` is given.
    """
    with open_checkpoint(path, name) as checkpoint:
        return _model(checkpoint, dtype, manager_for(device), None, storage)[0]


def load_vae(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None) -> VAE:
    """VAELoader: the KL autoencoder of a file (bare, or inside a checkpoint)."""
    with open_checkpoint(path, name) as checkpoint:
        # What shapes cannot tell (norm groups) comes from the family a file names, else SD's autoencoder.
        mark = checkpoint.metadata.get(FAMILY_MARK_KEY)
        template = next((family.vae for family in FAMILIES if family.name == mark), SD_VAE)
        return _vae(checkpoint, vae_prefix(checkpoint), template, dtype, manager_for(device))


def load_text_encoders(files: list[tuple[Path, str]], device: torch.device, dtype: torch.dtype | None = None,
                       families: Iterable[ModelFamily] = FAMILIES) -> CLIP:
    """CLIPLoader / DualCLIPLoader / TripleCLIPLoader: a CLIP from text-encoder files.

    The family is the first of `families` whose encoders these are: CLIPs told apart by their
    widths, T5 by its layout.
    """
    manager = manager_for(device)
    with ExitStack() as files_open:
        found = []
        for path, name in files:
            checkpoint = files_open.enter_context(open_checkpoint(path, name))
            prefix = text_encoder_prefix(checkpoint, TEXT_ENCODER_PREFIXES)
            if prefix is None:
                raise CheckpointError(f"{name}: no text encoder found (no CLIP token embedding, no T5 block); the "
                                      f"file holds {describe_keys(checkpoint.keys())}")
            found.append((checkpoint, prefix, path))
        kinds = []
        for checkpoint, prefix, _ in found:
            with reading(checkpoint, "text encoder"):
                kinds.append(text_encoder_kind(checkpoint, prefix))
        family, slots = text_encoder_family(kinds, families)
        by_slot = {slot.name: source for slot, source in zip(slots, found)}
        parts = []
        for slot in family.text_encoders:
            if slot.name in by_slot:
                checkpoint, prefix, path = by_slot[slot.name]
                parts.append(_text_encoder(checkpoint, prefix, slot, path, weight_dtype(device, dtype), manager))
    return CLIP(tuple(parts), family.name, family.join_text)
