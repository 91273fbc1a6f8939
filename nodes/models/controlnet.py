"""ControlNet (Zhang, Rao & Agrawala 2023) for the LDM UNets of SD 1.x, SD 2.x and SDXL.

A trainable copy of the UNet's encoder half — embeddings, input blocks and middle block, built by
`unet.UNetEncoder` from the same config — that also sees a hint image. The hint block
(`input_hint_block`: 3x3 convolutions, three of them strided, from the image's pixels down to the
latent's resolution) is added to the first input block's output; a zero-initialised 1x1
convolution after every input block (`zero_convs.N.0`) and after the middle block
(`middle_block_out.0`) turns the copy's features into residuals of the UNet's skip connections
and middle block (`UNetModel.forward(control=...)`).

Files come in two layouts, read into ours:
- the original one (lllyasviel's ControlNet, ComfyUI): `input_hint_block.*`, `zero_convs.*`,
  `middle_block_out.*` and the UNet's names, bare or under `control_model.`;
- diffusers' ControlNetModel: `controlnet_cond_embedding.{conv_in, blocks.N, conv_out}`,
  `controlnet_down_blocks.N`, `controlnet_mid_block` and the UNet's diffusers names (lora.py's map).
Sizes come from the file's shapes (detection.read_unet_config); the family its signature matches
supplies the attention heads and norm groups. A "diff" ControlNet (a `difference` key) stores its
weights as differences from a base UNet's, which DiffControlNetLoader adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import Tensor, nn

from .checkpoint import Checkpoint, CheckpointError, load_weights, open_checkpoint
from .detection import UnknownModel, detect, reading
from .devices import weight_dtype
from .families import ModelFamily
from .lora import diffusers_unet_blocks, original_unet_key
from .manager import ManagedModule, ModuleHandle, manager_for
from .module_init import meta_module
from .unet import UNetConfig, UNetEncoder

Residuals = dict[str, list[Tensor]]  # ComfyUI's control dict: "output" (one per input block) and "middle"

ORIGINAL_PREFIX = "control_model."
DIFFUSERS_MARKER = "controlnet_cond_embedding.conv_in.weight"
DIFF_MARKER = "difference"  # the key that marks a diff ControlNet (weights relative to a base UNet)
# Unsupported kinds, told apart by a key only they have.
OTHER_KINDS = {"lora_controlnet": "a control-LoRA", "body.0.block1.weight": "a T2I-Adapter",
               "adapter.body.0.resnets.0.block1.weight": "a T2I-Adapter (diffusers)",
               "control_add_embedding.linear_1.weight": "a union ControlNet (ControlNet++)"}


@dataclass(frozen=True)
class ControlNetConfig:
    """A ControlNet: the UNet config of its encoder half, and its hint block's widths."""

    unet: UNetConfig
    hint_channels: int = 3
    hint_widths: tuple[int, ...] = (16, 32, 96, 256)  # each level's width; all but the first are strided


class ControlNet(UNetEncoder):
    """forward(x, hint, timesteps, context, y) -> residuals {"output": [per input block], "middle": [one]}."""

    def __init__(self, config: ControlNetConfig):
        super().__init__(config.unet)
        widths = config.hint_widths
        layers: list[nn.Module] = [nn.Conv2d(config.hint_channels, widths[0], 3, padding=1), nn.SiLU()]
        for width, wider in zip(widths, widths[1:]):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                       nn.Conv2d(width, wider, 3, padding=1, stride=2), nn.SiLU()]
        layers.append(nn.Conv2d(widths[-1], config.unet.model_channels, 3, padding=1))
        self.input_hint_block = nn.Sequential(*layers)
        self.zero_convs = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c, 1)) for c in self.skip_channels)
        middle = self.skip_channels[-1]
        self.middle_block_out = nn.Sequential(nn.Conv2d(middle, middle, 1))

    def forward(self, x: Tensor, hint: Tensor, timesteps: Tensor, context: Tensor | None = None,
                y: Tensor | None = None) -> Residuals:
        """x and timesteps as the UNet's; hint [B or 1, hint_channels, 8 H, 8 W], the image in 0..1."""
        emb = self.embedding(x, timesteps, y)
        if context is not None:
            context = context.to(x.dtype)
        guided_hint = self.input_hint_block(hint.to(x.dtype))
        outputs = []
        h = x
        for index, (block, zero_conv) in enumerate(zip(self.input_blocks, self.zero_convs)):
            h = block(h, emb, context)
            if index == 0:
                h = h + guided_hint
            outputs.append(zero_conv(h))
        h = self.middle_block(h, emb, context)
        return {"output": outputs, "middle": [self.middle_block_out(h)]}


# ----------------------------------------------------------------------------------------------
# Key layouts


class RenamedCheckpoint(Checkpoint):
    """Another checkpoint's tensors under new names (`names`: new name -> the file's key), read on demand."""

    def __init__(self, base: Checkpoint, names: Mapping[str, str]):
        super().__init__(base.name, base.metadata)
        self.base = base
        self.names = dict(names)

    def keys(self) -> list[str]:
        return list(self.names)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.base.shape(self.names[key])

    def view(self, key: str) -> Tensor:
        return self.base.view(self.names[key])

    def __contains__(self, key: str) -> bool:
        return key in self.names


def _count(keys: list[str], prefix: str) -> int:
    """How many numbered children `prefix` + "N." the keys have."""
    return len({key[len(prefix):].split(".", 1)[0] for key in keys if key.startswith(prefix)})


def diffusers_names(keys: list[str]) -> dict[str, str]:
    """Original name -> diffusers key of a ControlNetModel's tensors (keys of no ControlNet part are kept)."""
    levels = _count(keys, "down_blocks.")
    # Only the block structure matters to the names: levels, blocks per level, attention in the middle.
    structure = UNetConfig(channel_mult=(1,) * levels, transformer_depth=(1,) * levels,
                           num_res_blocks=_count(keys, "down_blocks.0.resnets."),
                           transformer_depth_middle=int(any(k.startswith("mid_block.attentions.") for k in keys)))
    blocks = diffusers_unet_blocks(structure)
    hint_blocks = _count(keys, "controlnet_cond_embedding.blocks.")
    special = {"controlnet_cond_embedding.conv_in": "input_hint_block.0",
               "controlnet_cond_embedding.conv_out": f"input_hint_block.{2 * (hint_blocks + 1)}",
               "controlnet_mid_block": "middle_block_out.0"}
    special |= {f"controlnet_cond_embedding.blocks.{i}": f"input_hint_block.{2 * (i + 1)}" for i in range(hint_blocks)}
    special |= {f"controlnet_down_blocks.{i}": f"zero_convs.{i}.0" for i in range(_count(keys, "controlnet_down_blocks."))}
    names = {}
    for key in keys:
        module, param = key.rsplit(".", 1)
        original = f"{special[module]}.{param}" if module in special else original_unet_key(key, blocks)
        names[original or key] = key
    return names


def original_layout(checkpoint: Checkpoint) -> Checkpoint:
    """The file's ControlNet in the original layout without prefix; a clear error for other files."""
    keys = checkpoint.keys()
    if DIFFUSERS_MARKER in checkpoint:
        return RenamedCheckpoint(checkpoint, diffusers_names(keys))
    for prefix in (ORIGINAL_PREFIX, ""):
        if f"{prefix}zero_convs.0.0.weight" in checkpoint:
            return RenamedCheckpoint(checkpoint, {key[len(prefix):]: key for key in keys if key.startswith(prefix)})
    kind = next((kind for marker, kind in OTHER_KINDS.items() if marker in checkpoint), None)
    if kind is not None:
        raise UnknownModel(f"{checkpoint.name}: {kind}, which Sigmagraph does not support; only ControlNets "
                           f"(original or diffusers layout) load")
    raise UnknownModel(f"{checkpoint.name}: not a ControlNet — no zero_convs.0.0.weight (bare or under "
                       f"{ORIGINAL_PREFIX!r}) and no {DIFFUSERS_MARKER}")


def read_controlnet_config(checkpoint: Checkpoint) -> tuple[ModelFamily, ControlNetConfig]:
    """(the family whose UNet it copies, its config with the file's sizes) of an original-layout ControlNet."""
    family, unet, _ = detect(checkpoint, ("",))
    with reading(checkpoint, "hint block"):
        convs = _count([k for k in checkpoint.keys() if k.endswith(".weight")], "input_hint_block.")
        widths = tuple(checkpoint.shape(f"input_hint_block.{4 * level}.weight")[0] for level in range(convs // 2))
        hint_channels = checkpoint.shape("input_hint_block.0.weight")[1]
    return family, ControlNetConfig(unet, hint_channels, widths)


# ----------------------------------------------------------------------------------------------
# The CONTROL_NET value


class ControlNetNetwork(ModuleHandle):
    """A loaded ControlNet: `net(x, hint, timestep, context, y)` -> float32 residuals, computed in its dtype.

    With `global_average_pooling` (ComfyUI's rule for the "shuffle" ControlNets) every residual is
    replaced by its spatial mean.
    """

    def __init__(self, managed: ManagedModule, family: ModelFamily, global_average_pooling: bool = False):
        super().__init__(managed)
        self.family = family
        self.global_average_pooling = global_average_pooling

    def __call__(self, x: Tensor, hint: Tensor, timestep: Tensor, context: Tensor | None = None,
                 y: Tensor | None = None) -> Residuals:
        network = self.use()
        device, dtype = self.device, self.dtype

        def cast(value: Tensor | None) -> Tensor | None:
            return None if value is None else value.to(device=device, dtype=dtype)

        residuals = network(cast(x), cast(hint), timestep.to(device), cast(context), cast(y))
        if self.global_average_pooling:
            residuals = {key: [r.mean(dim=(2, 3), keepdim=True).expand_as(r) for r in values]
                         for key, values in residuals.items()}
        return {key: [r.float() for r in values] for key, values in residuals.items()}


def _with_base(tensors: RenamedCheckpoint, base: Mapping[str, Tensor] | None,
               source: str) -> Iterator[tuple[str, Tensor]]:
    """The tensors, each plus the base UNet's weight of the same name when the file is a diff ControlNet."""
    if DIFF_MARKER not in tensors.base:
        yield from tensors.items()
        return
    if base is None:
        raise CheckpointError(f"{source}: a diff ControlNet (weights relative to a model's); load it with "
                              f"DiffControlNetLoader and that model")
    for name, tensor in tensors.items():
        yield name, (tensor.float() + base[name].float().to(tensor.device)) if name in base else tensor


def load_controlnet(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None,
                    base: Mapping[str, Tensor] | None = None) -> ControlNetNetwork:
    """ControlNetLoader: the ControlNet of a file, computing on `device` (`base`: the UNet a diff ControlNet adds to)."""
    manager = manager_for(device)
    with open_checkpoint(path, name) as checkpoint:
        tensors = original_layout(checkpoint)
        family, config = read_controlnet_config(tensors)
        module = meta_module(ControlNet, config)
        load_weights(module, _with_base(tensors, base, name), weight_dtype(manager.device, dtype),
                     f"{name} (ControlNet)")
    # ComfyUI's rule: the shuffle ControlNets pool their residuals (nothing in the file says so).
    pooling = Path(name).stem.endswith(("_shuffle", "_shuffle_fp16"))
    return ControlNetNetwork(manager.register(module), family, pooling)
