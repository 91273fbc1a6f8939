"""Image upscaling networks: ESRGAN's RRDBNet and Real-ESRGAN's SRVGGNetCompact, read from their files.

Read top to bottom: the two configs, the RRDBNet blocks and network (Wang et al. 2018, "ESRGAN",
with Real-ESRGAN's pixel-unshuffle input for x2 and x1), SRVGGNetCompact (Wang et al. 2021,
"Real-ESRGAN", its compact VGG-style model), then reading a state dict: the key layouts, the
sizes read from the shapes, and `upscaler_network`, which builds the right one.

Layouts of RRDBNet files, all converted to the basicsr names used here (`conv_first`,
`body.N.rdb1.conv1`, `conv_body`, `conv_up.N`, `conv_hr`, `conv_last`):
- basicsr / Real-ESRGAN: `conv_first`, `body.N.rdbM.convK`, `conv_body`, `conv_upK`, `conv_hr`,
  `conv_last`, often wrapped in `params_ema` or `params`;
- BSRGAN / RealSR: `RRDB_trunk.N.RDBM.convK`, `trunk_conv`, `upconvK`, `HRconv`;
- the original ESRGAN's sequential model: `model.0` (first conv), `model.1.sub.N.RDBM.convK.0`
  (the blocks), `model.1.sub.<blocks>` (the body conv), then the upsampling convs, the HR conv and
  the last conv at increasing `model.K` indices (the upsample and activation layers between them
  hold no weights).

Every size comes from the shapes: features, growth channels, blocks, upsampling steps; a first
conv taking 4x or 16x the output channels means a pixel-unshuffled input (Real-ESRGAN x2: 2, x1: 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAKY_SLOPE = 0.2  # ESRGAN's LeakyReLU
RESIDUAL_SCALE = 0.2  # the residual scaling of dense blocks and RRDBs (ESRGAN, section 3.2)
UNSHUFFLE_MULTIPLE = 4  # the size multiple a pixel-unshuffled input is padded to


@dataclass(frozen=True)
class RRDBConfig:
    """The size of an RRDBNet: channels, features, growth channels, blocks, x2 upsamplings, input unshuffle."""

    in_channels: int = 3
    out_channels: int = 3
    features: int = 64
    growth: int = 32
    blocks: int = 23
    upsamplings: int = 2  # nearest x2 + conv steps: the network's own scale is 2 ** upsamplings
    unshuffle: int = 1  # Real-ESRGAN's pixel-unshuffle of the input (1: none, 2 for x2 models, 4 for x1)

    @property
    def scale(self) -> int:
        """The factor from input to output size."""
        return 2 ** self.upsamplings // self.unshuffle


@dataclass(frozen=True)
class CompactConfig:
    """The size of an SRVGGNetCompact: channels, features, body convs, scale (PReLU activations)."""

    in_channels: int = 3
    out_channels: int = 3
    features: int = 64
    convs: int = 16
    scale: int = 4


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs, each fed all previous outputs (dense), the last scaled and added to the input."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for k in range(1, 6):
            inputs = features + (k - 1) * growth
            setattr(self, f"conv{k}", nn.Conv2d(inputs, features if k == 5 else growth, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        for k in range(1, 5):
            conv = getattr(self, f"conv{k}")
            outputs.append(F.leaky_relu(conv(torch.cat(outputs, 1)), LEAKY_SLOPE))
        return self.conv5(torch.cat(outputs, 1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, scaled and added to the input."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: Tensor) -> Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """ESRGAN's generator: first conv, RRDB trunk with a long skip, nearest x2 + conv upsamplings, two HR convs."""

    def __init__(self, config: RRDBConfig) -> None:
        super().__init__()
        self.config = config
        nf = config.features
        self.conv_first = nn.Conv2d(config.in_channels * config.unshuffle ** 2, nf, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(nf, config.growth) for _ in range(config.blocks)))
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up = nn.ModuleList(nn.Conv2d(nf, nf, 3, 1, 1) for _ in range(config.upsamplings))
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, config.out_channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        factor = self.config.unshuffle
        if factor > 1:
            # Padded (reflecting) to a multiple of 4 and cropped back after: spandrel's size rule for
            # these models, which ComfyUI runs them through.
            x = F.pad(x, (0, -width % UNSHUFFLE_MULTIPLE, 0, -height % UNSHUFFLE_MULTIPLE), mode="reflect")
            x = F.pixel_unshuffle(x, factor)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in self.conv_up:
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), LEAKY_SLOPE)
        out = self.conv_last(F.leaky_relu(self.conv_hr(feat), LEAKY_SLOPE))
        scale = self.config.scale
        return out[..., :height * scale, :width * scale]


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact model: conv + PReLU pairs, a pixel shuffle, plus the nearest-upscaled input."""

    def __init__(self, config: CompactConfig) -> None:
        super().__init__()
        self.config = config
        nf = config.features
        layers: list[nn.Module] = [nn.Conv2d(config.in_channels, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(config.convs):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        layers.append(nn.Conv2d(nf, config.out_channels * config.scale ** 2, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return F.pixel_shuffle(out, self.config.scale) + F.interpolate(x, scale_factor=self.config.scale,
                                                                       mode="nearest")


# ------------------------------------------------------------------------------------------------
# Reading state dicts


class UnsupportedUpscaler(ValueError):
    """A state dict that is not an architecture this module builds."""


# Renames of the basicsr / BSRGAN / RealSR layouts to ours (upsampling convs: _UPSAMPLING, counted from 1);
# the original ESRGAN's `model.K` layout goes through _from_original_esrgan (its RDB convs have a
# `.0` for their Sequential).
_RENAMES = (
    (re.compile(r"(?:RRDB_trunk|body)\.(\d+)\.(?:RDB|rdb)(\d)\.conv(\d)\.(weight|bias)"), r"body.\1.rdb\2.conv\3.\4"),
    (re.compile(r"(?:trunk_conv|conv_body)\.(weight|bias)"), r"conv_body.\1"),
    (re.compile(r"(?:HRconv|conv_hr)\.(weight|bias)"), r"conv_hr.\1"),
)
_UPSAMPLING = re.compile(r"(?:upconv|conv_up)(\d)\.(weight|bias)")
_OLD_BLOCK = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_OLD_LAYER = re.compile(r"model\.(\d+)\.(weight|bias)")
_OLD_BODY = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")


def unwrapped(state_dict: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """The weights of a training checkpoint's `params_ema` (preferred) or `params` entry, else the dict."""
    for wrapper in ("params_ema", "params"):
        inner = state_dict.get(wrapper)
        if isinstance(inner, Mapping):
            return inner
    return state_dict


def _from_original_esrgan(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The original ESRGAN's `model.K` layout in our names (see the module docstring)."""
    out: dict[str, Tensor] = {}
    blocks = 1 + max(int(m[1]) for key in state_dict if (m := _OLD_BLOCK.fullmatch(key)))
    tail = sorted({int(m[1]) for key in state_dict if (m := _OLD_LAYER.fullmatch(key)) and int(m[1]) > 1})
    # After model.0 and model.1: the upsampling convs, then the HR conv, then the last conv.
    names = {index: f"conv_up.{i}" for i, index in enumerate(tail[:-2])}
    names.update(zip(tail[-2:], ("conv_hr", "conv_last")))
    names[0] = "conv_first"
    for key, value in state_dict.items():
        if m := _OLD_BLOCK.fullmatch(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif (m := _OLD_BODY.fullmatch(key)) and int(m[1]) == blocks:
            out[f"conv_body.{m[2]}"] = value
        elif (m := _OLD_LAYER.fullmatch(key)) and int(m[1]) in names:
            out[f"{names[int(m[1])]}.{m[2]}"] = value
        else:
            out[key] = value  # left for load_weights to report
    return out


def rrdb_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An RRDBNet state dict of any known layout in our names."""
    state_dict = unwrapped(state_dict)
    if "model.0.weight" in state_dict:
        return _from_original_esrgan(state_dict)
    out = {}
    for key, value in state_dict.items():
        if m := _UPSAMPLING.fullmatch(key):
            key = f"conv_up.{int(m[1]) - 1}.{m[2]}"
        for pattern, replacement in _RENAMES:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def _count(keys: Mapping[str, Tensor], pattern: str) -> int:
    """How many indices N make `pattern` % N a key (consecutive from 0)."""
    count = 0
    while pattern % count in keys:
        count += 1
    return count


def rrdb_config(state_dict: Mapping[str, Tensor]) -> RRDBConfig:
    """The RRDBNet size of a state dict in our names."""
    first, last = state_dict["conv_first.weight"], state_dict["conv_last.weight"]
    out_channels = last.shape[0]
    unshuffle = {4 * out_channels: 2, 16 * out_channels: 4}.get(first.shape[1], 1)
    return RRDBConfig(in_channels=first.shape[1] // unshuffle ** 2, out_channels=out_channels,
                      features=first.shape[0], growth=state_dict["body.0.rdb1.conv1.weight"].shape[0],
                      blocks=_count(state_dict, "body.%d.rdb1.conv1.weight"),
                      upsamplings=_count(state_dict, "conv_up.%d.weight"), unshuffle=unshuffle)


def compact_config(state_dict: Mapping[str, Tensor]) -> CompactConfig:
    """The SRVGGNetCompact size of a state dict (`body.N`: convs at even N, PReLUs at odd N)."""
    layers = _count(state_dict, "body.%d.weight")
    first, last = state_dict["body.0.weight"], state_dict[f"body.{layers - 1}.weight"]
    in_channels = first.shape[1]
    # The last conv makes out_channels * scale² channels: the first channel count, among the
    # input's and the usual ones, that leaves a square (spandrel's rule).
    shuffled = last.shape[0]
    out_channels = next((c for c in (in_channels, 3, 4, 1) if shuffled % c == 0
                         and round((shuffled // c) ** 0.5) ** 2 == shuffled // c), None)
    if out_channels is None:
        raise UnsupportedUpscaler(f"a compact model whose last conv has {shuffled} channels, not channels x scale²")
    return CompactConfig(in_channels=in_channels, out_channels=out_channels, features=first.shape[0],
                         convs=(layers - 3) // 2, scale=round((shuffled // out_channels) ** 0.5))


def architecture(state_dict: Mapping[str, Tensor]) -> str | None:
    """"ESRGAN", "Compact" or None (not an architecture this module builds), from the keys."""
    keys = unwrapped(state_dict).keys()
    if any(".conv1x1." in key for key in keys):
        return None  # ESRGAN+: extra residual convs in the dense blocks, not built here
    esrgan = ({"model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"},
              {"conv_first.weight", "body.0.rdb1.conv1.weight"},
              {"conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight"})
    if any(marks <= keys for marks in esrgan):
        return "ESRGAN"
    if {"body.0.weight", "body.1.weight"} <= keys and unwrapped(state_dict)["body.1.weight"].dim() == 1:
        return "Compact"
    return None


def describe(state_dict: Mapping[str, Tensor]) -> str:
    """A few keys of a state dict, for errors."""
    keys = list(unwrapped(state_dict))
    return f"{len(keys)} tensors, e.g. {', '.join(keys[:4])}"


def read_upscaler(state_dict: Mapping[str, Tensor], name: str) -> tuple[type[nn.Module], object, dict[str, Tensor]]:
    """(network class, its config, the weights in our names) of an upscale model's state dict.

    Build it with `network_class(config)` (on the meta device, to assign the weights). Raises
    UnsupportedUpscaler naming `name` for other architectures (SwinIR, HAT, DAT...).
    """
    kind = architecture(state_dict)
    if kind == "ESRGAN":
        weights = rrdb_state_dict(state_dict)
        return RRDBNet, rrdb_config(weights), weights
    if kind == "Compact":
        weights = dict(unwrapped(state_dict))
        try:
            return SRVGGNetCompact, compact_config(weights), weights
        except UnsupportedUpscaler as error:
            raise UnsupportedUpscaler(f"{name}: {error}") from None
    raise UnsupportedUpscaler(f"{name}: not an upscale model Sigmagraph can run (it runs ESRGAN/Real-ESRGAN "
                              f"RRDBNet and Real-ESRGAN compact models); the file holds {describe(state_dict)}")
