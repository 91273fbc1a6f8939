"""The latent-diffusion UNet (CompVis/Stability `openaimodel.UNetModel`) of SD 1.x, SD 2.x and SDXL.

Read top to bottom: the config and its presets, the timestep embedding, the blocks (ResBlock,
Downsample, Upsample, attention, transformer), the encoder half (UNetEncoder: embeddings, input
and middle blocks, which a ControlNet copies), the UNet, which adds ControlNet residuals to its
skip connections when given them. Parameter names are those of the original
checkpoints under `model.diffusion_model.` (input_blocks.N.M…, middle_block…, output_blocks…,
time_embed.0/2, label_emb.0.0/0.2, out.0/2): strip that prefix and a state dict loads with
strict=True. Build it cheaply with `module_init.empty_module(UNetModel, config)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class UNetConfig:
    """Hyperparameters of an LDM UNet; the defaults are SD 1.x."""

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    # Transformer blocks per spatial transformer at each level; 0 means the level has no attention
    # (the original's attention_resolutions folded in: SDXL's [1, 2, 10] at attention_resolutions
    # [4, 2] is (0, 2, 10) here).
    transformer_depth: tuple[int, ...] = (1, 1, 1, 0)
    transformer_depth_middle: int = 1  # 0: the middle block is two ResBlocks without attention
    context_dim: int = 768
    num_heads: int = 8  # used when num_head_channels is None: head width = channels // num_heads
    num_head_channels: int | None = None  # SD 2.x / SDXL: fixed head width, heads = channels // it
    use_linear_in_transformer: bool = False  # SD 2.x / SDXL: Linear proj_in/out instead of 1x1 conv
    adm_in_channels: int | None = None  # SDXL: width of the label vector y (label_emb)
    norm_groups: int = 32  # GroupNorm groups (diffusers' norm_num_groups); no tensor shape reveals it

    def heads(self, channels: int) -> tuple[int, int]:
        """(number of heads, head width) of the attention at `channels` channels."""
        if self.num_head_channels is None:
            return self.num_heads, channels // self.num_heads
        return channels // self.num_head_channels, self.num_head_channels


# Checked against Stability's inference configs (v1-inference.yaml, v2-inference(-v).yaml,
# sd_xl_base.yaml, sd_xl_refiner.yaml).
SD1_UNET = UNetConfig()
SD2_UNET = UNetConfig(context_dim=1024, num_head_channels=64, use_linear_in_transformer=True)
SDXL_UNET = UNetConfig(channel_mult=(1, 2, 4), transformer_depth=(0, 2, 10), transformer_depth_middle=10,
                       context_dim=2048, num_head_channels=64, use_linear_in_transformer=True,
                       adm_in_channels=2816)
SDXL_REFINER_UNET = UNetConfig(model_channels=384, transformer_depth=(0, 4, 4, 0), transformer_depth_middle=4,
                               context_dim=1280, num_head_channels=64, use_linear_in_transformer=True,
                               adm_in_channels=2560)


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [cos | sin] of shape [N, dim] of N (possibly fractional) timesteps, in float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) / half * torch.arange(half, dtype=torch.float32,
                                                                   device=timesteps.device))
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def label_vector(pooled: Tensor, numbers: Sequence[float], dim: int = 256) -> Tensor:
    """SDXL's label vector y: the pooled text embedding, then a `dim`-wide embedding of each number.

    SDXL base takes (height, width, crop_top, crop_left, target_height, target_width):
    1280 + 6·256 = 2816 wide; the refiner (height, width, crop_top, crop_left, aesthetic_score):
    1280 + 5·256 = 2560. The numbers are shared by the whole batch.
    """
    numbers = torch.tensor([float(n) for n in numbers], device=pooled.device)
    embedded = timestep_embedding(numbers, dim).flatten().to(pooled.dtype)
    return torch.cat([pooled, embedded.expand(pooled.shape[0], -1)], dim=-1)


def group_norm(channels: int, groups: int, eps: float = 1e-5) -> nn.GroupNorm:
    """The LDM's normalisation: GroupNorm (32 groups in every SD UNet)."""
    return nn.GroupNorm(groups, channels, eps=eps)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the timestep embedding added in between, and a skip connection."""

    def __init__(self, in_channels: int, out_channels: int, emb_channels: int, groups: int):
        super().__init__()
        self.in_layers = nn.Sequential(group_norm(in_channels, groups), nn.SiLU(),
                                       nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        # Index 2 held a Dropout(0) in the original: kept empty so the conv stays at out_layers.3.
        self.out_layers = nn.Sequential(group_norm(out_channels, groups), nn.SiLU(), nn.Identity(),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if in_channels == out_channels
                                else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers(x) + self.emb_layers(emb)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    """Halves the resolution with a strided 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to the size of the matching skip tensor, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        # Interpolating to the skip's size (not a fixed x2) keeps latents of odd size working.
        return self.conv(F.interpolate(x, size=tuple(size), mode="nearest"))


class Attention(nn.Module):
    """Multi-head attention of x over context (over x itself when context is None)."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, head_dim: int):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim))

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2)
                   for t in (self.to_q(x), self.to_k(context), self.to_v(context)))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class GEGLU(nn.Module):
    """A linear layer to twice the width whose second half gates the first through GELU."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU to 4x the width and back."""

    def __init__(self, dim: int):
        super().__init__()
        # Index 1 held a Dropout(0) in the original: kept empty so the output layer stays at net.2.
        self.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Identity(), nn.Linear(4 * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    """Pre-norm self-attention, cross-attention to the context, and feed-forward, each residual."""

    def __init__(self, dim: int, heads: int, head_dim: int, context_dim: int):
        super().__init__()
        self.attn1 = Attention(dim, dim, heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, context_dim, heads, head_dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """Transformer blocks over the pixels of a feature map, between an input and output projection."""

    def __init__(self, channels: int, heads: int, head_dim: int, depth: int, context_dim: int, linear: bool,
                 groups: int):
        super().__init__()
        inner = heads * head_dim
        self.linear = linear
        self.norm = group_norm(channels, groups, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner) if linear else nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicTransformerBlock(inner, heads, head_dim, context_dim) for _ in range(depth))
        self.proj_out = nn.Linear(inner, channels) if linear else nn.Conv2d(inner, channels, 1)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        h = self.norm(x)
        # A 1x1 conv projects the map before flattening; a Linear projects the flattened tokens.
        if not self.linear:
            h = self.proj_in(h)
        h = h.flatten(2).transpose(1, 2)
        if self.linear:
            h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, context)
        if self.linear:
            h = self.proj_out(h)
        h = h.transpose(1, 2).unflatten(2, (height, width))
        if not self.linear:
            h = self.proj_out(h)
        return x + h


class TimestepEmbedSequential(nn.Sequential):
    """A sequence of layers, each given the inputs it needs: embedding, context or output size."""

    def forward(self, x: Tensor, emb: Tensor, context: Tensor | None,
                output_size: Sequence[int] | None = None) -> Tensor:
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context)
            elif isinstance(layer, Upsample):
                x = layer(x, output_size)
            else:
                x = layer(x)
        return x


class UNetEncoder(nn.Module):
    """The UNet's embeddings, input blocks and middle block: what the UNet and a ControlNet share.

    `skip_channels[i]` is the width of input block i's output (the i-th skip connection).
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        base = config.model_channels
        emb_channels = 4 * base
        self.time_embed = nn.Sequential(nn.Linear(base, emb_channels), nn.SiLU(),
                                        nn.Linear(emb_channels, emb_channels))
        self.label_emb: nn.Sequential | None = None
        if config.adm_in_channels is not None:
            self.label_emb = nn.Sequential(nn.Sequential(nn.Linear(config.adm_in_channels, emb_channels),
                                                         nn.SiLU(), nn.Linear(emb_channels, emb_channels)))

        self.input_blocks = nn.ModuleList(
            [TimestepEmbedSequential(nn.Conv2d(config.in_channels, base, 3, padding=1))])
        self.skip_channels = [base]
        channels = base
        last_level = len(config.channel_mult) - 1
        for level, (mult, depth) in enumerate(zip(config.channel_mult, config.transformer_depth)):
            for _ in range(config.num_res_blocks):
                layers: list[nn.Module] = [ResBlock(channels, mult * base, emb_channels, config.norm_groups)]
                channels = mult * base
                if depth:
                    layers.append(self.transformer(channels, depth))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                self.skip_channels.append(channels)
            if level != last_level:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(channels)))
                self.skip_channels.append(channels)

        middle: list[nn.Module] = [ResBlock(channels, channels, emb_channels, config.norm_groups)]
        if config.transformer_depth_middle:
            middle.append(self.transformer(channels, config.transformer_depth_middle))
        middle.append(ResBlock(channels, channels, emb_channels, config.norm_groups))
        self.middle_block = TimestepEmbedSequential(*middle)

    def transformer(self, channels: int, depth: int) -> SpatialTransformer:
        """A spatial transformer of `depth` blocks at `channels` channels, with the config's heads and projections."""
        config = self.config
        return SpatialTransformer(channels, *config.heads(channels), depth, config.context_dim,
                                  config.use_linear_in_transformer, config.norm_groups)

    def embedding(self, x: Tensor, timesteps: Tensor, y: Tensor | None) -> Tensor:
        """The timestep embedding [B, 4 * model_channels] (plus SDXL's label embedding of y) in x's dtype."""
        timesteps = timesteps.reshape(-1).expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels).to(x.dtype))
        if self.label_emb is not None:
            if y is None:
                raise ValueError("this UNet has a label embedding (SDXL): pass the label vector y")
            emb = emb + self.label_emb(y.to(x.dtype))
        return emb


def _add(h: Tensor, residual: Tensor | None) -> Tensor:
    return h if residual is None else h + residual.to(h.dtype)


class UNetModel(UNetEncoder):
    """The LDM UNet: forward(x, timesteps, context, y, control) predicts the model output (eps or v) for x."""

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        base = config.model_channels
        emb_channels = 4 * base
        skip_channels = list(self.skip_channels)
        channels = skip_channels[-1]
        self.output_blocks = nn.ModuleList()
        for level, (mult, depth) in reversed(list(enumerate(zip(config.channel_mult, config.transformer_depth)))):
            for index in range(config.num_res_blocks + 1):
                layers = [ResBlock(channels + skip_channels.pop(), mult * base, emb_channels, config.norm_groups)]
                channels = mult * base
                if depth:
                    layers.append(self.transformer(channels, depth))
                if level and index == config.num_res_blocks:
                    layers.append(Upsample(channels))
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(group_norm(channels, config.norm_groups), nn.SiLU(),
                                 nn.Conv2d(channels, config.out_channels, 3, padding=1))

    def forward(self, x: Tensor, timesteps: Tensor, context: Tensor | None = None,
                y: Tensor | None = None, control: Mapping[str, Sequence[Tensor | None]] | None = None) -> Tensor:
        """x [B, C, H, W] at timesteps [B] (or one for all), text context [B, T, context_dim], SDXL's y [B, adm].

        `control` holds ControlNet residuals, as ComfyUI's control dict: "output" one per input block
        (in their order; None for none), added to that block's skip connection, and "middle" one,
        added to the middle block's output.
        """
        emb = self.embedding(x, timesteps, y)
        if context is not None:
            context = context.to(x.dtype)
        control = control or {}
        skip_residuals = list(control.get("output", ()))
        skip_residuals += [None] * (len(self.input_blocks) - len(skip_residuals))

        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb, context)
            skips.append(h)
        h = self.middle_block(h, emb, context)
        for residual in control.get("middle", ()):
            h = _add(h, residual)
        for block in self.output_blocks:
            h = torch.cat([h, _add(skips.pop(), skip_residuals.pop())], dim=1)
            h = block(h, emb, context, skips[-1].shape[-2:] if skips else None)
        return self.out(h)
