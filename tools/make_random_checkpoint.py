"""Writes model files with seeded random weights in the original layouts (for tests and benchmarks).

    python tools/make_random_checkpoint.py models/checkpoints/random-sd15.safetensors --family sd15 --seed 0
    python tools/make_random_checkpoint.py models/checkpoints/tiny-sd3.safetensors --family sd3 --depth 2 --width 128
    python tools/make_random_checkpoint.py models --family flux-dev --depth 1 --width 256 --split

sd15          SD 1.5 at full size: UNet, KL-f8 autoencoder and CLIP ViT-L/14 text encoder
              (1.07 B parameters; 2.1 GB as fp16).
sdxl-small    SDXL's layout and signature at small widths: a UNet with SDXL's levels, transformer
              depths, context and label widths on 64 base channels (158 M parameters, mostly the
              2048-wide cross-attention inputs), CLIP-L (transformers layout) and bigG (OpenCLIP
              layout) at their real widths but two blocks deep (157 M, mostly token embeddings),
              and a 32-channel autoencoder (5 M): 0.64 GB as fp16.
sd3, sd35m    Stability's single-file layout (model.diffusion_model.joint_blocks.*, first_stage_model.*,
              text_encoders.{clip_l,clip_g,t5xxl}.transformer.*) of SD3 Medium / SD3.5 Medium (QK norms,
              dual attention in the first 13/24 of the blocks).
flux-dev,     BFL's transformer (double_blocks.*, single_blocks.*; dev with its guidance embedder) in
flux-schnell  ComfyUI's single-file layout (model.diffusion_model., vae., text_encoders.*).

For the flow families, --depth and --width (default: the released sizes) set the transformer's
blocks and width (Flux: `depth` double blocks and twice as many single ones; widths in multiples of
the 64-wide MMDiT or 128-wide Flux heads); the positional grid of a reduced MMDiT covers 64x64
patches. Their text encoders keep the real widths the networks read (CLIP-L 768, bigG 1280, T5
4096), the CLIPs two blocks deep and T5 one, with T5 reading a toy SentencePiece vocabulary that the tool writes beside
the file as t5_tokenizer/tokenizer.json (where the loaders look for T5's tokenizer); the
autoencoder is SD3's and Flux's 16-channel one at 32 base channels. --split writes the parts as
ComfyUI users keep them, into a models folder: diffusion_models/<family>.safetensors (the
network's bare keys), text_encoders/{clip_l,clip_g,t5xxl}.safetensors, vae/<family>_vae.safetensors.

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
from sigmagraph.nodes.models.families import FLUX_DEV_FAMILY, FLUX_SCHNELL_FAMILY, SD3, ModelFamily
from sigmagraph.nodes.models.flux import Flux
from sigmagraph.nodes.models.mmdit import SD35_MEDIUM, MMDiT, sincos_grid
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.t5 import T5_XXL, T5EncoderModel
from sigmagraph.nodes.models.t5_text import TOKENIZER_FILE, TOKENIZER_FOLDER
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

# ----------------------------------------------------------------------------------------------
# The flow families

FLOW_FAMILIES: dict[str, tuple[ModelFamily, object]] = {
    "sd3": (SD3, SD3.network), "sd35m": (SD3, SD35_MEDIUM),
    "flux-dev": (FLUX_DEV_FAMILY, FLUX_DEV_FAMILY.network),
    "flux-schnell": (FLUX_SCHNELL_FAMILY, FLUX_SCHNELL_FAMILY.network)}
REDUCED_GRID = 64  # patches per side of a reduced MMDiT's positional grid (1024-pixel images)
# A toy SentencePiece vocabulary: T5's special tokens, "▁", and each lowercase letter and digit alone and after "▁".
TOY_PIECES = ["<pad>", "</s>", "<unk>", "\u2581"] + [p for c in "abcdefghijklmnopqrstuvwxyz0123456789"
                                                  for p in (c, "\u2581" + c)]


def flow_network_config(name: str, depth: int | None, width: int | None) -> object:
    """The network config of a flow family at the given depth and width (None: the released ones)."""
    family, config = FLOW_FAMILIES[name]
    if depth is None and width is None:
        return config
    width = width or config.hidden_size
    depth = depth or config.depth
    if family is SD3:
        self_attention = tuple(range(-(-len(config.x_block_self_attn_layers) * depth // config.depth)))
        return replace(config, depth=depth, hidden_size=width, num_heads=width // 64,
                       pos_embed_max_size=REDUCED_GRID, x_block_self_attn_layers=self_attention)
    return replace(config, depth=depth, depth_single_blocks=2 * depth, hidden_size=width,
                   num_heads=width // sum(config.axes_dim))


def flow_parts(name: str, seed: int, depth: int | None = None, width: int | None = None) -> dict[str, dict[str, Tensor]]:
    """The state dicts of a flow family's parts: "network", "vae" and each text encoder by slot name."""
    family, _ = FLOW_FAMILIES[name]
    config = flow_network_config(name, depth, width)
    if family is SD3:
        network = random_weights(MMDiT, config, seed)
        network["pos_embed"] = sincos_grid(config.hidden_size, config.pos_embed_max_size)[None].to(DTYPE)
    else:
        network = random_weights(Flux, config, seed)
    parts = {"network": network, "vae": random_weights(AutoencoderKL, replace(family.vae, ch=32), seed + 1)}
    encoders = {"clip_l": (CLIPTextModel, replace(VIT_L14, layers=2, projection_dim=VIT_L14.width)),
                "clip_g": (CLIPTextModel, replace(VIT_BIGG14, layers=2)),
                "t5xxl": (T5EncoderModel, replace(T5_XXL, vocab_size=len(TOY_PIECES), num_layers=1, num_heads=2,
                                                  d_ff=256))}
    for offset, slot in enumerate(family.text_encoders):
        parts[slot.name] = random_weights(*encoders[slot.name], seed + 2 + offset)
    return parts


def write_toy_t5_tokenizer(folder: Path) -> Path:
    """Writes a Unigram tokenizer.json over TOY_PIECES, with T5's normalisation-free Metaspace pre-tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    pieces = [(piece, 0.0 if index < 3 else -float(len(piece) == 1)) for index, piece in enumerate(TOY_PIECES)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    path = folder / TOKENIZER_FOLDER / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def write_flow_checkpoint(path: Path | str, name: str, seed: int = 0, depth: int | None = None,
                          width: int | None = None) -> Path:
    """One single file in the family's original layout, and the toy T5 tokenizer beside it."""
    family, _ = FLOW_FAMILIES[name]
    parts = flow_parts(name, seed, depth, width)
    state = {**prefixed(family.network_prefix, parts.pop("network")), **prefixed(family.vae_prefix, parts.pop("vae"))}
    for slot in family.text_encoders:
        state.update(prefixed(slot.prefixes[0], parts[slot.name]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"sigmagraph.random_weights": f"{name} seed {seed}"})
    write_toy_t5_tokenizer(path.parent)
    return path


def write_flow_split(models_dir: Path | str, name: str, seed: int = 0, depth: int | None = None,
                     width: int | None = None) -> dict[str, Path]:
    """The family's parts as separate files in a models folder (see the module docstring); their paths by part."""
    models_dir = Path(models_dir)
    files = {"network": models_dir / "diffusion_models" / f"{name}.safetensors",
             "vae": models_dir / "vae" / f"{name}_vae.safetensors"}
    parts = flow_parts(name, seed, depth, width)
    for part, state in parts.items():
        path = files.setdefault(part, models_dir / "text_encoders" / f"{part}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(path), metadata={"sigmagraph.random_weights": f"{name} {part} seed {seed}"})
    write_toy_t5_tokenizer(models_dir / "text_encoders")
    return files




def write_random_checkpoint(path: Path | str, layout: str, seed: int = 0) -> Path:
    """Writes the checkpoint of `layout` ("sd15" or "sdxl-small") with weights seeded by `seed`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(LAYOUTS[layout](seed), str(path), metadata={"sigmagraph.random_weights": f"{layout} seed {seed}"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the file to write (with --split: the models folder)")
    parser.add_argument("--family", choices=sorted(LAYOUTS) + sorted(FLOW_FAMILIES), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depth", type=int, help="transformer blocks (flow families)")
    parser.add_argument("--width", type=int, help="transformer width (flow families)")
    parser.add_argument("--split", action="store_true", help="separate network, text-encoder and VAE files")
    args = parser.parse_args()
    if args.family in LAYOUTS:
        if args.split or args.depth or args.width:
            parser.error(f"--split, --depth and --width apply to the flow families, not {args.family}")
        print(write_random_checkpoint(args.output, args.family, args.seed))
    elif args.split:
        for path in write_flow_split(args.output, args.family, args.seed, args.depth, args.width).values():
            print(path)
    else:
        print(write_flow_checkpoint(args.output, args.family, args.seed, args.depth, args.width))


if __name__ == "__main__":
    main()
