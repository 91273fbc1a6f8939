"""The KL-f8 autoencoder (ldm `AutoencoderKL`) of SD 1.x, 2.x, XL, 3.x and Flux, with tiled encode and decode.

Read top to bottom: the config and presets, the latent and image conventions, the blocks
(ResnetBlock, AttnBlock, Downsample, Upsample), Encoder and Decoder, the autoencoder, tiling.
Parameter names are those of the original checkpoints under `first_stage_model.` (encoder.down.N…,
encoder.mid.attn_1.q/k/v/proj_out as 1x1 convs, decoder.up.N…, quant_conv, post_quant_conv).
SD3's and Flux's autoencoders have 16 latent channels and no quant_conv / post_quant_conv.

Conventions, as in ComfyUI:
- The autoencoder maps pixels [B, 3, H, W] in [-1, 1] to latents [B, 4, H/8, W/8] and back.
  Encoding is deterministic: the mean (mode) of the posterior, never a sample. Its latents are
  unscaled; scaling them for the diffusion model is the MODEL's latent format (LatentFormat).
- An IMAGE in the graph is [B, H, W, 3] in [0, 1]; `pixels_from_image` / `image_from_pixels`
  convert at the autoencoder's boundary.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class VAEConfig:
    """Hyperparameters of a KL autoencoder; the defaults are SD 1.x/2.x's KL-f8."""

    image_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    z_channels: int = 4
    embed_dim: int = 4
    norm_groups: int = 32  # GroupNorm groups (diffusers' norm_num_groups); no tensor shape reveals it
    use_quant_conv: bool = True  # the 1x1 quant_conv / post_quant_conv around the latent (none in SD3's and Flux's)

    @property
    def downscale(self) -> int:
        """Pixels per latent pixel along each side (8 for KL-f8)."""
        return 2 ** (len(self.ch_mult) - 1)


SD_VAE = VAEConfig()  # SD 1.x, 2.x and SDXL alike: the same architecture, each with its own weights
# SD3's and Flux's: 16 latent channels, no quant convs (each family with its own weights).
SD3_VAE = VAEConfig(z_channels=16, embed_dim=16, use_quant_conv=False)


def pixels_from_image(image: Tensor) -> Tensor:
    """A graph IMAGE [B, H, W, C] in [0, 1] to autoencoder pixels [B, C, H, W] in [-1, 1]."""
    return image.movedim(-1, 1) * 2.0 - 1.0


def image_from_pixels(pixels: Tensor) -> Tensor:
    """Autoencoder pixels [B, C, H, W] to a graph IMAGE [B, H, W, C], clamped to [0, 1]."""
    return ((pixels + 1.0) / 2.0).clamp(0.0, 1.0).movedim(1, -1)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """The autoencoder's normalisation: GroupNorm with eps 1e-6 (32 groups in every SD autoencoder)."""
    return nn.GroupNorm(groups, channels, eps=1e-6)


class ResnetBlock(nn.Module):
    """Two norm-SiLU-conv stages with a skip connection (1x1 conv when the width changes)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int):
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        # In place wherever the tensor is this block's own: at 512x512 an activation is hundreds of
        # MB, and every new one costs the kernel's page faults as well as the writes.
        h = self.conv1(F.silu(self.norm1(x), inplace=True))
        h = self.conv2(F.silu(self.norm2(h), inplace=True))
        return h.add_(x if self.nin_shortcut is None else self.nin_shortcut(x))


class AttnBlock(nn.Module):
    """Single-head self-attention over all pixels, with 1x1 convolutions as projections."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        h = self.norm(x)
        q, k, v = (t.flatten(2).transpose(1, 2)[:, None] for t in (self.q(h), self.k(h), self.v(h)))
        h = F.scaled_dot_product_attention(q, k, v)[:, 0]
        return self.proj_out(h.transpose(1, 2).unflatten(2, (height, width))).add_(x)


class Downsample(nn.Module):
    """Halves the resolution: pad right and bottom by one, then a strided 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        # The original pads asymmetrically, so the output pixel i sees input pixels 2i..2i+2.
        return self.conv(F.pad(x, (0, 1, 0, 1)))


# Which rows of a 3x3 kernel fall on input rows i-1+a and i+a (its two taps) when it is centred on
# output row 2i+a of a nearest-neighbour 2x upsampling, for the phases a = 0 and a = 1; columns alike.
PHASE_TAPS = (((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


class Upsample(nn.Module):
    """Doubles the resolution: nearest-neighbour, then a 3x3 convolution (computed as one, see forward)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self._phases: tuple[tuple, Tensor, Tensor] | None = None  # (weight identity, kernels, bias)

    def phase_kernels(self) -> tuple[Tensor, Tensor]:
        """The four phases' 2x2 kernels stacked [4 * out, in, 2, 2] and their bias, kept until the weights change."""
        weight, bias = self.conv.weight, self.conv.bias
        identity = (weight.data_ptr(), weight._version, bias.data_ptr(), bias._version, weight.dtype, weight.device)
        if self._phases is None or self._phases[0] != identity:
            taps = torch.tensor(PHASE_TAPS, device=weight.device)
            kernels = torch.einsum("aik,bjl,ockl->abocij", taps, taps, weight.float()).flatten(0, 2).to(weight.dtype)
            self._phases = (identity, kernels.contiguous(memory_format=torch.channels_last), bias.repeat(4))
        return self._phases[1], self._phases[2]

    def forward(self, x: Tensor) -> Tensor:
        # conv(upsample(x)) without the 4x larger upsampled image: the 3x3 window of an output pixel
        # covers only 2x2 input pixels, which of its taps share one depends on the pixel's row and
        # column parity (its phase), so each phase is a 2x2 convolution of x with summed taps. The
        # four run as one convolution with 4x the output channels, and are then interleaved: 4
        # multiply-adds per output pixel and channel pair instead of 9, for the same sums.
        channels = self.conv.out_channels
        kernels, bias = self.phase_kernels()
        # With padding 1, position (i, j) of a 2x2 convolution sees x[i-1:i+1, j-1:j+1]; output pixel
        # (2i+a, 2j+b) needs x[i-1+a:i+1+a, j-1+b:j+1+b], position (i+a, j+b) of its phase (a, b).
        phases = F.conv2d(x, kernels, bias, padding=1).unflatten(1, (4, channels))
        batch, _, height, width = x.shape
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = torch.empty(batch, channels, 2 * height, 2 * width, dtype=phases.dtype, device=x.device,
                          memory_format=layout)
        for phase, (a, b) in enumerate(itertools.product((0, 1), repeat=2)):
            out[:, :, a::2, b::2] = phases[:, phase, :, a:a + height, b:b + width]
        return out


class MidBlock(nn.Module):
    """ResnetBlock, attention, ResnetBlock at the lowest resolution."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Level(nn.Module):
    """One resolution of the encoder or decoder: ResnetBlocks, then a down- or upsampler if any."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int, groups: int, downsample: bool = False,
                 upsample: bool = False):
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups)
                                   for i in range(blocks))
        self.downsample = Downsample(out_channels) if downsample else None
        self.upsample = Upsample(out_channels) if upsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.block:
            x = block(x)
        for resample in (self.downsample, self.upsample):
            if resample is not None:
                x = resample(x)
        return x


class Encoder(nn.Module):
    """Pixels to the posterior's moments (mean and log-variance, 2·z_channels) at 1/8 resolution."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = [config.ch * m for m in config.ch_mult]
        self.conv_in = nn.Conv2d(config.image_channels, config.ch, 3, padding=1)
        last = len(widths) - 1
        self.down = nn.ModuleList(
            Level(config.ch if i == 0 else widths[i - 1], width, config.num_res_blocks, config.norm_groups,
                  downsample=i != last)
            for i, width in enumerate(widths))
        self.mid = MidBlock(widths[-1], config.norm_groups)
        self.norm_out = group_norm(widths[-1], config.norm_groups)
        self.conv_out = nn.Conv2d(widths[-1], 2 * config.z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))


class Decoder(nn.Module):
    """Latents (z_channels) to pixels; up[i] works at the resolution of the encoder's down[i]."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        widths = [config.ch * m for m in config.ch_mult]
        self.conv_in = nn.Conv2d(config.z_channels, widths[-1], 3, padding=1)
        self.mid = MidBlock(widths[-1], config.norm_groups)
        last = len(widths) - 1
        self.up = nn.ModuleList(
            Level(widths[min(i + 1, last)], width, config.num_res_blocks + 1, config.norm_groups, upsample=i != 0)
            for i, width in enumerate(widths))
        self.norm_out = group_norm(widths[0], config.norm_groups)
        self.conv_out = nn.Conv2d(widths[0], config.image_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h), inplace=True))


class AutoencoderKL(nn.Module):
    """The KL autoencoder: `encode` pixels to latent means, `decode` latents to pixels (plain or tiled).

    Both compute in `memory_format`, channels-last: oneDNN's convolutions then take and give
    activations as they are, without reordering them from and to NCHW around every call (loaders
    store the kernels so too, which spares reordering them).
    """

    memory_format = torch.channels_last

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        quant = config.use_quant_conv
        self.quant_conv = nn.Conv2d(2 * config.z_channels, 2 * config.embed_dim, 1) if quant else nn.Identity()
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1) if quant else nn.Identity()

    def encode(self, pixels: Tensor) -> Tensor:
        """Pixels [B, 3, H, W] in [-1, 1] to latent means [B, embed_dim, H/8, W/8] (centre-cropped to x8)."""
        pixels = crop_to_multiple(pixels, self.config.downscale).contiguous(memory_format=self.memory_format)
        return self.quant_conv(self.encoder(pixels))[:, :self.config.embed_dim]

    def decode(self, latent: Tensor) -> Tensor:
        """Latents [B, embed_dim, h, w] to pixels [B, 3, 8h, 8w], roughly in [-1, 1] (not clamped)."""
        return self.decoder(self.post_quant_conv(latent.contiguous(memory_format=self.memory_format)))

    def encode_tiled(self, pixels: Tensor, tile_size: int = 512, overlap: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> Tensor:
        """`encode` in overlapping tiles of `tile_size` pixels (see `tiled_map`); sizes in pixels."""
        scale = self.config.downscale
        # Tiles start on the latent grid, so each tile's latent lands on whole latent pixels.
        tiles = [(height * scale, width * scale) for height, width in three_tilings(tile_size // scale)]
        return average_of_tilings(self.encode, crop_to_multiple(pixels, scale), tiles,
                                  overlap // scale * scale, 1 / scale, progress)

    def decode_tiled(self, latent: Tensor, tile_size: int = 512, overlap: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> Tensor:
        """`decode` in overlapping tiles of `tile_size` pixels (see `tiled_map`); sizes in pixels."""
        scale = self.config.downscale
        return average_of_tilings(self.decode, latent, three_tilings(tile_size // scale), overlap // scale,
                                  scale, progress)


def crop_to_multiple(pixels: Tensor, multiple: int) -> Tensor:
    """Centre-crops height and width down to multiples of `multiple`, as ComfyUI does before encoding."""
    height, width = pixels.shape[-2:]
    top, left = (height % multiple) // 2, (width % multiple) // 2
    return pixels[..., top:top + height - height % multiple, left:left + width - width % multiple]


# Tiling. Peak memory is that of the model on one tile (one batch item) plus a few output-sized
# accumulators: activations grow with the tile's area, never with the image's.
#
# Blending: tiles overlap their neighbours by at least `overlap` input pixels. Each tile's output
# is weighted by a ramp that rises linearly, (i + 1) / (f + 1) for i = 0..f-1, over the f = overlap
# · scale output pixels next to each edge it shares with a neighbour (image borders keep weight
# 1), and the weighted sum is divided by the summed weights. Where exactly two tiles overlap by
# `overlap`, their ramps add up to one: a linear cross-fade. The last tile of a row or column is
# shifted back to end at the border, so every tile has its full size (and full context).
#
# As ComfyUI's VAEDecodeTiled/VAEEncodeTiled, the result averages three tilings — square tiles,
# half-height double-width ones and double-height half-width ones — so that no seam sits at the
# same place in all three and none survives at full strength. All three have the same tile area.

def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of length `tile` covering [0, size), neighbours overlapping by >= `overlap`."""
    if tile >= size:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be at least 0 and less than the tile size {tile}")
    return list(range(0, size - tile, tile - overlap)) + [size - tile]


def blend_ramp(length: int, feather: int, rise: bool, fall: bool) -> Tensor:
    """One axis of a tile's blending weight: ones, with linear ramps of `feather` pixels at shared edges."""
    weight = torch.ones(length)
    feather = min(feather, length)
    ramp = torch.arange(1, feather + 1, dtype=torch.float32) / (feather + 1)
    if rise:
        weight[:feather] = weight[:feather] * ramp
    if fall:
        weight[length - feather:] = weight[length - feather:] * ramp.flip(0)
    return weight


def tiled_map(fn: Callable[[Tensor], Tensor], x: Tensor, tile: tuple[int, int], overlap: int, scale: float,
              on_tile: Callable[[], None] | None = None) -> Tensor:
    """Applies `fn`, which scales height and width by `scale`, to overlapping tiles of x and blends them.

    `tile` (height, width) and `overlap` are in x's pixels. Batch items go one at a time.
    """
    height, width = x.shape[-2:]
    rows = tile_starts(height, tile[0], overlap)
    cols = tile_starts(width, tile[1], overlap)
    feather = round(overlap * scale)
    out = weights = None
    for item in range(x.shape[0]):
        for top, left in itertools.product(rows, cols):
            piece = fn(x[item:item + 1, :, top:top + tile[0], left:left + tile[1]])
            if out is None:
                out = piece.new_zeros(x.shape[0], piece.shape[1], round(height * scale), round(width * scale))
                weights = piece.new_zeros(1, 1, *out.shape[-2:])
            out_top, out_left = round(top * scale), round(left * scale)
            piece_height, piece_width = piece.shape[-2:]
            weight = torch.outer(
                blend_ramp(piece_height, feather, top > 0, top + tile[0] < height),
                blend_ramp(piece_width, feather, left > 0, left + tile[1] < width)).to(piece)
            rows_out = slice(out_top, out_top + piece_height)
            cols_out = slice(out_left, out_left + piece_width)
            out[item:item + 1, :, rows_out, cols_out] += piece * weight
            if item == 0:  # every batch item has the same weights: sum them once
                weights[..., rows_out, cols_out] += weight
            if on_tile is not None:
                on_tile()
    return out / weights


def three_tilings(tile: int) -> list[tuple[int, int]]:
    """The (height, width) tile shapes ComfyUI averages: square, half-height x2-width, x2-height half-width."""
    return [(tile, tile), (tile // 2, tile * 2), (tile * 2, tile // 2)]


def count_tiles(x: Tensor, tile: tuple[int, int], overlap: int) -> int:
    """How many times `tiled_map` calls its function for x."""
    height, width = x.shape[-2:]
    return x.shape[0] * len(tile_starts(height, tile[0], overlap)) * len(tile_starts(width, tile[1], overlap))


def average_of_tilings(fn: Callable[[Tensor], Tensor], x: Tensor, tiles: list[tuple[int, int]], overlap: int,
                       scale: float, progress: Callable[[int, int], None] | None = None) -> Tensor:
    """The mean of `tiled_map` over several tile shapes; `progress(done, total)` after each tile."""
    total = sum(count_tiles(x, tile, overlap) for tile in tiles)
    done = itertools.count(1)

    def on_tile() -> None:
        if progress is not None:
            progress(next(done), total)

    result = tiled_map(fn, x, tiles[0], overlap, scale, on_tile)
    for tile in tiles[1:]:
        result += tiled_map(fn, x, tile, overlap, scale, on_tile)
    return result / len(tiles)
