"""The Flux.1 transformer of Black Forest Labs (dev and schnell), in BFL's layout.

Read top to bottom: the config and presets, rotary position embedding, the blocks (modulation,
query/key norms, double-stream and single-stream blocks), the model, then the mapping between
this layout and diffusers'. Parameter names are those of BFL's checkpoints, and of ComfyUI's
single files under `model.diffusion_model.` (img_in, time_in.{in,out}_layer, vector_in,
guidance_in, txt_in, double_blocks.N…, single_blocks.N…, final_layer…): strip that prefix and a
state dict loads with strict=True. `diffusers_to_original` reads FluxTransformer2DModel's layout.

Flux is an MMDiT (mmdit.py, whose adaLN, attention and final layer it shares) with rotary
positions instead of a positional-embedding grid: 19 double-stream blocks (text and image tokens
with their own weights, one joint attention), then 38 single-stream blocks over the joined
tokens, where one projection makes queries, keys, values and the MLP input at once and a second
takes attention and MLP outputs back together. The latent enters as 2x2 patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mmdit import (TIME_EMBEDDING_WIDTH, FinalLayer, TensorMap, attention, layer_norm, linear_maps,
                    maps_from_diffusers, maps_to_diffusers, modulate, pad_to_patches, split_heads)
from .unet import timestep_embedding

TIME_FACTOR = 1000.0  # BFL's embedding scales t in [0, 1] (and the guidance scale) by this


@dataclass(frozen=True)
class FluxConfig:
    """Hyperparameters of a Flux transformer; the defaults are Flux.1 dev."""

    in_channels: int = 64  # 16 latent channels x a 2x2 patch
    out_channels: int = 64
    patch_size: int = 2
    hidden_size: int = 3072
    num_heads: int = 24
    depth: int = 19  # double-stream blocks
    depth_single_blocks: int = 38
    context_dim: int = 4096  # T5-XXL's width
    vec_in_dim: int = 768  # CLIP-L's pooled output
    axes_dim: tuple[int, ...] = (16, 56, 56)  # rotary dimensions per position axis; they sum to the head width
    theta: float = 10000.0
    mlp_ratio: float = 4.0
    guidance_embed: bool = True  # dev is guidance-distilled: the guidance scale is an input

    @property
    def mlp_width(self) -> int:
        """Width of the MLP's hidden layer."""
        return int(self.hidden_size * self.mlp_ratio)

    @property
    def latent_channels(self) -> int:
        """Channels of the latent before patching."""
        return self.in_channels // self.patch_size ** 2


FLUX_DEV = FluxConfig()
FLUX_SCHNELL = FluxConfig(guidance_embed=False)


def rope(ids: Tensor, axes_dim: tuple[int, ...], theta: float) -> tuple[Tensor, Tensor]:
    """Cosines and sines [B, 1, L, head_dim/2] of the rotation angles of tokens at positions ids [B, L, axes].

    Each axis takes its share of the head's dimension pairs, at frequencies theta^(-2j/d) as in
    RoFormer (Su et al. 2021); angles are computed in float64, as BFL and diffusers do.
    """
    angles = torch.cat([ids[..., axis, None].double()
                        * theta ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=ids.device) / dim)
                        for axis, dim in enumerate(axes_dim)], dim=-1)
    return angles.cos().float()[:, None], angles.sin().float()[:, None]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotates each adjacent pair (x[2j], x[2j+1]) of every head [B, H, L, d] by its angle."""
    even, odd = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).type_as(x)


def time_embedding(values: Tensor, batch: int) -> Tensor:
    """BFL's sinusoidal embedding [B, 256] of timesteps in [0, 1] (or guidance scales): that of 1000 x the value."""
    return timestep_embedding(values.float().reshape(-1).expand(batch) * TIME_FACTOR, TIME_EMBEDDING_WIDTH)


def image_ids(rows: int, cols: int, index: int = 0, row_offset: int = 0, col_offset: int = 0) -> Tensor:
    """Positions (index, row, column) of the patches of a rows x cols grid, row by row: [rows·cols, 3]."""
    grid = torch.stack(torch.meshgrid(torch.arange(rows) + row_offset, torch.arange(cols) + col_offset,
                                      indexing="ij"), dim=-1).flatten(0, 1)
    return torch.cat([torch.full_like(grid[:, :1], index), grid], dim=-1).float()


def patchify(x: Tensor, patch_size: int) -> Tensor:
    """Latents [B, C, H, W] (padded to whole patches) to tokens [B, rows·cols, C·p·p] of (channel, row, column)."""
    x = pad_to_patches(x, patch_size)
    batch, rows, cols = x.shape[0], x.shape[-2] // patch_size, x.shape[-1] // patch_size
    patches = x.view(batch, -1, rows, patch_size, cols, patch_size).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, rows * cols, -1)


REFERENCE_METHODS = ("offset", "index", "uxo")


def reference_tokens(references: list[Tensor], method: str, latent_size: tuple[int, int],
                     patch_size: int = 2) -> tuple[Tensor, Tensor]:
    """Flux Kontext's reference latents as extra image tokens [1, N, C·p·p] and their positions [1, N, 3].

    Where each reference sits, as ComfyUI places it (sizes in latent pixels, positions in patches):
    "offset" (Kontext's default) puts all at index 1, each beside or below the ones before, along
    the side that keeps the arrangement squarer; "index" gives reference k index k at the origin;
    "uxo" keeps index 0 and offsets each diagonally past the sampled latent and the ones before.
    """
    if method not in REFERENCE_METHODS:
        raise ValueError(f"unknown reference latents method {method!r}: expected one of {', '.join(REFERENCE_METHODS)}")

    def patches(pixels: int) -> int:
        return (pixels + patch_size // 2) // patch_size

    height = width = index = 0
    tokens, ids = [], []
    for reference in references:
        ref_height, ref_width = reference.shape[-2:]
        if method == "index":
            index, row_offset, col_offset = index + 1, 0, 0
        elif method == "uxo":
            row_offset = patches(latent_size[0]) * patch_size + height
            col_offset = patches(latent_size[1]) * patch_size + width
            height, width = height + ref_height, width + ref_width
        else:
            index, row_offset, col_offset = 1, 0, 0
            if ref_height + height > ref_width + width:
                col_offset = width
            else:
                row_offset = height
            height, width = max(height, ref_height + row_offset), max(width, ref_width + col_offset)
        tokens.append(patchify(reference[:1], patch_size))
        ids.append(image_ids(patches(ref_height), patches(ref_width), index, patches(row_offset), patches(col_offset)))
    return torch.cat(tokens, dim=1), torch.cat(ids)[None]


class MLPEmbedder(nn.Module):
    """Linear, SiLU, linear: the timestep, guidance and pooled-text embedders."""

    def __init__(self, in_dim: int, hidden_dim: int):
        super().__init__()
        self.in_layer = nn.Linear(in_dim, hidden_dim)
        self.out_layer = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_layer(F.silu(self.in_layer(x)))


class RMSNorm(nn.Module):
    """RMS norm (eps 1e-6, computed in float32) with a learned `scale`."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), x.shape[-1:], eps=1e-6).to(x.dtype) * self.scale.to(x.dtype)


class QKNorm(nn.Module):
    """Separate RMS norms of queries and keys, per head."""

    def __init__(self, dim: int):
        super().__init__()
        self.query_norm = RMSNorm(dim)
        self.key_norm = RMSNorm(dim)

    def forward(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        return self.query_norm(q), self.key_norm(k)


class Modulation(nn.Module):
    """The adaLN projection of the conditioning vector: `count` chunks (shift, scale, gate, ...) [B, D]."""

    def __init__(self, dim: int, count: int):
        super().__init__()
        self.count = count
        self.lin = nn.Linear(dim, count * dim)

    def forward(self, vec: Tensor) -> tuple[Tensor, ...]:
        return self.lin(F.silu(vec)).chunk(self.count, dim=-1)


class SelfAttention(nn.Module):
    """One stream's attention projections: fused qkv, query/key norms, output."""

    def __init__(self, config: FluxConfig):
        super().__init__()
        self.heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.norm = QKNorm(config.hidden_size // config.num_heads)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normed queries and keys, and values, of tokens x, split into heads."""
        q, k, v = split_heads(self.qkv(x), self.heads)
        return *self.norm(q, k), v


def mlp(config: FluxConfig) -> nn.Sequential:
    """Two linear layers around a tanh-approximated GELU (BFL's indices 0 and 2)."""
    return nn.Sequential(nn.Linear(config.hidden_size, config.mlp_width), nn.GELU(approximate="tanh"),
                         nn.Linear(config.mlp_width, config.hidden_size))


def stream_update(x: Tensor, attended: Tensor, mod: tuple[Tensor, ...], attn: SelfAttention,
                  feed_forward: nn.Module) -> Tensor:
    """One stream after the joint attention: gated residuals of the attention output, then of the MLP."""
    _, _, gate, shift_mlp, scale_mlp, gate_mlp = mod
    x = x + gate[:, None] * attn.proj(attended)
    return x + gate_mlp[:, None] * feed_forward(modulate(layer_norm(x), shift_mlp, scale_mlp))


class DoubleStreamBlock(nn.Module):
    """Text and image tokens, each with their own modulation, projections and MLP, in one attention."""

    def __init__(self, config: FluxConfig):
        super().__init__()
        self.img_mod = Modulation(config.hidden_size, 6)
        self.img_attn = SelfAttention(config)
        self.img_mlp = mlp(config)
        self.txt_mod = Modulation(config.hidden_size, 6)
        self.txt_attn = SelfAttention(config)
        self.txt_mlp = mlp(config)

    def forward(self, img: Tensor, txt: Tensor, vec: Tensor, pe: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        img_mod, txt_mod = self.img_mod(vec), self.txt_mod(vec)
        img_qkv = self.img_attn.qkv_heads(modulate(layer_norm(img), *img_mod[:2]))
        txt_qkv = self.txt_attn.qkv_heads(modulate(layer_norm(txt), *txt_mod[:2]))
        q, k, v = (torch.cat(pair, dim=2) for pair in zip(txt_qkv, img_qkv))  # text tokens first, as the ids
        joint = attention(apply_rope(q, *pe), apply_rope(k, *pe), v)
        txt_attended, img_attended = joint.split([txt.shape[1], img.shape[1]], dim=1)
        return (stream_update(img, img_attended, img_mod, self.img_attn, self.img_mlp),
                stream_update(txt, txt_attended, txt_mod, self.txt_attn, self.txt_mlp))


class SingleStreamBlock(nn.Module):
    """Attention and MLP in parallel from one modulated input (Dehghani et al. 2023, ViT-22B), over all tokens."""

    def __init__(self, config: FluxConfig):
        super().__init__()
        self.config = config
        self.linear1 = nn.Linear(config.hidden_size, 3 * config.hidden_size + config.mlp_width)
        self.linear2 = nn.Linear(config.hidden_size + config.mlp_width, config.hidden_size)
        self.norm = QKNorm(config.hidden_size // config.num_heads)
        self.modulation = Modulation(config.hidden_size, 3)

    def forward(self, x: Tensor, vec: Tensor, pe: tuple[Tensor, Tensor]) -> Tensor:
        shift, scale, gate = self.modulation(vec)
        qkv, hidden = self.linear1(modulate(layer_norm(x), shift, scale)).split(
            [3 * self.config.hidden_size, self.config.mlp_width], dim=-1)
        q, k, v = split_heads(qkv, self.config.num_heads)
        q, k = self.norm(q, k)
        attended = attention(apply_rope(q, *pe), apply_rope(k, *pe), v)
        return x + gate[:, None] * self.linear2(torch.cat([attended, F.gelu(hidden, approximate="tanh")], dim=-1))


class Flux(nn.Module):
    """Flux.1: forward(x, timesteps, context, y, guidance) predicts the flow velocity for latents x."""

    def __init__(self, config: FluxConfig):
        super().__init__()
        if sum(config.axes_dim) != config.hidden_size // config.num_heads:
            raise ValueError(f"axes_dim {config.axes_dim} must sum to the head width "
                             f"{config.hidden_size // config.num_heads}")
        self.config = config
        hidden = config.hidden_size
        self.img_in = nn.Linear(config.in_channels, hidden)
        self.time_in = MLPEmbedder(TIME_EMBEDDING_WIDTH, hidden)
        self.vector_in = MLPEmbedder(config.vec_in_dim, hidden)
        self.guidance_in = MLPEmbedder(TIME_EMBEDDING_WIDTH, hidden) if config.guidance_embed else None
        self.txt_in = nn.Linear(config.context_dim, hidden)
        self.double_blocks = nn.ModuleList(DoubleStreamBlock(config) for _ in range(config.depth))
        self.single_blocks = nn.ModuleList(SingleStreamBlock(config) for _ in range(config.depth_single_blocks))
        self.final_layer = FinalLayer(hidden, config.out_channels)

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor, y: Tensor, guidance: Tensor | None = None,
                ref_tokens: Tensor | None = None, ref_ids: Tensor | None = None) -> Tensor:
        """x [B, 16, H, W] at timesteps [B] (or one for all), T5 context [B, L, 4096], CLIP pooled y [B, 768].

        `timesteps` are sigma = t in [0, 1], as ComfyUI's ModelSamplingFlux passes them; the
        embedding multiplies them by 1000, as BFL's (diffusers' FluxTransformer2DModel takes the
        same unit). `guidance` [B] is the distilled guidance scale (e.g. 3.5), embedded the same
        way; dev models skip its embedding when it is None (as ComfyUI), schnell has none.
        Latents whose sides are odd are padded (circularly) and the output cropped back.
        Kontext's reference images come as `ref_tokens` [B, N, C·p·p] at positions `ref_ids`
        [B, N, 3] (`reference_tokens`): they join the image tokens and are dropped from the output.
        """
        config, batch = self.config, x.shape[0]
        height, width = x.shape[-2:]
        x = pad_to_patches(x, config.patch_size)
        rows, cols = x.shape[-2] // config.patch_size, x.shape[-1] // config.patch_size
        img = self.img_in(patchify(x, config.patch_size))
        vec = self.time_in(time_embedding(timesteps, batch).to(x.dtype))
        if self.guidance_in is not None and guidance is not None:
            vec = vec + self.guidance_in(time_embedding(guidance, batch).to(x.dtype))
        vec = vec + self.vector_in(y.to(x.dtype))
        txt = self.txt_in(context.to(x.dtype))

        # Text tokens all sit at position (0, 0, 0), image patches at (0, row, column). The angles
        # are computed on the CPU, which has float64 on every platform.
        ids = torch.cat([torch.zeros(txt.shape[1], 3), image_ids(rows, cols)])[None]
        if ref_tokens is not None:
            img = torch.cat([img, self.img_in(ref_tokens.to(x.dtype))], dim=1)
            ids = torch.cat([ids.expand(ref_ids.shape[0], -1, -1), ref_ids.float().cpu()], dim=1)
        pe = tuple(t.to(x.device) for t in rope(ids, config.axes_dim, config.theta))
        for block in self.double_blocks:
            img, txt = block(img, txt, vec, pe)
        tokens = torch.cat([txt, img], dim=1)
        for block in self.single_blocks:
            tokens = block(tokens, vec, pe)
        out = self.final_layer(tokens[:, txt.shape[1]:txt.shape[1] + rows * cols], vec)
        out = out.view(batch, rows, cols, -1, config.patch_size, config.patch_size).permute(0, 3, 1, 4, 2, 5)
        return out.reshape(batch, -1, *x.shape[-2:])[..., :height, :width]


# ----------------------------------------------------------------------------------------------
# The diffusers layout (see mmdit.TensorMap): diffusers splits every fused projection, and
# stores the final layer's adaLN as (scale, shift).

_IMG_ATTENTION = dict(q="attn.to_q", k="attn.to_k", v="attn.to_v", proj="attn.to_out.0", query_norm="attn.norm_q",
                      key_norm="attn.norm_k")
_TXT_ATTENTION = dict(q="attn.add_q_proj", k="attn.add_k_proj", v="attn.add_v_proj", proj="attn.to_add_out",
                      query_norm="attn.norm_added_q", key_norm="attn.norm_added_k")


def _norm_maps(original: str, block: str, names: Mapping[str, str]) -> list[TensorMap]:
    """A QKNorm `original` (…img_attn.norm): its scales are diffusers' norm weights."""
    return [TensorMap(f"{original}.{norm}.scale", (f"{block}.{names[norm]}.weight",))
            for norm in ("query_norm", "key_norm")]


def _stream_maps(original: str, block: str, names: Mapping[str, str], norm: str, feed_forward: str) -> list[TensorMap]:
    """One stream (`original` "…img" or "…txt") of a double block; diffusers' names within `block`."""
    return (linear_maps(f"{original}_mod.lin", f"{block}.{norm}.linear")
            + linear_maps(f"{original}_attn.qkv", *(f"{block}.{names[p]}" for p in "qkv"))
            + _norm_maps(f"{original}_attn.norm", block, names)
            + linear_maps(f"{original}_attn.proj", f"{block}.{names['proj']}")
            + linear_maps(f"{original}_mlp.0", f"{block}.{feed_forward}.net.0.proj")
            + linear_maps(f"{original}_mlp.2", f"{block}.{feed_forward}.net.2"))


def diffusers_maps(config: FluxConfig) -> list[TensorMap]:
    """Where each tensor of a Flux transformer lives in diffusers' FluxTransformer2DModel."""
    embedders = [("time_in", "timestep_embedder"), ("vector_in", "text_embedder")]
    if config.guidance_embed:
        embedders.append(("guidance_in", "guidance_embedder"))
    maps = [*linear_maps("img_in", "x_embedder"), *linear_maps("txt_in", "context_embedder"),
            *linear_maps("final_layer.linear", "proj_out"),
            *linear_maps("final_layer.adaLN_modulation.1", "norm_out.linear", swap_halves=True)]
    for original, diffusers in embedders:
        maps += linear_maps(f"{original}.in_layer", f"time_text_embed.{diffusers}.linear_1")
        maps += linear_maps(f"{original}.out_layer", f"time_text_embed.{diffusers}.linear_2")
    for i in range(config.depth):
        block = f"transformer_blocks.{i}"
        maps += _stream_maps(f"double_blocks.{i}.img", block, _IMG_ATTENTION, "norm1", "ff")
        maps += _stream_maps(f"double_blocks.{i}.txt", block, _TXT_ATTENTION, "norm1_context", "ff_context")
    hidden = config.hidden_size
    for i in range(config.depth_single_blocks):
        original, block = f"single_blocks.{i}", f"single_transformer_blocks.{i}"
        maps += linear_maps(f"{original}.linear1", *(f"{block}.{name}" for name in (
            "attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")), sizes=(hidden, hidden, hidden, config.mlp_width))
        maps += linear_maps(f"{original}.linear2", f"{block}.proj_out")
        maps += _norm_maps(f"{original}.norm", block, _IMG_ATTENTION)
        maps += linear_maps(f"{original}.modulation.lin", f"{block}.norm.linear")
    return maps


def diffusers_to_original(state_dict: Mapping[str, Tensor], config: FluxConfig) -> dict[str, Tensor]:
    """A diffusers FluxTransformer2DModel state dict in BFL's layout (keys without `model.diffusion_model.`)."""
    return maps_from_diffusers(state_dict, diffusers_maps(config))


def original_to_diffusers(state_dict: Mapping[str, Tensor], config: FluxConfig) -> dict[str, Tensor]:
    """A Flux state dict in BFL's layout as diffusers' FluxTransformer2DModel names it."""
    return maps_to_diffusers(state_dict, diffusers_maps(config))
