"""Recognising a model file from its keys and shapes: its family, and the sizes of its parts.

Sizes are read, never assumed: the UNet's channels, levels, blocks per level, transformer depths,
context width and label width; the autoencoder's widths and levels; a text encoder's width,
depth, MLP width and projection. The family (families.py) supplies what shapes cannot tell.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterable, Iterator

from .checkpoint import Checkpoint, CheckpointError
from .clip import CLIPTextConfig, is_openclip
from .families import FAMILIES, ModelFamily, TextEncoderSlot
from .unet import UNetConfig
from .vae import VAEConfig

# The UNet fields a family pins; the rest are sizes read from the file.
SIGNATURE = ("in_channels", "context_dim", "use_linear_in_transformer", "adm_in_channels")
# Where files keep each part: the families' checkpoint prefixes, then none (a file of that part alone).
UNET_PREFIXES = tuple(dict.fromkeys([family.unet_prefix for family in FAMILIES] + [""]))
VAE_PREFIXES = tuple(dict.fromkeys([family.vae_prefix for family in FAMILIES] + [""]))
TEXT_ENCODER_PREFIXES = ("",) + tuple(dict.fromkeys(prefix for family in FAMILIES for slot in family.text_encoders
                                                    for prefix in slot.prefixes))
CLIP_HEAD_WIDTH = 64  # every CLIP text tower (L/14, H/14, bigG/14) uses 64-wide attention heads


class UnknownModel(CheckpointError):
    """A file whose layout or signature matches no known family."""


@contextmanager
def reading(checkpoint: Checkpoint, part: str) -> Iterator[None]:
    """Turns a missing key or an odd shape met while reading a part's sizes into an error naming the file."""
    try:
        yield
    except (KeyError, IndexError, ValueError, ZeroDivisionError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise UnknownModel(f"{checkpoint.name}: its {part} has a layout that could not be read "
                           f"({type(error).__name__}: {error})") from None


def describe_keys(keys: Iterable[str], limit: int = 6) -> str:
    """The most common two-level key prefixes with their counts, e.g. "first_stage_model.encoder. (120)"."""
    groups = Counter(".".join(key.split(".")[:2]) + "." for key in keys)
    return ", ".join(f"{prefix} ({count})" for prefix, count in groups.most_common(limit)) or "no tensors"


def _child_indices(keys: Iterable[str], prefix: str) -> set[int]:
    """The numbers N of the keys `prefix` + "N.…"."""
    return {int(key[len(prefix):].split(".", 1)[0]) for key in keys
            if key.startswith(prefix) and key[len(prefix):].split(".", 1)[0].isdigit()}


def unet_prefix(checkpoint: Checkpoint, prefixes: Iterable[str] = UNET_PREFIXES) -> str:
    """Where the file keeps an original-layout UNet; a clear error when it has none."""
    for prefix in prefixes:
        if f"{prefix}input_blocks.0.0.weight" in checkpoint:
            return prefix
    hint = ""
    if any(key.startswith("down_blocks.") for key in checkpoint.keys()):
        hint = " It looks like a diffusers-layout UNet; only the original (LDM) layout is read."
    raise UnknownModel(f"{checkpoint.name}: no diffusion model (UNet) found — no input_blocks.0.0.weight under "
                       f"{', '.join(repr(p) for p in prefixes)}; the file holds {describe_keys(checkpoint.keys())}."
                       + hint)


def read_unet_config(checkpoint: Checkpoint, prefix: str) -> dict[str, Any]:
    """The UNetConfig fields a file determines: its signature and its sizes."""
    keys = checkpoint.keys_under(prefix)
    key_set = set(keys)

    def shape(key: str) -> tuple[int, ...]:
        return checkpoint.shape(prefix + key)

    model_channels, in_channels = shape("input_blocks.0.0.weight")[:2]
    # After the stem, each input block is a ResBlock (+ transformer) or a downsampler ending a level.
    levels: list[list[int]] = [[]]
    for index in sorted(_child_indices(keys, "input_blocks.") - {0}):
        if f"input_blocks.{index}.0.op.weight" in key_set:
            levels.append([])
        else:
            levels[-1].append(index)
    context = next((key for key in keys if key.endswith("attn2.to_k.weight")), None)
    proj_in = next((key for key in keys if key.endswith("proj_in.weight")), None)
    return {
        "in_channels": in_channels,
        "out_channels": shape("out.2.weight")[0],
        "model_channels": model_channels,
        "channel_mult": tuple(shape(f"input_blocks.{level[0]}.0.out_layers.3.weight")[0] // model_channels
                              for level in levels),
        "num_res_blocks": len(levels[0]),
        "transformer_depth": tuple(len(_child_indices(keys, f"input_blocks.{level[0]}.1.transformer_blocks."))
                                   for level in levels),
        "transformer_depth_middle": len(_child_indices(keys, "middle_block.1.transformer_blocks.")),
        "context_dim": shape(context)[1] if context else None,
        "use_linear_in_transformer": proj_in is not None and len(shape(proj_in)) == 2,
        "adm_in_channels": shape("label_emb.0.0.weight")[1] if "label_emb.0.0.weight" in key_set else None,
    }


def _signature_text(values: dict[str, Any]) -> str:
    projections = "linear" if values["use_linear_in_transformer"] else "convolutional"
    label = f"adm_in_channels {values['adm_in_channels']}" if values["adm_in_channels"] else "no label embedding"
    return (f"in_channels {values['in_channels']}, context_dim {values['context_dim']}, {projections} transformer "
            f"projections, {label}")


def detect(checkpoint: Checkpoint, prefixes: Iterable[str] = UNET_PREFIXES,
           families: Iterable[ModelFamily] = FAMILIES) -> tuple[ModelFamily, UNetConfig, str]:
    """(family, UNet config with the file's sizes, UNet prefix) of a file; UnknownModel when none fits."""
    families = tuple(families)
    prefix = unet_prefix(checkpoint, prefixes)
    with reading(checkpoint, "UNet"):
        found = read_unet_config(checkpoint, prefix)
    for family in families:
        if all(found[field] == getattr(family.unet, field) for field in SIGNATURE) and (
                family.matches is None or family.matches(checkpoint, prefix)):
            return family, replace(family.unet, **found), prefix
    signatures: dict[str, list[str]] = {}
    for family in families:
        signatures.setdefault(_signature_text(vars(family.unet)), []).append(family.name)
    known = "; ".join(f"{'/'.join(names)}: {signature}" for signature, names in signatures.items())
    raise UnknownModel(f"{checkpoint.name}: not a model family Sigmagraph knows. Its UNet (under {prefix!r}) has "
                       f"{_signature_text(found)}; the file holds {describe_keys(checkpoint.keys())}. "
                       f"Known families — {known}.")


def read_vae_config(checkpoint: Checkpoint, prefix: str, template: VAEConfig) -> VAEConfig:
    """The KL autoencoder stored under `prefix`, with the file's sizes."""
    keys = checkpoint.keys_under(prefix)

    def shape(key: str) -> tuple[int, ...]:
        return checkpoint.shape(prefix + key)

    ch, image_channels = shape("encoder.conv_in.weight")[:2]
    levels = len(_child_indices(keys, "encoder.down."))
    return replace(template, image_channels=image_channels, ch=ch,
                   ch_mult=tuple(shape(f"encoder.down.{i}.block.0.conv2.weight")[0] // ch for i in range(levels)),
                   num_res_blocks=len(_child_indices(keys, "encoder.down.0.block.")),
                   z_channels=shape("decoder.conv_in.weight")[1], embed_dim=shape("post_quant_conv.weight")[1])


def vae_prefix(checkpoint: Checkpoint, prefixes: Iterable[str] = VAE_PREFIXES) -> str:
    """Where the file keeps an original-layout KL autoencoder; a clear error when it has none."""
    for prefix in prefixes:
        if f"{prefix}encoder.conv_in.weight" in checkpoint and f"{prefix}decoder.conv_in.weight" in checkpoint:
            if f"{prefix}encoder.down.0.block.0.conv1.weight" not in checkpoint:
                raise UnknownModel(f"{checkpoint.name}: an autoencoder in a layout other than the original one "
                                   f"(diffusers?); only the original (LDM) layout is read")
            return prefix
    raise UnknownModel(f"{checkpoint.name}: no KL autoencoder (VAE) found under "
                       f"{', '.join(repr(p) for p in prefixes)} (load one with VAELoader); the file holds "
                       f"{describe_keys(checkpoint.keys())}")


def text_encoder_prefix(checkpoint: Checkpoint, prefixes: Iterable[str]) -> str | None:
    """The first of `prefixes` under which the file has a text encoder's token embedding, or None."""
    for prefix in prefixes:
        if any(f"{prefix}{key}" in checkpoint for key in ("token_embedding.weight",
                                                         "text_model.embeddings.token_embedding.weight",
                                                         "embeddings.token_embedding.weight")):
            return prefix
    return None


def read_text_encoder_config(checkpoint: Checkpoint, prefix: str, template: CLIPTextConfig) -> CLIPTextConfig:
    """The CLIP text transformer stored under `prefix` (OpenCLIP or transformers layout), with the file's sizes."""
    keys = set(checkpoint.keys_under(prefix))

    def shape(key: str) -> tuple[int, ...]:
        return checkpoint.shape(prefix + key)

    if is_openclip(keys):
        token, position, layers = "token_embedding.weight", "positional_embedding", "transformer.resblocks."
        fc1 = layers + "0.mlp.c_fc.weight"
        projection = shape("text_projection")[1] if "text_projection" in keys else None
    else:
        base = "text_model." if "text_model.embeddings.token_embedding.weight" in keys else ""
        token, position = base + "embeddings.token_embedding.weight", base + "embeddings.position_embedding.weight"
        layers = base + "encoder.layers."
        fc1 = layers + "0.mlp.fc1.weight"
        projection = shape("text_projection.weight")[0] if "text_projection.weight" in keys else None
    vocab_size, width = shape(token)
    return replace(template, width=width, layers=len(_child_indices(keys, layers)), heads=width // CLIP_HEAD_WIDTH,
                   mlp_width=shape(fc1)[0], projection_dim=projection, vocab_size=vocab_size,
                   context_length=shape(position)[0])


def text_encoder_width(checkpoint: Checkpoint, prefix: str) -> int:
    """The width of the text encoder under `prefix`."""
    return read_text_encoder_config(checkpoint, prefix, CLIPTextConfig()).width


def text_encoder_family(widths: list[int], families: Iterable[ModelFamily] = FAMILIES
                        ) -> tuple[ModelFamily, list[TextEncoderSlot]]:
    """The family whose text encoders have these widths (any order), with the slot for each width."""
    for family in families:
        slots = list(family.text_encoders)
        if sorted(widths) == sorted(slot.config.width for slot in slots):
            return family, [next(slot for slot in slots if slot.config.width == width) for width in widths]
    known = "; ".join(f"{family.name}: {' + '.join(str(slot.config.width) for slot in family.text_encoders)}"
                      for family in families)
    raise UnknownModel(f"no model family has text encoders of width {' + '.join(map(str, widths))} "
                       f"(known — {known})")
