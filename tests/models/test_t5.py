"""Our T5 v1.1 encoder against transformers' T5EncoderModel with identical random weights (fp32, CPU).

Error metric: max |ours - transformers| / max |transformers| over the last hidden state.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import T5Config as ReferenceConfig
from transformers import T5EncoderModel as ReferenceModel
from transformers.models.t5.modeling_t5 import T5Attention

from diffusers_layout import relative_error
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.t5 import (T5_XXL, T5Config, T5EncoderModel, canonical_state_dict,
                                        relative_position_buckets)

TOLERANCE = 1e-5
# Small models on shared cores run many times faster on one thread (see conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

# T5 v1.1 XXL's structure (gated GELU, 32 buckets up to distance 128, real vocabulary) at a small width.
SMALL_T5 = replace(T5_XXL, d_model=128, d_kv=32, d_ff=320, num_layers=3, num_heads=4)


def reference_config(config: T5Config) -> ReferenceConfig:
    """transformers' config of the same architecture (google/t5-v1_1-xxl's when given T5_XXL)."""
    return ReferenceConfig(vocab_size=config.vocab_size, d_model=config.d_model, d_kv=config.d_kv, d_ff=config.d_ff,
                           num_layers=config.num_layers, num_heads=config.num_heads,
                           relative_attention_num_buckets=config.relative_attention_num_buckets,
                           relative_attention_max_distance=config.relative_attention_max_distance,
                           layer_norm_epsilon=config.layer_norm_eps, feed_forward_proj="gated-gelu",
                           dropout_rate=0.0, is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False)


@pytest.fixture(scope="module")
def pair() -> tuple[T5EncoderModel, ReferenceModel]:
    """transformers' encoder with seeded random weights, and ours loaded (strictly) from its state dict."""
    reference = init_random_(ReferenceModel(reference_config(SMALL_T5)), seed=0).eval()
    ours = empty_module(T5EncoderModel, SMALL_T5)
    ours.load_state_dict(canonical_state_dict(reference.state_dict()), strict=True)
    return ours.eval(), reference


@torch.no_grad()
def test_outputs_match_transformers(pair: tuple[T5EncoderModel, ReferenceModel]) -> None:
    # 256 tokens, Flux's T5 length: offsets beyond max_distance (128) reach the last buckets.
    ours, reference = pair
    ids = torch.randint(0, SMALL_T5.vocab_size, (2, 256), generator=torch.Generator().manual_seed(1))
    out = ours(ids)
    assert out.shape == (2, 256, SMALL_T5.d_model)
    error = relative_error(out, reference(ids).last_hidden_state)
    print(f"relative error {error:.1e}")
    assert error < TOLERANCE


@torch.no_grad()
def test_attention_mask_matches_transformers(pair: tuple[T5EncoderModel, ReferenceModel]) -> None:
    ours, reference = pair
    ids = torch.randint(0, SMALL_T5.vocab_size, (2, 77), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 77, dtype=torch.long)
    mask[1, 20:] = 0
    out = ours(ids, mask)
    assert not torch.equal(out[1], ours(ids)[1])
    error = relative_error(out, reference(ids, attention_mask=mask).last_hidden_state)
    print(f"relative error {error:.1e}")
    assert error < TOLERANCE


def test_relative_position_buckets_follow_t5() -> None:
    # T5's rule (Mesh TensorFlow), offset = key - query: 16 buckets per direction, distances below
    # 8 exact, then floor(8 + ln(d / 8) / ln(128 / 8) * 8) capped at 15; keys after the query add 16.
    buckets = relative_position_buckets(300, 32, 128, torch.device("cpu"))
    assert buckets[0, 0] == 0
    assert buckets[10, 3] == 7 and buckets[3, 10] == 16 + 7  # offsets -7 and +7: exact
    assert buckets[8, 0] == 8 and buckets[0, 8] == 16 + 8  # distance 8: the first logarithmic bucket
    assert buckets[0, 16] == 16 + 10  # 8 + ln 2 / ln 16 * 8 = 10
    assert buckets[100, 50] == 13  # 8 + ln 6.25 / ln 16 * 8 = 13.29
    assert buckets[0, 127] == 16 + 15 and buckets[0, 299] == 16 + 15 and buckets[299, 0] == 15
    offsets = torch.arange(300)[None, :] - torch.arange(300)[:, None]
    expected = T5Attention._relative_position_bucket(offsets, bidirectional=True, num_buckets=32, max_distance=128)
    assert torch.equal(buckets, expected)


def test_canonical_state_dict_keeps_the_tied_embedding_once() -> None:
    embedding = torch.randn(4, 2)
    assert canonical_state_dict({"shared.weight": embedding, "encoder.embed_tokens.weight": embedding}).keys() \
        == {"shared.weight"}
    only_encoder = canonical_state_dict({"encoder.embed_tokens.weight": embedding})
    assert only_encoder.keys() == {"shared.weight"} and only_encoder["shared.weight"] is embedding


def test_preset_has_the_released_layout() -> None:
    # google/t5-v1_1-xxl: d_model 4096, d_ff 10240, d_kv 64, 64 heads, 24 layers, vocabulary 32128.
    assert (T5_XXL.d_model, T5_XXL.d_ff, T5_XXL.d_kv, T5_XXL.num_heads, T5_XXL.num_layers, T5_XXL.vocab_size) == (
        4096, 10240, 64, 64, 24, 32128)
    with torch.device("meta"):
        ours = T5EncoderModel(T5_XXL).state_dict()
        theirs = canonical_state_dict(ReferenceModel(reference_config(T5_XXL)).state_dict())
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
