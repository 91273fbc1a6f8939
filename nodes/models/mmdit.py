"""The MMDiT of Stable Diffusion 3 and 3.5 (Esser et al. 2024, "Scaling Rectified Flow Transformers").

Read top to bottom: the config and its presets, the shared transformer pieces (adaLN modulation,
attention over heads, patch padding, the final layer), the embedders, the joint block, the model,
then the mapping between this layout and diffusers'. Parameter names are those of Stability's
single-file checkpoints under `model.diffusion_model.` (x_embedder.proj, pos_embed, t_embedder.mlp.N,
y_embedder.mlp.N, context_embedder, joint_blocks.N.{x_block,context_block}…, final_layer…): strip
that prefix and a state dict loads with strict=True. `diffusers_to_original` reads diffusers'
SD3Transformer2DModel layout. Flux (flux.py) reuses the shared pieces and the layout mapping.

A joint block runs two streams, image tokens (x_block) and text tokens (context_block), each with
its own weights and adaLN-Zero modulation from the timestep + pooled-text vector, through one
attention over both token sets. The last block's context stream is `pre_only`: it feeds keys and
values to that attention and is then dropped. SD3.5 adds RMS norms on queries and keys (qk_norm),
and 3.5 Medium a second, image-only attention in its first 13 x_blocks (attn2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .unet import timestep_embedding

TIME_EMBEDDING_WIDTH = 256  # the sinusoidal embedding of the timestep, before its MLP (SD3 and Flux)


@dataclass(frozen=True)
class MMDiTConfig:
    """Hyperparameters of an MMDiT; the defaults are SD3 Medium (Stability's `64 * depth` width, 64-wide heads)."""

    depth: int = 24
    hidden_size: int = 1536
    num_heads: int = 24
    patch_size: int = 2
    in_channels: int = 16
    out_channels: int = 16
    context_dim: int = 4096  # T5-XXL's width; CLIP-L and bigG tokens (768 + 1280) are zero-padded to it
    pooled_dim: int = 2048  # CLIP-L and bigG pooled outputs, concatenated
    pos_embed_max_size: int = 192  # side of the stored positional-embedding grid, in patches
    qk_norm: str | None = None  # "rms": RMS norms on queries and keys (SD3.5)
    x_block_self_attn_layers: tuple[int, ...] = ()  # blocks with a second, image-only attention (3.5 Medium)
    mlp_ratio: float = 4.0

    @property
    def mlp_width(self) -> int:
        """Width of the MLP's hidden layer."""
        return int(self.hidden_size * self.mlp_ratio)


# Checked against Stability's checkpoints and diffusers' transformer/config.json of each release.
SD3_MEDIUM = MMDiTConfig()
SD35_MEDIUM = MMDiTConfig(pos_embed_max_size=384, qk_norm="rms", x_block_self_attn_layers=tuple(range(13)))
SD35_LARGE = MMDiTConfig(depth=38, hidden_size=2432, num_heads=38, qk_norm="rms")


def layer_norm(x: Tensor) -> Tensor:
    """LayerNorm without affine parameters (eps 1e-6): every norm an adaLN modulation follows."""
    return F.layer_norm(x, x.shape[-1:], eps=1e-6)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: tokens [B, L, D] scaled by 1 + scale and shifted by shift, both [B, D]."""
    return x * (1 + scale[:, None]) + shift[:, None]


def split_heads(qkv: Tensor, heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """A fused projection [B, L, 3·D] to queries, keys and values [B, heads, L, D/heads]."""
    q, k, v = qkv.unflatten(-1, (3, heads, -1)).permute(2, 0, 3, 1, 4)
    return q, k, v


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention over heads [B, heads, L, d], returned with heads merged: [B, L, heads·d]."""
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def pad_to_patches(x: Tensor, patch_size: int) -> Tensor:
    """Pads a latent's bottom and right edges (circularly, as ComfyUI) up to multiples of the patch size."""
    height, width = x.shape[-2:]
    padding = (0, -width % patch_size, 0, -height % patch_size)
    return F.pad(x, padding, mode="circular") if any(padding) else x


def sincos_grid(width: int, size: int) -> Tensor:
    """The fixed 2-D sin-cos positions [size², width] stored as `pos_embed` (MAE's, as Stability's checkpoints hold).

    Half the channels encode the column, half the row (in that order, as the original's meshgrid
    quirk has it); each half is [sin | cos] of the coordinate at frequencies 10000^(-k / (width/4)).
    """
    frequencies = 1.0 / 10000 ** (torch.arange(width // 4, dtype=torch.float64) / (width // 4))
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                                indexing="ij")
    halves = [torch.cat([(axis.reshape(-1, 1) * frequencies).sin(), (axis.reshape(-1, 1) * frequencies).cos()], dim=1)
              for axis in (cols, rows)]
    return torch.cat(halves, dim=1).float()


class FinalLayer(nn.Module):
    """adaLN (shift, scale) of the normalised tokens, then a linear map to each patch's output values."""

    def __init__(self, hidden_size: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, out_features)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(layer_norm(x), shift, scale))


class PatchEmbed(nn.Module):
    """Non-overlapping patches of the latent to tokens [B, rows·cols, hidden], row by row."""

    def __init__(self, config: MMDiTConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.hidden_size, config.patch_size, stride=config.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Embedder(nn.Module):
    """An MLP (linear, SiLU, linear) to the hidden width: of the timestep embedding, or of the pooled text."""

    def __init__(self, in_features: int, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x)


class SelfAttention(nn.Module):
    """The projections of one stream's attention: fused qkv, optional per-head RMS norms, output (unless pre_only)."""

    def __init__(self, config: MMDiTConfig, pre_only: bool = False):
        super().__init__()
        if config.qk_norm not in (None, "rms"):
            raise ValueError(f"qk_norm must be 'rms' or None, got {config.qk_norm!r}")
        dim, head_dim = config.hidden_size, config.hidden_size // config.num_heads
        self.heads = config.num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.ln_q = nn.RMSNorm(head_dim, eps=1e-6) if config.qk_norm else nn.Identity()
        self.ln_k = nn.RMSNorm(head_dim, eps=1e-6) if config.qk_norm else nn.Identity()
        self.proj = None if pre_only else nn.Linear(dim, dim)

    def qkv_heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries (normed), keys (normed) and values of tokens x, split into heads."""
        q, k, v = split_heads(self.qkv(x), self.heads)
        return self.ln_q(q), self.ln_k(k), v


class Mlp(nn.Module):
    """Two linear layers around a tanh-approximated GELU."""

    def __init__(self, config: MMDiTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_width)
        self.fc2 = nn.Linear(config.mlp_width, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DismantledBlock(nn.Module):
    """One stream of a joint block: its adaLN-Zero modulation, attention projections and MLP.

    The modulation holds (shift, scale, gate) for attention, the same for the MLP, and for a
    second attention (attn2) when there is one; a pre_only stream has (shift, scale) only.
    """

    def __init__(self, config: MMDiTConfig, pre_only: bool = False, self_attention: bool = False):
        super().__init__()
        self.attn = SelfAttention(config, pre_only)
        self.attn2 = SelfAttention(config) if self_attention else None
        self.mlp = None if pre_only else Mlp(config)
        self.modulations = 2 if pre_only else 9 if self_attention else 6
        self.adaLN_modulation = nn.Sequential(nn.SiLU(),
                                              nn.Linear(config.hidden_size, self.modulations * config.hidden_size))

    def modulation(self, c: Tensor) -> tuple[Tensor, ...]:
        """The stream's shifts, scales and gates [B, D] for the conditioning vector c."""
        return self.adaLN_modulation(c).chunk(self.modulations, dim=1)

    def update(self, x: Tensor, attended: Tensor, mod: Sequence[Tensor], attended2: Tensor | None = None) -> Tensor:
        """The stream after the joint attention: gated residuals of attention (and attn2), then of the MLP."""
        _, _, gate, shift_mlp, scale_mlp, gate_mlp = mod[:6]
        x = x + gate[:, None] * self.attn.proj(attended)
        if self.attn2 is not None:
            x = x + mod[8][:, None] * self.attn2.proj(attended2)
        return x + gate_mlp[:, None] * self.mlp(modulate(layer_norm(x), shift_mlp, scale_mlp))


class JointBlock(nn.Module):
    """One attention over text and image tokens together, each stream with its own weights."""

    def __init__(self, config: MMDiTConfig, index: int):
        super().__init__()
        self.context_block = DismantledBlock(config, pre_only=index == config.depth - 1)
        self.x_block = DismantledBlock(config, self_attention=index in config.x_block_self_attn_layers)

    def forward(self, context: Tensor, x: Tensor, c: Tensor) -> tuple[Tensor | None, Tensor]:
        """(context, x) after the block; context is None after the last (pre_only) block."""
        context_mod, x_mod = self.context_block.modulation(c), self.x_block.modulation(c)
        context_normed, x_normed = layer_norm(context), layer_norm(x)
        context_qkv = self.context_block.attn.qkv_heads(modulate(context_normed, *context_mod[:2]))
        x_qkv = self.x_block.attn.qkv_heads(modulate(x_normed, *x_mod[:2]))
        # Stability's order, text tokens first; attention itself does not depend on it.
        joint = attention(*(torch.cat(pair, dim=2) for pair in zip(context_qkv, x_qkv)))
        context_attended, x_attended = joint.split([context.shape[1], x.shape[1]], dim=1)
        attended2 = None
        if self.x_block.attn2 is not None:
            # The second attention reads the block's input, with its own shift and scale.
            attended2 = attention(*self.x_block.attn2.qkv_heads(modulate(x_normed, *x_mod[6:8])))
        x = self.x_block.update(x, x_attended, x_mod, attended2)
        if self.context_block.mlp is None:
            return None, x
        return self.context_block.update(context, context_attended, context_mod), x


class MMDiT(nn.Module):
    """SD3's MMDiT: forward(x, timesteps, context, y) predicts the flow velocity for latents x."""

    def __init__(self, config: MMDiTConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.x_embedder = PatchEmbed(config)
        self.t_embedder = Embedder(TIME_EMBEDDING_WIDTH, hidden)
        self.y_embedder = Embedder(config.pooled_dim, hidden)
        self.context_embedder = nn.Linear(config.context_dim, hidden)
        # A fixed 2-D sin-cos grid stored in the checkpoints; a latent takes its centre crop.
        self.register_buffer("pos_embed", torch.zeros(1, config.pos_embed_max_size ** 2, hidden))
        self.joint_blocks = nn.ModuleList(JointBlock(config, i) for i in range(config.depth))
        self.final_layer = FinalLayer(hidden, config.patch_size ** 2 * config.out_channels)

    def cropped_pos_embed(self, rows: int, cols: int) -> Tensor:
        """The centre rows x cols of the positional-embedding grid, as tokens [1, rows·cols, hidden]."""
        size = self.config.pos_embed_max_size
        if rows > size or cols > size:
            raise ValueError(f"a latent of {rows}x{cols} patches exceeds this model's {size}x{size} position grid")
        top, left = (size - rows) // 2, (size - cols) // 2
        grid = self.pos_embed.unflatten(1, (size, size))
        return grid[:, top:top + rows, left:left + cols].flatten(1, 2)

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor, y: Tensor,
                skip_blocks: Collection[int] = ()) -> Tensor:
        """x [B, C, H, W] at timesteps [B] (or one for all), T5/CLIP context [B, L, context_dim], pooled y [B, 2048].

        `skip_blocks` are joint blocks left out (their streams pass on unchanged), for skip-layer guidance.

        `timesteps` are sigma·1000 (t in [0, 1] times 1000), as ComfyUI's ModelSamplingSD3 and
        diffusers' SD3 pipeline pass them; the embedding uses them unscaled. Latents whose sides
        are not multiples of the patch size are padded (circularly) and the output cropped back.
        """
        config = self.config
        height, width = x.shape[-2:]
        x = pad_to_patches(x, config.patch_size)
        rows, cols = x.shape[-2] // config.patch_size, x.shape[-1] // config.patch_size
        tokens = self.x_embedder(x) + self.cropped_pos_embed(rows, cols).to(x.dtype)
        timesteps = timesteps.reshape(-1).expand(x.shape[0])
        c = self.t_embedder(timestep_embedding(timesteps, TIME_EMBEDDING_WIDTH).to(x.dtype))
        c = c + self.y_embedder(y.to(x.dtype))
        context = self.context_embedder(context.to(x.dtype))
        for index, block in enumerate(self.joint_blocks):
            if index not in skip_blocks:
                context, tokens = block(context, tokens, c)
        patches = self.final_layer(tokens, c).view(x.shape[0], rows, cols, config.patch_size, config.patch_size,
                                                   config.out_channels)
        # Each token's values are (patch row, patch column, channel).
        out = patches.permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], config.out_channels, *x.shape[-2:])
        return out[..., :height, :width]


# ----------------------------------------------------------------------------------------------
# The diffusers layout. One table per architecture says where each original tensor lives in
# diffusers' model; both directions of the conversion read it, so they cannot disagree.

@dataclass(frozen=True)
class TensorMap:
    """One tensor of the original layout and the diffusers tensors that hold it.

    The original tensor is the diffusers tensors concatenated along dim 0, in order (a fused qkv
    is to_q, to_k, to_v). `swap_halves` marks an adaLN projection whose two halves diffusers
    stores the other way round (scale, shift where the original has shift, scale).
    """

    original: str
    diffusers: tuple[str, ...]
    sizes: tuple[int, ...] | None = None  # lengths along dim 0 of the diffusers parts; None: equal parts
    swap_halves: bool = False


def linear_maps(original: str, *diffusers: str, sizes: tuple[int, ...] | None = None,
                swap_halves: bool = False) -> list[TensorMap]:
    """The TensorMaps of a module's weight and bias."""
    return [TensorMap(f"{original}.{param}", tuple(f"{name}.{param}" for name in diffusers), sizes, swap_halves)
            for param in ("weight", "bias")]


def swapped_halves(t: Tensor) -> Tensor:
    """The two halves of t along dim 0 in the other order (its own inverse)."""
    first, second = t.chunk(2)
    return torch.cat([second, first])


def _check_keys(state_dict: Mapping[str, Tensor], expected: Iterable[str], layout: str) -> None:
    expected = set(expected)
    missing, unexpected = sorted(expected - state_dict.keys()), sorted(state_dict.keys() - expected)
    if missing or unexpected:
        raise ValueError(f"not the expected {layout} layout for this config: missing {missing[:5]} "
                         f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")


def maps_to_diffusers(state_dict: Mapping[str, Tensor], maps: Sequence[TensorMap]) -> dict[str, Tensor]:
    """An original-layout state dict in diffusers' layout (fused tensors split into views)."""
    _check_keys(state_dict, (m.original for m in maps), "original")
    converted = {}
    for m in maps:
        value = state_dict[m.original]
        value = swapped_halves(value) if m.swap_halves else value
        parts = value.split(list(m.sizes)) if m.sizes else value.chunk(len(m.diffusers))
        converted.update(zip(m.diffusers, parts))
    return converted


def maps_from_diffusers(state_dict: Mapping[str, Tensor], maps: Sequence[TensorMap]) -> dict[str, Tensor]:
    """A diffusers-layout state dict in the original layout (split tensors fused)."""
    _check_keys(state_dict, (name for m in maps for name in m.diffusers), "diffusers")
    converted = {}
    for m in maps:
        parts = [state_dict[name] for name in m.diffusers]
        value = parts[0] if len(parts) == 1 else torch.cat(parts)
        converted[m.original] = swapped_halves(value) if m.swap_halves else value
    return converted


_X_ATTENTION = dict(q="attn.to_q", k="attn.to_k", v="attn.to_v", proj="attn.to_out.0", norm_q="attn.norm_q",
                    norm_k="attn.norm_k")
_CONTEXT_ATTENTION = dict(q="attn.add_q_proj", k="attn.add_k_proj", v="attn.add_v_proj", proj="attn.to_add_out",
                          norm_q="attn.norm_added_q", norm_k="attn.norm_added_k")
_SECOND_ATTENTION = dict(q="attn2.to_q", k="attn2.to_k", v="attn2.to_v", proj="attn2.to_out.0", norm_q="attn2.norm_q",
                         norm_k="attn2.norm_k")


def _attention_maps(original: str, block: str, names: Mapping[str, str], config: MMDiTConfig,
                    pre_only: bool = False) -> list[TensorMap]:
    """A stream's attention `original` (…x_block.attn); `names` are diffusers' names within `block`."""
    maps = linear_maps(f"{original}.qkv", *(f"{block}.{names[p]}" for p in "qkv"))
    if config.qk_norm:
        maps += [TensorMap(f"{original}.ln_{p}.weight", (f"{block}.{names['norm_' + p]}.weight",)) for p in "qk"]
    if not pre_only:
        maps += linear_maps(f"{original}.proj", f"{block}.{names['proj']}")
    return maps


def _modulation_and_mlp_maps(original: str, norm: str, feed_forward: str) -> list[TensorMap]:
    """A full stream's adaLN projection and MLP, diffusers' `norm`.linear and `feed_forward`.net."""
    return (linear_maps(f"{original}.adaLN_modulation.1", f"{norm}.linear")
            + linear_maps(f"{original}.mlp.fc1", f"{feed_forward}.net.0.proj")
            + linear_maps(f"{original}.mlp.fc2", f"{feed_forward}.net.2"))


def diffusers_maps(config: MMDiTConfig) -> list[TensorMap]:
    """Where each tensor of an MMDiT lives in diffusers' SD3Transformer2DModel."""
    maps = [TensorMap("pos_embed", ("pos_embed.pos_embed",)),
            *linear_maps("x_embedder.proj", "pos_embed.proj"),
            *linear_maps("t_embedder.mlp.0", "time_text_embed.timestep_embedder.linear_1"),
            *linear_maps("t_embedder.mlp.2", "time_text_embed.timestep_embedder.linear_2"),
            *linear_maps("y_embedder.mlp.0", "time_text_embed.text_embedder.linear_1"),
            *linear_maps("y_embedder.mlp.2", "time_text_embed.text_embedder.linear_2"),
            *linear_maps("context_embedder", "context_embedder"),
            *linear_maps("final_layer.linear", "proj_out"),
            *linear_maps("final_layer.adaLN_modulation.1", "norm_out.linear", swap_halves=True)]
    for i in range(config.depth):
        x, context, block = f"joint_blocks.{i}.x_block", f"joint_blocks.{i}.context_block", f"transformer_blocks.{i}"
        last = i == config.depth - 1
        maps += _attention_maps(f"{x}.attn", block, _X_ATTENTION, config)
        maps += _modulation_and_mlp_maps(x, f"{block}.norm1", f"{block}.ff")
        if i in config.x_block_self_attn_layers:
            maps += _attention_maps(f"{x}.attn2", block, _SECOND_ATTENTION, config)
        maps += _attention_maps(f"{context}.attn", block, _CONTEXT_ATTENTION, config, pre_only=last)
        if last:
            # diffusers' last context stream is an AdaLayerNormContinuous: (scale, shift).
            maps += linear_maps(f"{context}.adaLN_modulation.1", f"{block}.norm1_context.linear", swap_halves=True)
        else:
            maps += _modulation_and_mlp_maps(context, f"{block}.norm1_context", f"{block}.ff_context")
    return maps


def diffusers_to_original(state_dict: Mapping[str, Tensor], config: MMDiTConfig) -> dict[str, Tensor]:
    """A diffusers SD3Transformer2DModel state dict in Stability's layout (keys without `model.diffusion_model.`)."""
    return maps_from_diffusers(state_dict, diffusers_maps(config))


def original_to_diffusers(state_dict: Mapping[str, Tensor], config: MMDiTConfig) -> dict[str, Tensor]:
    """An MMDiT state dict in Stability's layout as diffusers' SD3Transformer2DModel names it."""
    return maps_to_diffusers(state_dict, diffusers_maps(config))
