"""The T5 v1.1 encoder (Raffel et al. 2020; v1.1's gated-GELU feed-forward) that SD3 and Flux read text with.

Read top to bottom: the config and preset, relative position buckets, the blocks (attention,
gated feed-forward, the two sublayers), the encoder, and loading. Parameters use the
transformers layout that ComfyUI's `t5xxl` files store (shared, encoder.block.N.layer.0.SelfAttention
.{q,k,v,o}, encoder.block.N.layer.1.DenseReluDense.{wi_0,wi_1,wo}, layer_norm, final_layer_norm).

What sets T5 apart from CLIP: RMS layer norms without mean subtraction or bias; no absolute
positions, but a learned bias per head on the attention logits for each bucket of query-to-key
offset, computed by the first block and shared by all; no 1/sqrt(d) scaling of the logits (it is
folded into the initialisation); no biases anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class T5Config:
    """The size of a T5 encoder; the defaults are T5 v1.1 XXL (google/t5-v1_1-xxl)."""

    vocab_size: int = 32128
    d_model: int = 4096
    d_kv: int = 64  # width of one attention head
    d_ff: int = 10240
    num_layers: int = 24
    num_heads: int = 64
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_eps: float = 1e-6


T5_XXL = T5Config()
V = TypeVar("V")


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device: torch.device) -> Tensor:
    """The bucket [length, length] of each (query, key) offset, bidirectional as in T5's encoder.

    Keys after the query take the upper half of the buckets, the others the lower half. Within a
    half, offsets below a quarter of num_buckets have a bucket each; larger ones share buckets of
    logarithmically growing width, and from max_distance on all share the last.
    """
    offset = torch.arange(length, device=device)[None, :] - torch.arange(length, device=device)[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = offset.abs()
    # Truncation toward zero of the logarithmic position, as the original (Mesh TensorFlow).
    logarithmic = exact + (torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
                           * (half - exact)).long()
    bucket = torch.where(distance < exact, distance, logarithmic.clamp(max=half - 1))
    return bucket + (offset > 0).long() * half


class T5Attention(nn.Module):
    """Multi-head self-attention without biases or logit scaling; block 0 also owns the position bias."""

    def __init__(self, config: T5Config, has_relative_bias: bool):
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.heads = config.num_heads
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.relative_attention_bias = (nn.Embedding(config.relative_attention_num_buckets, config.num_heads)
                                        if has_relative_bias else None)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """Tokens [B, L, d_model] attending with the additive logit bias [B or 1, heads, L, L]."""
        q, k, v = (proj(x).unflatten(-1, (self.heads, -1)).transpose(1, 2) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        return self.o(out.transpose(1, 2).flatten(2))


class T5DenseGatedActDense(nn.Module):
    """v1.1's feed-forward: GELU (tanh approximation) of one projection gates another, then back down."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.wo(F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x))


class T5LayerSelfAttention(nn.Module):
    """Pre-norm self-attention with a residual connection."""

    def __init__(self, config: T5Config, has_relative_bias: bool):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_bias)
        self.layer_norm = nn.RMSNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        return x + self.SelfAttention(self.layer_norm(x), bias)


class T5LayerFF(nn.Module):
    """Pre-norm gated feed-forward with a residual connection."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config)
        self.layer_norm = nn.RMSNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.DenseReluDense(self.layer_norm(x))


class T5Block(nn.Module):
    """Self-attention then feed-forward (`layer.0`, `layer.1` in the stored names)."""

    def __init__(self, config: T5Config, has_relative_bias: bool):
        super().__init__()
        self.layer = nn.ModuleList([T5LayerSelfAttention(config, has_relative_bias), T5LayerFF(config)])

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        return self.layer[1](self.layer[0](x, bias))


class T5Stack(nn.Module):
    """The encoder's blocks and final norm."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.block = nn.ModuleList(T5Block(config, has_relative_bias=i == 0) for i in range(config.num_layers))
        self.final_layer_norm = nn.RMSNorm(config.d_model, eps=config.layer_norm_eps)


class T5EncoderModel(nn.Module):
    """The T5 encoder: token ids to the last hidden state (after the final norm)."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config)

    def position_bias(self, length: int) -> Tensor:
        """Block 0's learned logit bias [1, heads, L, L] for each (query, key) offset, shared by every block."""
        config = self.config
        buckets = relative_position_buckets(length, config.relative_attention_num_buckets,
                                            config.relative_attention_max_distance, self.shared.weight.device)
        table = self.encoder.block[0].layer[0].SelfAttention.relative_attention_bias
        return table(buckets).permute(2, 0, 1)[None]

    def forward(self, ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Token ids [B, L] to hidden states [B, L, d_model]; attention_mask [B, L] (1 keep, 0 padding) hides keys.

        Without a mask every token attends to every other, padding included, as SD3 and Flux
        encode their padded prompts in ComfyUI.
        """
        x = self.shared(ids)
        bias = self.position_bias(ids.shape[1]).to(x.dtype)
        if attention_mask is not None:
            # The most negative finite logit: padding keys get no weight, and no row is all -inf.
            bias = bias.masked_fill(attention_mask[:, None, None, :] == 0, torch.finfo(x.dtype).min)
        for block in self.encoder.block:
            x = block(x, bias)
        return self.encoder.final_layer_norm(x)


def canonical_state_dict(state_dict: Mapping[str, V]) -> dict[str, V]:
    """A stored T5 encoder (keys without their file prefix) in our layout (values of any kind: tensors, or file keys).

    transformers ties `encoder.embed_tokens` to `shared` and files keep one or both: the
    embedding is kept once, as `shared`.
    """
    canonical = {key: value for key, value in state_dict.items() if key != "encoder.embed_tokens.weight"}
    if "shared.weight" not in canonical and "encoder.embed_tokens.weight" in state_dict:
        canonical["shared.weight"] = state_dict["encoder.embed_tokens.weight"]
    return canonical
