"""The tests' own bridge to diffusers: key maps from the original LDM layout to diffusers', and twins.

Written from the two layouts (our modules name parameters as the original checkpoints do; diffusers
groups them in down_blocks / mid_block / up_blocks), not from either project's converter, so the
comparison tests check our names as well as our numbers. A twin is a diffusers model built on the
meta device that takes our tensors by assignment: no second copy, no random init.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch import Tensor, nn

# Inside a ResBlock: original name -> diffusers' ResnetBlock2D name.
UNET_RESNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
               "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}

UNET_TOP_LEVEL = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
                  "label_emb.0.0": "add_embedding.linear_1", "label_emb.0.2": "add_embedding.linear_2",
                  "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}


def unet_key(key: str, num_res_blocks: int) -> str:
    """The diffusers name of an original UNet parameter name."""
    module, param = key.rsplit(".", 1)
    if module in UNET_TOP_LEVEL:
        return f"{UNET_TOP_LEVEL[module]}.{param}"
    if key.startswith("middle_block."):
        # ResBlock, transformer, ResBlock.
        _, layer, inner = key.split(".", 2)
        prefix, slot, is_resnet = "mid_block", int(layer) // 2, layer != "1"
    else:
        area, index, layer, inner = key.split(".", 3)
        # Blocks per level: num_res_blocks (+ a downsampler) on the way down, num_res_blocks + 1 up.
        if area == "input_blocks":
            level, slot = divmod(int(index) - 1, num_res_blocks + 1)
            prefix = f"down_blocks.{level}"
            if slot == num_res_blocks:
                return f"{prefix}.downsamplers.0.conv.{param}"
        else:
            level, slot = divmod(int(index), num_res_blocks + 1)
            prefix = f"up_blocks.{level}"
            if inner.startswith("conv."):
                return f"{prefix}.upsamplers.0.conv.{param}"
        is_resnet = layer == "0"
    if is_resnet:
        resnet_module, resnet_param = inner.rsplit(".", 1)
        return f"{prefix}.resnets.{slot}.{UNET_RESNET[resnet_module]}.{resnet_param}"
    return f"{prefix}.attentions.{slot}.{inner}"


def unet_to_diffusers(state_dict: dict[str, Tensor], num_res_blocks: int) -> dict[str, Tensor]:
    """An original-layout UNet state dict renamed to diffusers' layout (same tensors)."""
    return {unet_key(key, num_res_blocks): value for key, value in state_dict.items()}


VAE_ATTENTION = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def vae_key(key: str, levels: int) -> str:
    """The diffusers name of an original autoencoder parameter name (`levels` = len(ch_mult))."""
    key = re.sub(r"^encoder\.down\.(\d+)\.block\.", r"encoder.down_blocks.\1.resnets.", key)
    key = re.sub(r"^encoder\.down\.(\d+)\.downsample\.", r"encoder.down_blocks.\1.downsamplers.0.", key)
    # The original numbers the decoder's levels by resolution like the encoder; diffusers in order of use.
    key = re.sub(r"^decoder\.up\.(\d+)\.block\.",
                 lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.resnets.", key)
    key = re.sub(r"^decoder\.up\.(\d+)\.upsample\.",
                 lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.upsamplers.0.", key)
    key = re.sub(r"\.mid\.block_1\.", ".mid_block.resnets.0.", key)
    key = re.sub(r"\.mid\.block_2\.", ".mid_block.resnets.1.", key)
    key = re.sub(r"\.mid\.attn_1\.(\w+)\.", lambda m: f".mid_block.attentions.0.{VAE_ATTENTION[m[1]]}.", key)
    return key.replace(".nin_shortcut.", ".conv_shortcut.").replace(".norm_out.", ".conv_norm_out.")


def vae_to_diffusers(state_dict: dict[str, Tensor], levels: int) -> dict[str, Tensor]:
    """An original-layout autoencoder state dict in diffusers' layout; attention 1x1 convs become Linear weights."""
    converted = {}
    for key, value in state_dict.items():
        if ".mid.attn_1." in key and key.endswith("weight") and value.ndim == 4:
            value = value[:, :, 0, 0]
        converted[vae_key(key, levels)] = value
    return converted


def twin(factory: Callable[..., nn.Module], state_dict: dict[str, Tensor], **config: Any) -> nn.Module:
    """A diffusers model built on the meta device that takes `state_dict`'s tensors (strictly) by assignment."""
    with torch.device("meta"):
        model = factory(**config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    return model.eval()


def relative_error(actual: Tensor, reference: Tensor) -> float:
    """max |actual - reference| / max |reference|."""
    return ((actual - reference).abs().max() / reference.abs().max()).item()
