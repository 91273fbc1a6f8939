"""The model building blocks compat serves under ComfyUI's comfy.ldm and comfy.ops names: attention in ComfyUI's
calling convention against the definition, Flux's matrix RoPE against Sigmagraph's Flux, the layer families."""

from __future__ import annotations

import math

import pytest
import torch


@pytest.fixture
def ldm(config):
    import comfy.ldm.flux.math as flux_math
    import comfy.ldm.lumina.model as lumina
    import comfy.ldm.modules.attention as attention
    import comfy.ops as ops
    return attention, flux_math, lumina, ops


def reference_attention(q, k, v, heads, mask=None):
    """softmax(q kᵀ / √d + mask) v per head, from [B, N, heads * d] tensors, written out."""
    b, n, width = q.shape
    d = width // heads
    split = [t.reshape(b, -1, heads, d).permute(0, 2, 1, 3) for t in (q, k, v)]
    scores = split[0] @ split[1].transpose(-1, -2) / math.sqrt(d)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) @ split[2]).permute(0, 2, 1, 3).reshape(b, n, width)


def test_attention_functions_follow_comfyuis_convention(ldm):
    attention = ldm[0]
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 5, 12, generator=g), torch.randn(2, 7, 12, generator=g), torch.randn(2, 7, 12, generator=g)
    mask = torch.rand(5, 7, generator=g) > 0.3
    mask[:, 0] = True  # every query keeps a key
    for function in (attention.optimized_attention, attention.attention_pytorch, attention.attention_basic,
                     attention.optimized_attention_masked):
        torch.testing.assert_close(function(q, k, v, 3), reference_attention(q, k, v, 3), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(function(q, k, v, 3, mask=mask), reference_attention(q, k, v, 3, mask),
                                   atol=1e-5, rtol=1e-5)
    heads_first = [t.reshape(2, -1, 3, 4).transpose(1, 2) for t in (q, k, v)]
    out = attention.optimized_attention(*heads_first, 3, skip_reshape=True, skip_output_reshape=True)
    assert out.shape == (2, 3, 5, 4)
    torch.testing.assert_close(out.transpose(1, 2).reshape(2, 5, 12), reference_attention(q, k, v, 3),
                               atol=1e-5, rtol=1e-5)


def test_attention_override_in_transformer_options_replaces_the_call(ldm):
    attention = ldm[0]
    calls = []

    def override(function, *args, **kwargs):
        calls.append(function)
        return function(*args, **kwargs) * 2

    q = torch.randn(1, 3, 4)
    out = attention.optimized_attention(q, q, q, 1, transformer_options={"optimized_attention_override": override})
    assert calls == [attention.attention_pytorch]
    torch.testing.assert_close(out, 2 * reference_attention(q, q, q, 1))


def test_flux_matrix_rope_rotates_as_sigmagraphs_flux(ldm):
    from sigmagraph.nodes.models import flux

    flux_math = ldm[1]
    positions = torch.tensor([[0.0, 1.0, 5.0, 17.0]])
    x = torch.randn(1, 2, 4, 16)  # [B, heads, N, head_dim]
    cos, sin = flux.rope(positions[..., None], (16,), 10000.0)
    freqs = flux_math.rope(positions, 16, 10000.0)[:, None]  # [B, 1, N, 8, 2, 2]
    q, k = flux_math.apply_rope(x, x.flip(-1), freqs)
    torch.testing.assert_close(q, flux.apply_rope(x, cos, sin), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(k, flux.apply_rope(x.flip(-1), cos, sin), atol=1e-5, rtol=1e-5)


def test_lumina_feed_forward_is_swiglu_with_the_rounded_width(ldm):
    lumina, ops = ldm[2], ldm[3]
    block = lumina.FeedForward(8, 20, 16, operation_settings={"operations": ops.disable_weight_init})
    assert block.w1.out_features == 32  # 20 rounded up to a multiple of 16
    for layer in (block.w1, block.w2, block.w3):
        torch.nn.init.normal_(layer.weight)
    x = torch.randn(3, 8)
    expected = block.w2.weight @ (torch.nn.functional.silu(block.w1.weight @ x.T) * (block.w3.weight @ x.T))
    torch.testing.assert_close(block(x), expected.T)


def test_manual_cast_layers_compute_in_the_inputs_dtype(ldm):
    ops = ldm[3]
    layer = ops.manual_cast.Linear(4, 3, dtype=torch.float16)
    torch.nn.init.normal_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    x = torch.randn(2, 4, dtype=torch.float64)
    out = layer(x)
    assert out.dtype == torch.float64 and layer.weight.dtype == torch.float16
    torch.testing.assert_close(out, x @ layer.weight.double().T)
    assert ops.pick_operations(torch.float8_e4m3fn, torch.float32) is ops.manual_cast
    assert isinstance(ops.disable_weight_init.conv_nd(2, 3, 4, 1), torch.nn.Conv2d)
