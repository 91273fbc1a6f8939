"""Writes a single-file checkpoint with seeded random weights in the original layout (for tests and benchmarks).

    python tools/make_random_checkpoint.py sd15 models/checkpoints/random-sd15.safetensors --seed 0
    python tools/make_random_checkpoint.py sdxl-small models/checkpoints/random-sdxl-small.safetensors

sd15        SD 1.5 at full size: UNet, KL-f8 autoencoder and CLIP ViT-L/14 text encoder
            (1.07 B parameters; 2.1 GB as fp16).
sdxl-small  SDXL's layout and signature at small widths: a UNet with SDXL's levels, transformer
            depths, context and label widths on 64 base channels (158 M parameters, mostly the
            2048-wide cross-attention inputs), CLIP-L (transformers layout) and bigG (OpenCLIP
            layout) at their real widths but two blocks deep (157 M, mostly token embeddings),
            and a 32-channel autoencoder (5 M): 0.64 GB as fp16.

The state dicts come from our own modules (`empty_module` + `init_random_`), so the keys are
right by construction; nothing is downloaded. Weights are stored as float16.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from sigmagraph.nodes.models.clip import VIT_BIGG14, VIT_L14, CLIPTextModel
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.unet import SD1_UNET, SDXL_UNET, UNetModel
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL

DTYPE = torch.float16

# Our text-encoder names -> OpenCLIP's, for the encoders SD2 and SDXL store in OpenCLIP's layout.
_OPENCLIP = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
             "text_model.embeddings.position_embedding.weight": "positional_embedding",
             "text_model.final_layer_norm.weight": "ln_final.weight", "text_model.final_layer_norm.bias": "ln_final.bias"}
_OPENCLIP_BLOCK = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                   "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def random_weights(module_type: type[nn.Module], config: object, seed: int) -> dict[str, Tensor]:
    """The state dict of a module with seeded random weights, in float16."""
    return init_random_(empty_module(module_type, config, dtype=DTYPE), seed).state_dict()


def openclip_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A text-encoder state dict of ours in OpenCLIP's layout (fused q/k/v, `x @ P` projection)."""
    out, qkv = {}, {}
    for key, value in state.items():
        if key in _OPENCLIP:
            out[_OPENCLIP[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()
        else:
            block, name, kind = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key).groups()
            if name.startswith("self_attn.") and name.endswith(("q_proj", "k_proj", "v_proj")):
                qkv.setdefault((block, kind), {})[name.split(".")[1][0]] = value
            else:
                out[f"transformer.resblocks.{block}.{_OPENCLIP_BLOCK[name]}.{kind}"] = value
    for (block, kind), parts in qkv.items():
        out[f"transformer.resblocks.{block}.attn.in_proj_{kind}"] = torch.cat([parts[c] for c in "qkv"])
    return out


def prefixed(prefix: str, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict with `prefix` before every key."""
    return {prefix + key: value for key, value in state.items()}


def sd15_state_dict(seed: int) -> dict[str, Tensor]:
    """SD 1.5's checkpoint layout at full size."""
    return {**prefixed("model.diffusion_model.", random_weights(UNetModel, SD1_UNET, seed)),
            **prefixed("first_stage_model.", random_weights(AutoencoderKL, SD_VAE, seed + 1)),
            **prefixed("cond_stage_model.transformer.", random_weights(CLIPTextModel, VIT_L14, seed + 2))}


def sdxl_small_state_dict(seed: int) -> dict[str, Tensor]:
    """SDXL base's checkpoint layout and signature (context 2048, label 2816) at small widths."""
    clip_l = random_weights(CLIPTextModel, replace(VIT_L14, layers=2), seed + 2)
    clip_g = random_weights(CLIPTextModel, replace(VIT_BIGG14, layers=2), seed + 3)
    return {**prefixed("model.diffusion_model.", random_weights(UNetModel, replace(SDXL_UNET, model_channels=64), seed)),
            **prefixed("first_stage_model.", random_weights(AutoencoderKL, replace(SD_VAE, ch=32), seed + 1)),
            **prefixed("conditioner.embedders.0.transformer.", clip_l),
            **prefixed("conditioner.embedders.1.model.", openclip_layout(clip_g))}


LAYOUTS = {"sd15": sd15_state_dict, "sdxl-small": sdxl_small_state_dict}


def write_random_checkpoint(path: Path | str, layout: str, seed: int = 0) -> Path:
    """Writes the checkpoint of `layout` ("sd15" or "sdxl-small") with weights seeded by `seed`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(LAYOUTS[layout](seed), str(path), metadata={"sigmagraph.random_weights": f"{layout} seed {seed}"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("layout", choices=sorted(LAYOUTS))
    parser.add_argument("output", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_random_checkpoint(args.output, args.layout, args.seed))


if __name__ == "__main__":
    main()
