"""Recognising a model file from its keys and shapes: its family, and the sizes of its parts.

Sizes are read, never assumed: the UNet's channels, levels, blocks per level, transformer depths,
context width and label width; an MMDiT's or Flux transformer's width, depth, patch size, input
widths, QK norms, dual-attention blocks and guidance embedding (as ComfyUI's model_detection);
the autoencoder's widths, levels and quant convs; a text encoder's width, depth, MLP width and
projection. The family (families.py) supplies what shapes cannot tell.
"""

from __future__ import annotations

import math
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Iterable, Iterator

from torch import nn

from .checkpoint import Checkpoint, CheckpointError
from .clip import CLIPTextConfig, is_openclip
from .families import FAMILIES, ModelFamily, NetworkConfig, TextEncoderSlot
from .flux import Flux, FluxConfig
from .mmdit import MMDiT, MMDiTConfig
from .t5 import T5Config
from .unet import UNetConfig, UNetModel
from .vae import VAEConfig

# Where files keep each part: the families' checkpoint prefixes, then none (a file of that part alone).
NETWORK_PREFIXES = tuple(dict.fromkeys([family.network_prefix for family in FAMILIES] + [""]))
VAE_PREFIXES = tuple(dict.fromkeys([family.vae_prefix for family in FAMILIES] + [""]))
TEXT_ENCODER_PREFIXES = ("",) + tuple(dict.fromkeys(prefix for family in FAMILIES for slot in family.text_encoders
                                                    for prefix in slot.prefixes))
CLIP_HEAD_WIDTH = 64  # every CLIP text tower (L/14, H/14, bigG/14) uses 64-wide attention heads
MMDIT_HEAD_WIDTH = 64  # Stability's MMDiTs: heads = width / 64 (ComfyUI reads depth the same way)
T5_MARKER = "encoder.block.0.layer.0.SelfAttention.q.weight"


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


# ----------------------------------------------------------------------------------------------
# The diffusion network: which architecture, and its sizes


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
        # A ControlNet (the UNet's encoder half) has no output conv; ComfyUI reads it the same way.
        "out_channels": shape("out.2.weight")[0] if "out.2.weight" in key_set else in_channels,
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


def read_mmdit_config(checkpoint: Checkpoint, prefix: str) -> dict[str, Any]:
    """The MMDiTConfig fields a file determines (all of them: heads follow from the 64-wide head)."""
    keys = checkpoint.keys_under(prefix)
    hidden, in_channels, patch = checkpoint.shape(prefix + "x_embedder.proj.weight")[:3]
    return {
        "depth": len(_child_indices(keys, "joint_blocks.")),
        "hidden_size": hidden,
        "num_heads": hidden // MMDIT_HEAD_WIDTH,
        "patch_size": patch,
        "in_channels": in_channels,
        "out_channels": checkpoint.shape(prefix + "final_layer.linear.weight")[0] // patch ** 2,
        "context_dim": checkpoint.shape(prefix + "context_embedder.weight")[1],
        "pooled_dim": checkpoint.shape(prefix + "y_embedder.mlp.0.weight")[1],
        "pos_embed_max_size": math.isqrt(checkpoint.shape(prefix + "pos_embed")[1]),
        "qk_norm": "rms" if prefix + "joint_blocks.0.x_block.attn.ln_q.weight" in checkpoint else None,
        "x_block_self_attn_layers": tuple(sorted(
            index for index in _child_indices(keys, "joint_blocks.")
            if f"{prefix}joint_blocks.{index}.x_block.attn2.qkv.weight" in checkpoint)),
        "mlp_ratio": checkpoint.shape(prefix + "joint_blocks.0.x_block.mlp.fc1.weight")[0] / hidden,
    }


def read_flux_config(checkpoint: Checkpoint, prefix: str, template: FluxConfig = FluxConfig()) -> dict[str, Any]:
    """The FluxConfig fields a file determines; heads keep the template's head width (the rotary axes' sum)."""
    keys = checkpoint.keys_under(prefix)
    hidden, in_channels = checkpoint.shape(prefix + "img_in.weight")
    return {
        "in_channels": in_channels,
        "out_channels": checkpoint.shape(prefix + "final_layer.linear.weight")[0],
        "hidden_size": hidden,
        "num_heads": hidden // sum(template.axes_dim),
        "depth": len(_child_indices(keys, "double_blocks.")),
        "depth_single_blocks": len(_child_indices(keys, "single_blocks.")),
        "context_dim": checkpoint.shape(prefix + "txt_in.weight")[1],
        "vec_in_dim": checkpoint.shape(prefix + "vector_in.in_layer.weight")[1],
        "mlp_ratio": checkpoint.shape(prefix + "double_blocks.0.img_mlp.0.weight")[0] / hidden,
        "guidance_embed": prefix + "guidance_in.in_layer.weight" in checkpoint,
    }


@dataclass(frozen=True)
class Architecture:
    """A kind of diffusion network: the key that marks it, how its sizes are read, its module."""

    name: str
    marker: str  # a key (under the network's prefix) that only this architecture has
    config_type: type
    module: Callable[[Any], nn.Module]
    read_config: Callable[[Checkpoint, str], dict[str, Any]]
    signature: tuple[str, ...]  # the config fields a family pins; the rest are sizes read from the file


ARCHITECTURES = (
    Architecture("UNet", "input_blocks.0.0.weight", UNetConfig, UNetModel, read_unet_config,
                 ("in_channels", "context_dim", "use_linear_in_transformer", "adm_in_channels")),
    Architecture("MMDiT", "joint_blocks.0.context_block.attn.qkv.weight", MMDiTConfig, MMDiT, read_mmdit_config,
                 ("in_channels",)),
    Architecture("Flux", "double_blocks.0.img_attn.norm.key_norm.scale", FluxConfig, Flux, read_flux_config,
                 ("in_channels", "guidance_embed")),
)


def architecture_of(config: NetworkConfig) -> Architecture:
    """The architecture of a network config."""
    return next(arch for arch in ARCHITECTURES if isinstance(config, arch.config_type))


def network_prefix(checkpoint: Checkpoint, prefixes: Iterable[str] = NETWORK_PREFIXES) -> tuple[Architecture, str]:
    """Which diffusion network the file holds and under which prefix; a clear error when it has none."""
    prefixes = tuple(prefixes)
    for prefix in prefixes:
        for arch in ARCHITECTURES:
            if prefix + arch.marker in checkpoint:
                return arch, prefix
    hint = ""
    if any(key.startswith(("down_blocks.", "transformer_blocks.")) for key in checkpoint.keys()):
        hint = " It looks like a diffusers-layout model; only the original layouts are read."
    markers = ", ".join(f"{arch.marker} ({arch.name})" for arch in ARCHITECTURES)
    raise UnknownModel(f"{checkpoint.name}: no diffusion model found — none of {markers} under "
                       f"{', '.join(repr(p) for p in prefixes)}; the file holds {describe_keys(checkpoint.keys())}."
                       + hint)


def _signature_text(arch: Architecture, values: dict[str, Any]) -> str:
    if arch.config_type is not UNetConfig:
        return ", ".join(f"{name} {values[name]}" for name in arch.signature)
    projections = "linear" if values["use_linear_in_transformer"] else "convolutional"
    label = f"adm_in_channels {values['adm_in_channels']}" if values["adm_in_channels"] else "no label embedding"
    return (f"in_channels {values['in_channels']}, context_dim {values['context_dim']}, {projections} transformer "
            f"projections, {label}")


def detect(checkpoint: Checkpoint, prefixes: Iterable[str] = NETWORK_PREFIXES,
           families: Iterable[ModelFamily] = FAMILIES) -> tuple[ModelFamily, NetworkConfig, str]:
    """(family, network config with the file's sizes, network prefix) of a file; UnknownModel when none fits."""
    arch, prefix = network_prefix(checkpoint, prefixes)
    candidates = [family for family in families if isinstance(family.network, arch.config_type)]
    with reading(checkpoint, arch.name):
        found = arch.read_config(checkpoint, prefix)
    for family in candidates:
        if all(found[field] == getattr(family.network, field) for field in arch.signature) and (
                family.matches is None or family.matches(checkpoint, prefix)):
            return family, replace(family.network, **found), prefix
    signatures: dict[str, list[str]] = {}
    for family in candidates:
        values = {field.name: getattr(family.network, field.name) for field in fields(family.network)}
        signatures.setdefault(_signature_text(arch, values), []).append(family.name)
    known = "; ".join(f"{'/'.join(names)}: {signature}" for signature, names in signatures.items())
    raise UnknownModel(f"{checkpoint.name}: not a model family Sigmagraph knows. Its {arch.name} (under {prefix!r}) "
                       f"has {_signature_text(arch, found)}; the file holds {describe_keys(checkpoint.keys())}. "
                       f"Known families — {known or 'none of this architecture'}.")


# ----------------------------------------------------------------------------------------------
# The autoencoder and the text encoders


def read_vae_config(checkpoint: Checkpoint, prefix: str, template: VAEConfig) -> VAEConfig:
    """The KL autoencoder stored under `prefix`, with the file's sizes."""
    keys = checkpoint.keys_under(prefix)

    def shape(key: str) -> tuple[int, ...]:
        return checkpoint.shape(prefix + key)

    ch, image_channels = shape("encoder.conv_in.weight")[:2]
    z_channels = shape("decoder.conv_in.weight")[1]
    quant = prefix + "post_quant_conv.weight" in checkpoint  # SD3's and Flux's autoencoders have none
    levels = len(_child_indices(keys, "encoder.down."))
    return replace(template, image_channels=image_channels, ch=ch,
                   ch_mult=tuple(shape(f"encoder.down.{i}.block.0.conv2.weight")[0] // ch for i in range(levels)),
                   num_res_blocks=len(_child_indices(keys, "encoder.down.0.block.")), z_channels=z_channels,
                   embed_dim=shape("post_quant_conv.weight")[1] if quant else z_channels, use_quant_conv=quant)


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
    """The first of `prefixes` holding a text encoder (a CLIP's token embedding or a T5 block), or None."""
    for prefix in prefixes:
        if any(f"{prefix}{key}" in checkpoint for key in ("token_embedding.weight",
                                                         "text_model.embeddings.token_embedding.weight",
                                                         "embeddings.token_embedding.weight", T5_MARKER)):
            return prefix
    return None


def is_t5(checkpoint: Checkpoint, prefix: str) -> bool:
    """Whether the text encoder under `prefix` is a T5 (else a CLIP)."""
    return prefix + T5_MARKER in checkpoint


def read_t5_config(checkpoint: Checkpoint, prefix: str, template: T5Config) -> T5Config:
    """The T5 encoder stored under `prefix` (transformers layout), with the file's sizes."""
    keys = checkpoint.keys_under(prefix)
    block = prefix + "encoder.block.0.layer."
    embedding = "shared.weight" if "shared.weight" in keys else "encoder.embed_tokens.weight"
    vocab_size, d_model = checkpoint.shape(prefix + embedding)
    buckets, heads = checkpoint.shape(block + "0.SelfAttention.relative_attention_bias.weight")
    return replace(template, vocab_size=vocab_size, d_model=d_model, num_heads=heads,
                   d_kv=checkpoint.shape(block + "0.SelfAttention.q.weight")[0] // heads,
                   d_ff=checkpoint.shape(block + "1.DenseReluDense.wi_0.weight")[0],
                   num_layers=len(_child_indices(keys, "encoder.block.")), relative_attention_num_buckets=buckets)


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


def text_encoder_kind(checkpoint: Checkpoint, prefix: str) -> int | str:
    """What tells the text encoder under `prefix` apart: "t5xxl" for a T5, else the CLIP's width."""
    return "t5xxl" if is_t5(checkpoint, prefix) else read_text_encoder_config(checkpoint, prefix, CLIPTextConfig()).width


def slot_kind(slot: TextEncoderSlot) -> int | str:
    """The `text_encoder_kind` of the encoder a slot takes."""
    return "t5xxl" if slot.is_t5 else slot.config.width


def _fill_slots(kinds: list[int | str], slots: tuple[TextEncoderSlot, ...]) -> list[TextEncoderSlot] | None:
    """The slot taking each encoder, when the encoders fill every required slot and no slot twice; else None."""
    free, chosen = list(slots), []
    for kind in kinds:
        slot = next((slot for slot in free if slot_kind(slot) == kind), None)
        if slot is None:
            return None
        free.remove(slot)
        chosen.append(slot)
    return None if any(not slot.optional for slot in free) else chosen


def text_encoder_family(kinds: list[int | str], families: Iterable[ModelFamily] = FAMILIES
                        ) -> tuple[ModelFamily, list[TextEncoderSlot]]:
    """The first family whose text encoders these are (CLIP widths or "t5xxl", any order), with each one's slot.

    A family with optional slots (SD3) takes any of its encoders, as long as its required ones are there.
    """
    families = tuple(families)
    for family in families:
        slots = _fill_slots(kinds, family.text_encoders)
        if slots is not None:
            return family, slots
    known = "; ".join(f"{family.name}: {' + '.join(str(slot_kind(slot)) for slot in family.text_encoders)}"
                      for family in families)
    raise UnknownModel(f"no model family has text encoders {' + '.join(map(str, kinds))} (CLIPs by width; "
                       f"known — {known})")
