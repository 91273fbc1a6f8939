"""LoRA files: reading their low-rank layers and mapping them onto our modules' weights.

A LoRA layer stores `up` [out, r] and `down` [r, in] (convolutions: up [out, r, 1, 1], down
[r, in, kh, kw], LoCon's 3x3 down with a 1x1 up included) and optionally `alpha`; applied at a
strength s it changes the weight by

    delta W = s * (alpha / r) * (up @ down)      (alpha / r = 1 when the file stores no alpha)

Layer names follow the tool that trained them. We read kohya/sd-scripts names (`lora_unet_…`,
`lora_te_…`, SDXL's `lora_te1_…`/`lora_te2_…`: module paths with "." as "_", UNet modules in
either the original or the diffusers layout), diffusers/PEFT names (`unet.down_blocks…`,
`text_encoder.text_model…`) and ComfyUI's own (`diffusion_model.…` in the original layout), with
the key suffixes of each layout (LAYOUTS). MMDiT (SD3) and Flux layers come in the original
layout (ComfyUI's and kohya's names: `lora_unet_double_blocks_0_img_attn_qkv`) or in diffusers'
(`transformer.transformer_blocks.0.attn.to_q`), which splits fused projections: those layers are
first converted to the original layout through the table that converts the models' own weights
(mmdit.TensorMap; lora_to_original), so every layer still lands on exactly one weight. The names are
generated from our own modules: every Linear and Conv2d gets its aliases in each naming scheme,
so a layer either lands on exactly one of our weights or is reported as not applied.

Patches are applied reversibly by manager.ModuleHandle; see LoraPatch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .checkpoint import Checkpoint, CheckpointError
from .mmdit import TensorMap, swapped_halves
from .unet import UNetConfig, UNetModel

log = logging.getLogger(__name__)

# (up suffix, down suffix) of each key layout; the alpha of a layer is stored as "<name>.alpha".
LAYOUTS = (
    (".lora_up.weight", ".lora_down.weight"),  # kohya sd-scripts, LyCORIS LoCon
    (".lora_B.weight", ".lora_A.weight"),  # PEFT (diffusers >= 0.22)
    (".lora.up.weight", ".lora.down.weight"),  # diffusers LoRACompatible layers
    ("_lora.up.weight", "_lora.down.weight"),  # diffusers attention processors (…processor.to_q_lora…)
    (".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight"),  # diffusers text-encoder LoRAs
)
DIFFUSERS_TRANSFORMER = "transformer."  # how diffusers names an MMDiT's or Flux's layers in a LoRA file
COMFYUI_NETWORK = "diffusion_model."  # how ComfyUI names a diffusion network's layers (original layout)
# Markers of LyCORIS variants whose weight updates are not low-rank products.
UNSUPPORTED = {".hada_w1_a": "LoHa", ".lokr_w1": "LoKr", ".lokr_w1_a": "LoKr", ".lora_mid.weight": "LoCon with a "
               "Tucker core (lora_mid)", ".dora_scale": "DoRA", ".a1.weight": "GLoRA"}

# Inside an original-layout ResBlock: our module -> diffusers' ResnetBlock2D module.
_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj", "out_layers.0": "norm2",
           "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
_FIXED = {"input_blocks.0.0": "conv_in", "time_embed.0": "time_embedding.linear_1",
          "time_embed.2": "time_embedding.linear_2", "label_emb.0.0": "add_embedding.linear_1",
          "label_emb.0.2": "add_embedding.linear_2", "out.2": "conv_out"}


@dataclass(frozen=True)
class LoraLayer:
    """One low-rank update: up [out, r, …], down [r, in, …] and alpha (None: scale 1)."""

    up: Tensor
    down: Tensor
    alpha: float | None

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def scale(self) -> float:
        return 1.0 if self.alpha is None else self.alpha / self.rank

    def fits(self, weight: Tensor) -> bool:
        """Whether up @ down is defined (a 1x1 up) and has the weight's output and input sizes."""
        return (self.up[0].numel() == self.rank and self.up.shape[0] == weight.shape[0]
                and self.up.shape[0] * self.down[0].numel() == weight.numel())

    def delta(self, weight: Tensor) -> Tensor:
        """(alpha / r) * up @ down in float32, shaped like the weight and on its device."""
        up = self.up.to(weight.device).float().flatten(1)
        down = self.down.to(weight.device).float().flatten(1)
        return (up @ down).reshape(weight.shape) * self.scale


def read_lora(checkpoint: Checkpoint) -> dict[str, LoraLayer]:
    """The layers of a LoRA file by name (its keys without the layout's suffix)."""
    keys = checkpoint.keys()
    for marker, kind in UNSUPPORTED.items():
        if any(key.endswith(marker) for key in keys):
            raise CheckpointError(f"{checkpoint.name}: a {kind} file; only LoRA/LoCon low-rank layers are supported")
    layers = {}
    for key in keys:
        for up_suffix, down_suffix in LAYOUTS:
            if key.endswith(up_suffix):
                name = key[:-len(up_suffix)]
                down_key, alpha_key = name + down_suffix, name + ".alpha"
                if down_key not in checkpoint:
                    raise CheckpointError(f"{checkpoint.name}: {key} has no matching {down_key}")
                alpha = float(checkpoint.read(alpha_key)) if alpha_key in checkpoint else None
                layers[name] = LoraLayer(checkpoint.read(key), checkpoint.read(down_key), alpha)
                break
    if not layers:
        raise CheckpointError(f"{checkpoint.name}: no LoRA layers found (expected keys ending in "
                              f"{', '.join(up for up, _ in LAYOUTS)})")
    return layers


def _patchable(module: nn.Module) -> list[str]:
    """Names of the Linear and Conv2d layers: what LoRAs train."""
    return [name for name, layer in module.named_modules() if isinstance(layer, (nn.Linear, nn.Conv2d))]


def diffusers_unet_blocks(config: UNetConfig) -> dict[str, str]:
    """Our UNet's block prefixes -> diffusers' (e.g. "input_blocks.1.1." -> "down_blocks.0.attentions.0.")."""
    blocks = {}
    levels, per_level = len(config.channel_mult), config.num_res_blocks
    index = 1
    for level in range(levels):
        for slot in range(per_level):
            blocks[f"input_blocks.{index}.0."] = f"down_blocks.{level}.resnets.{slot}."
            blocks[f"input_blocks.{index}.1."] = f"down_blocks.{level}.attentions.{slot}."
            index += 1
        if level != levels - 1:
            blocks[f"input_blocks.{index}.0.op."] = f"down_blocks.{level}.downsamplers.0.conv."
            index += 1
    blocks["middle_block.0."] = "mid_block.resnets.0."
    if config.transformer_depth_middle:
        blocks["middle_block.1."] = "mid_block.attentions.0."
    blocks[f"middle_block.{2 if config.transformer_depth_middle else 1}."] = "mid_block.resnets.1."
    for up, level in enumerate(reversed(range(levels))):
        has_attention = bool(config.transformer_depth[level])
        for slot in range(per_level + 1):
            index = up * (per_level + 1) + slot
            blocks[f"output_blocks.{index}.0."] = f"up_blocks.{up}.resnets.{slot}."
            if has_attention:
                blocks[f"output_blocks.{index}.1."] = f"up_blocks.{up}.attentions.{slot}."
            if level and slot == per_level:
                blocks[f"output_blocks.{index}.{2 if has_attention else 1}.conv."] = f"up_blocks.{up}.upsamplers.0.conv."
    return blocks


def diffusers_unet_name(name: str, blocks: Mapping[str, str]) -> str | None:
    """The diffusers name of one of our UNet's Linear/Conv2d modules."""
    if name in _FIXED:
        return _FIXED[name]
    for prefix, target in blocks.items():
        if (name + ".").startswith(prefix):
            rest = (name + ".")[len(prefix):].rstrip(".")
            if ".resnets." in target:
                rest = _RESNET.get(rest, rest)
            return (target + rest).rstrip(".")
    return None


def original_unet_key(key: str, blocks: Mapping[str, str]) -> str | None:
    """The original name of a diffusers UNet parameter, the inverse of diffusers_unet_name (None: not a UNet part).

    `blocks` is diffusers_unet_blocks' map, e.g. "down_blocks.0.resnets.0.conv1.weight" ->
    "input_blocks.1.0.in_layers.2.weight".
    """
    module, param = key.rsplit(".", 1)
    fixed = {diffusers: original for original, diffusers in _FIXED.items()}
    if module in fixed:
        return f"{fixed[module]}.{param}"
    resnet = {diffusers: original for original, diffusers in _RESNET.items()}
    for original, diffusers in blocks.items():
        if key.startswith(diffusers):
            inner = module[len(diffusers):]
            if ".resnets." in diffusers:
                inner = resnet.get(inner, inner)
            return f"{original}{inner}.{param}" if inner else f"{original.rstrip('.')}.{param}"
    return None


def lora_to_original(layers: Mapping[str, LoraLayer], maps: Sequence[TensorMap],
                     source: str) -> tuple[dict[str, LoraLayer], dict[str, tuple[str, ...]]]:
    """The layers of a LoRA with its diffusers-layout MMDiT or Flux layers converted to the original layout
    ("diffusion_model.<module>"), and which of the file's layers each converted one comes from.

    The parts of a fused weight (q, k, v of a qkv) become one layer: its `up` holds each part's rows
    at the part's place (its scale folded in, zero rows for parts the LoRA leaves alone) and the
    ranks are concatenated, so up @ down is the sum of the parts' updates, each on its own rows.
    Other layers are kept as they are.
    """
    converted, origins = dict(layers), {}
    for m in maps:
        if not m.original.endswith(".weight"):
            continue
        names = [DIFFUSERS_TRANSFORMER + part.removesuffix(".weight") for part in m.diffusers]
        present = [name for name in names if name in layers]
        if not present:
            continue
        lengths = m.sizes or (layers[present[0]].up.shape[0],) * len(names)
        ups, downs, offset = [], [], 0
        for name, length in zip(names, lengths):
            if name in layers:
                layer = converted.pop(name)
                if layer.up.shape[0] != length:
                    raise CheckpointError(f"{source}: layer {name} has {layer.up.shape[0]} outputs where the model's "
                                          f"{m.original} has {length} for it; the LoRA was made for another model")
                up = layer.up.new_zeros((sum(lengths), *layer.up.shape[1:]), dtype=torch.float32)
                up[offset:offset + length] = layer.up.float() * layer.scale
                ups.append(up)
                downs.append(layer.down.float())
            offset += length
        up = torch.cat(ups, dim=1)
        name = COMFYUI_NETWORK + m.original.removesuffix(".weight")
        converted[name] = LoraLayer(swapped_halves(up) if m.swap_halves else up, torch.cat(downs), None)
        origins[name] = tuple(present)
    return converted, origins


def _original_names(name: str) -> set[str]:
    """A diffusion network's layer as kohya ("lora_unet_" + path with "_") and ComfyUI ("diffusion_model." + path)
    name it in the original layout."""
    return {f"lora_unet_{name.replace('.', '_')}", COMFYUI_NETWORK + name}


def transformer_aliases(network: nn.Module) -> dict[str, str]:
    """Every LoRA layer name that can target an MMDiT's or Flux's weight (original layout) -> its parameter name."""
    return {alias: f"{name}.weight" for name in _patchable(network) for alias in _original_names(name)}


def unet_aliases(unet: UNetModel) -> dict[str, str]:
    """Every LoRA layer name that can target a UNet weight -> that weight's parameter name."""
    blocks = diffusers_unet_blocks(unet.config)
    aliases = {}
    for name in _patchable(unet):
        target = f"{name}.weight"
        names = _original_names(name)
        diffusers = diffusers_unet_name(name, blocks)
        if diffusers is not None:
            names |= {f"lora_unet_{diffusers.replace('.', '_')}", f"unet.{diffusers}", diffusers}
            # Attention processors named their layers "processor.to_q" … "processor.to_out".
            for projection in ("to_q", "to_k", "to_v", "to_out.0"):
                if diffusers.endswith("." + projection):
                    processor = diffusers[:-len(projection)] + "processor." + projection.removesuffix(".0")
                    names |= {f"unet.{processor}", processor}
        aliases.update(dict.fromkeys(names, target))
    return aliases


def text_encoder_aliases(encoder: nn.Module, prefixes: Iterable[str]) -> dict[str, str]:
    """LoRA layer names for a text encoder's weights: kohya ("lora_te1_text_model_…") or diffusers ("text_encoder.…")."""
    aliases = {}
    for name in _patchable(encoder):
        for prefix in prefixes:
            alias = f"{prefix}_{name.replace('.', '_')}" if prefix.startswith("lora_") else f"{prefix}.{name}"
            aliases[alias] = f"{name}.weight"
    return aliases


@dataclass(frozen=True, eq=False)
class LoraAdapter:
    """The layers of one LoRA file that apply to one module, by the module's parameter names."""

    source: str
    layers: Mapping[str, LoraLayer]


def match_lora(layers: Mapping[str, LoraLayer], aliases: Mapping[str, str], module: nn.Module,
               source: str) -> LoraAdapter:
    """The layers whose names are among `aliases`, checked against the module's weight shapes."""
    parameters = dict(module.named_parameters())
    matched = {}
    for name, layer in layers.items():
        target = aliases.get(name)
        if target is None:
            continue
        weight = parameters[target]
        if not layer.fits(weight):
            raise CheckpointError(f"{source}: layer {name} ({tuple(layer.up.shape)} x {tuple(layer.down.shape)}) does "
                                  f"not fit the model's {target} {tuple(weight.shape)}; the LoRA was made for "
                                  f"another model")
        matched[target] = layer
    return LoraAdapter(source, matched)


@dataclass(frozen=True)
class LoraPatch:
    """A LoRA adapter at a strength: a manager.WeightPatch (equal patches are recognised as applied)."""

    adapter: LoraAdapter
    strength: float

    def targets(self) -> Iterable[str]:
        return self.adapter.layers.keys()

    def delta(self, name: str, weight: Tensor) -> Tensor:
        return self.adapter.layers[name].delta(weight) * self.strength
