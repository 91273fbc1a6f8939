"""CLIP text encoders: OpenAI ViT-L/14 (SD1, SDXL), OpenCLIP ViT-H/14 (SD2), OpenCLIP ViT-bigG/14 (SDXL).

One pre-LayerNorm causal transformer serves all three; they differ in size, activation and
whether a text projection follows. Parameters use the transformers layout
(`text_model.encoder.layers.N.self_attn.q_proj.weight`, ...) that SD1 and SDXL's first encoder
store; `canonical_entries` reads a stored tensor of either layout into it, including the OpenCLIP
layout (`transformer.resblocks.N...`) stored by SD2 (`cond_stage_model.model.`) and SDXL's second
encoder (`conditioner.embedders.1.model.`).

`encode` reproduces ComfyUI's CLIPTextEncode for one encoder: every 77-token window through the
transformer, the chosen layer (clip skip), token weights applied relative to the empty prompt,
windows concatenated along the tokens, and the pooled output of the first window.

Build without paying for random init with `module_init.meta_module(CLIPTextModel, VIT_L14)`, then
give it weights with `load_state_dict(sd, assign=True)` (or storage with `module_init.empty_module`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tokenizer import END_TOKEN, START_TOKEN, WINDOW_LENGTH, TokenWindows

ACTIVATIONS = {
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),  # OpenAI CLIP's sigmoid approximation
    "gelu": F.gelu,  # exact (erf) GELU, as OpenCLIP's nn.GELU
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # SigLIP's
}


class TransformerSize(Protocol):
    """What the transformer blocks read of a config: CLIPTextConfig, and clip_vision's CLIPVisionConfig."""

    width: int
    layers: int
    heads: int
    mlp_width: int
    activation: str
    layer_norm_eps: float


@dataclass(frozen=True)
class CLIPTextConfig:
    """The size of a CLIP text transformer."""

    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_width: int = 3072
    activation: str = "quick_gelu"
    projection_dim: int | None = None  # None: no text projection (SD1 and SDXL's L do not store one)
    vocab_size: int = 49408
    context_length: int = WINDOW_LENGTH
    eos_token: int = END_TOKEN
    layer_norm_eps: float = 1e-5


VIT_L14 = CLIPTextConfig()
VIT_H14 = CLIPTextConfig(width=1024, layers=24, heads=16, mlp_width=4096, activation="gelu", projection_dim=1024)
VIT_BIGG14 = CLIPTextConfig(width=1280, layers=32, heads=20, mlp_width=5120, activation="gelu", projection_dim=1280)


@dataclass(frozen=True)
class TextEncoderSettings:
    """How a model family reads a text encoder: padding token, output layer, norm on that layer.

    `pad_token` is the padding its tokenizer uses: `CLIPTokenizer(settings.pad_token)`.

    `layer` None is the last layer after the final layer norm; a negative n is the hidden state
    after block n (-1 the last block, -2 the penultimate), with the final layer norm applied only
    when `norm_hidden` (ComfyUI's `layer_norm_hidden_state`). CLIPSetLastLayer(n) replaces `layer`
    with n for every encoder of a model; an |n| beyond the encoder's depth means the last layer.
    """

    pad_token: int
    layer: int | None
    norm_hidden: bool
    projected_pooled: bool = True  # False: the pooled output before the text projection (SD3's and Flux's CLIP-L)
    min_length: int | None = None  # pad a one-window prompt only to this many tokens (CLIPTokenizer's min_length)


SD1_CLIP_L = TextEncoderSettings(pad_token=END_TOKEN, layer=None, norm_hidden=True)
# SD2 takes the penultimate layer through ln_final (sgm's FrozenOpenCLIPEmbedder, layer="penultimate").
SD2_CLIP_H = TextEncoderSettings(pad_token=0, layer=-2, norm_hidden=True)
# SDXL takes both penultimate layers raw; G's pooled output still comes from its last layer.
SDXL_CLIP_L = TextEncoderSettings(pad_token=END_TOKEN, layer=-2, norm_hidden=False)
SDXL_CLIP_G = TextEncoderSettings(pad_token=0, layer=-2, norm_hidden=False)


class TextEncoderOutput(NamedTuple):
    """The chosen layer [B, T, width], the pooled EOS state [B, width] and its projection [B, proj] or None."""

    hidden: Tensor
    pooled: Tensor
    projected: Tensor | None


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections, causal for text."""

    def __init__(self, config: TransformerSize) -> None:
        super().__init__()
        self.heads = config.heads
        self.q_proj = nn.Linear(config.width, config.width)
        self.k_proj = nn.Linear(config.width, config.width)
        self.v_proj = nn.Linear(config.width, config.width)
        self.out_proj = nn.Linear(config.width, config.width)

    def forward(self, x: Tensor, causal: bool = True) -> Tensor:
        batch, tokens, width = x.shape
        q, k, v = (proj(x).view(batch, tokens, self.heads, -1).transpose(1, 2)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, width))


class MLP(nn.Module):
    """The feed-forward block: widen, activate, narrow."""

    def __init__(self, config: TransformerSize) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.width, config.mlp_width)
        self.activation = ACTIVATIONS[config.activation]
        self.fc2 = nn.Linear(config.mlp_width, config.width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class EncoderLayer(nn.Module):
    """A pre-LayerNorm transformer block (causal attention unless told otherwise)."""

    def __init__(self, config: TransformerSize) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.self_attn = Attention(config)
        self.layer_norm2 = nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, causal: bool = True) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    """Token embeddings plus learned absolute position embeddings."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Embedding(config.context_length, config.width)

    def forward(self, ids: Tensor) -> Tensor:
        return self.token_embedding(ids) + self.position_embedding.weight[:ids.shape[1]]


class Encoder(nn.Module):
    """The stack of transformer blocks."""

    def __init__(self, config: TransformerSize) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.layers))


class TextTransformer(nn.Module):
    """Embeddings, encoder and final layer norm: the `text_model` of the transformers layout."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)
        self.final_layer_norm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)


class CLIPTextModel(nn.Module):
    """A CLIP text encoder with layer selection for clip skip and the optional text projection."""

    def __init__(self, config: CLIPTextConfig) -> None:
        super().__init__()
        self.config = config
        self.text_model = TextTransformer(config)
        self.text_projection = (nn.Linear(config.width, config.projection_dim, bias=False)
                                if config.projection_dim is not None else None)

    def forward(self, ids: Tensor, layer: int | None = None, norm_hidden: bool = True) -> TextEncoderOutput:
        """Encodes token ids [B, T]; `layer` and `norm_hidden` as in TextEncoderSettings."""
        blocks = self.text_model.encoder.layers
        if layer is not None and layer >= 0:
            raise ValueError(f"layer must be negative (-1 is the last block) or None, got {layer}")
        # ComfyUI falls back to the last layer when |layer| exceeds the depth (CLIPSetLastLayer -24 on CLIP-L).
        stop = None if layer is None or -layer > len(blocks) else len(blocks) + layer
        x = self.text_model.embeddings(ids)
        hidden = None
        for i, block in enumerate(blocks):
            x = block(x)
            if i == stop:
                hidden = x
        final = self.text_model.final_layer_norm(x)
        if hidden is None:
            hidden = final
        elif norm_hidden:
            hidden = self.text_model.final_layer_norm(hidden)
        # The first EOS: OpenCLIP's argmax over ids finds the same one, as EOS is the largest id.
        eos = (ids == self.config.eos_token).int().argmax(dim=-1)
        pooled = final[torch.arange(final.shape[0], device=final.device), eos]
        projected = self.text_projection(pooled) if self.text_projection is not None else None
        return TextEncoderOutput(hidden, pooled, projected)


@torch.no_grad()
def encode(model: CLIPTextModel, windows: TokenWindows, settings: TextEncoderSettings) -> tuple[Tensor, Tensor]:
    """ComfyUI's conditioning for one encoder: (cond [1, 77*k, width], pooled [1, proj or width]), float32.

    A weighted token becomes z_empty + w * (z - z_empty), where z_empty is the same position of
    the empty prompt (BOS, EOS, padding) encoded alongside; tokens of weight 1 are untouched.
    The pooled output is the first window's, projected when the encoder has a projection and
    `settings.projected_pooled` asks for it.
    """
    device = model.text_model.embeddings.token_embedding.weight.device
    ids = torch.tensor(windows.ids, dtype=torch.long, device=device)
    weights = torch.tensor(windows.weights, dtype=torch.float32, device=device)[..., None]
    weighted = bool((weights != 1.0).any())
    if weighted:
        empty = [START_TOKEN, END_TOKEN] + [windows.pad_token] * (ids.shape[1] - 2)
        ids = torch.cat([ids, torch.tensor([empty], dtype=torch.long, device=device)])
    out = model(ids, settings.layer, settings.norm_hidden)
    hidden = out.hidden.float()
    cond = hidden[:len(windows.ids)]
    if weighted:
        cond = weigh_tokens(cond, weights, hidden[-1])
    pooled = out.projected if out.projected is not None and settings.projected_pooled else out.pooled
    return cond.reshape(1, -1, cond.shape[-1]), pooled[:1].float()


def weigh_tokens(cond: Tensor, weights: Tensor, empty: Tensor) -> Tensor:
    """ComfyUI's token weights: z_empty + w (z - z_empty) where w != 1; windows [k, T, D], the empty prompt's [T, D]."""
    return torch.where(weights != 1.0, (cond - empty) * weights + empty, cond)


_OPENCLIP_NAMES = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
}
_OPENCLIP_BLOCK_NAMES = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}
# Parts of an OpenCLIP text tower that are not text-encoder weights.
_OPENCLIP_UNUSED = {"logit_scale", "attn_mask"}
_OPENCLIP_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias)")
_OPENCLIP_IN_PROJ = re.compile(r"transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)")


def is_openclip(keys: Collection[str]) -> bool:
    """Whether a stored text encoder (keys without their checkpoint prefix) is in OpenCLIP's layout."""
    return "token_embedding.weight" in keys


def openclip_entries(key: str, value: Tensor) -> list[tuple[str, Tensor]]:
    """One tensor of an OpenCLIP text tower as (name, tensor) pairs of our layout (views, not copies).

    The fused attention input projection becomes q/k/v, and `text_projection`, which OpenCLIP
    applies as `x @ P`, is transposed into a Linear weight; unused parts give nothing.
    """
    if key in _OPENCLIP_UNUSED:
        return []
    if key in _OPENCLIP_NAMES:
        return [(_OPENCLIP_NAMES[key], value)]
    if key == "text_projection":
        return [("text_projection.weight", value.t())]
    if match := _OPENCLIP_IN_PROJ.fullmatch(key):
        block, kind = match.groups()
        return [(f"text_model.encoder.layers.{block}.self_attn.{name}_proj.{kind}", part)
                for name, part in zip("qkv", value.chunk(3))]
    if (match := _OPENCLIP_BLOCK.fullmatch(key)) and match[2] in _OPENCLIP_BLOCK_NAMES:
        block, name, kind = match.groups()
        return [(f"text_model.encoder.layers.{block}.{_OPENCLIP_BLOCK_NAMES[name]}.{kind}", value)]
    raise ValueError(f"unexpected key in an OpenCLIP text encoder: {key!r}")


def canonical_entries(key: str, value: Tensor, openclip: bool) -> list[tuple[str, Tensor]]:
    """One stored tensor of a text encoder as (name, tensor) pairs of our layout.

    `openclip` (see `is_openclip`) picks the layout. The transformers layout may lack the
    `text_model.` level (early SD1 checkpoints); the `position_ids` buffer and `logit_scale`
    that some files carry are dropped.
    """
    if openclip:
        return openclip_entries(key, value)
    if key.endswith("position_ids") or key == "logit_scale":
        return []
    if not key.startswith(("text_model.", "text_projection")):
        key = "text_model." + key
    return [(key, value)]
