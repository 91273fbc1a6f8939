"""Our CLIP text encoders against transformers' CLIPTextModel(WithProjection) with identical random weights."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch
from torch import Tensor
from transformers import CLIPTextConfig as ReferenceConfig
from transformers import CLIPTextModel as ReferenceModel
from transformers import CLIPTextModelWithProjection as ReferenceModelWithProjection

from diffusers_layout import relative_error
from sigmagraph.nodes.models.clip import (SD1_CLIP_L, SD2_CLIP_H, SDXL_CLIP_G, SDXL_CLIP_L, VIT_BIGG14, VIT_H14,
                                          VIT_L14, CLIPTextConfig, CLIPTextModel, TextEncoderSettings,
                                          canonical_entries, encode, is_openclip)
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.tokenizer import CLIPTokenizer

TOLERANCE = 1e-4

# Reduced width and depth, same structure (64-wide heads, activation, projection or not).
SMALL_L14 = replace(VIT_L14, width=256, layers=4, heads=4, mlp_width=1024)
SMALL_H14 = replace(VIT_H14, width=256, layers=4, heads=4, mlp_width=1024, projection_dim=256)
SMALL_BIGG14 = replace(VIT_BIGG14, width=320, layers=5, heads=5, mlp_width=1280, projection_dim=320)

PROMPT = "a (photo:1.3) of an ((old)) fisherman, " + "masterpiece, best quality, highly detailed, " * 9


def reference_config(config: CLIPTextConfig) -> ReferenceConfig:
    """transformers' config of the same architecture."""
    return ReferenceConfig(vocab_size=config.vocab_size, hidden_size=config.width,
                           intermediate_size=config.mlp_width, num_hidden_layers=config.layers,
                           num_attention_heads=config.heads, max_position_embeddings=config.context_length,
                           hidden_act=config.activation, layer_norm_eps=config.layer_norm_eps,
                           projection_dim=config.projection_dim or config.width, eos_token_id=config.eos_token)


def reference_model(config: CLIPTextConfig, state_dict: dict[str, Tensor]) -> torch.nn.Module:
    """transformers' model loaded (strictly) with our weights; its bare CLIPTextModel has no `text_model.`."""
    if config.projection_dim is None:
        model = ReferenceModel(reference_config(config))
        state_dict = {key.removeprefix("text_model."): value for key, value in state_dict.items()}
    else:
        model = ReferenceModelWithProjection(reference_config(config))
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def reference_final_norm(reference: torch.nn.Module) -> torch.nn.Module:
    return (reference.text_model if hasattr(reference, "text_model") else reference).final_layer_norm


def reference_window(reference: torch.nn.Module, ids: list[int],
                     settings: TextEncoderSettings) -> tuple[Tensor, Tensor]:
    """The reference's output for one window at the settings' layer [77, width] and its (projected) pooled output."""
    out = reference(torch.tensor([ids]), output_hidden_states=True)
    if settings.layer is None:
        hidden = out.last_hidden_state
    else:
        hidden = out.hidden_states[settings.layer]
        hidden = reference_final_norm(reference)(hidden) if settings.norm_hidden else hidden
    return hidden[0], (out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output)[0]


OPENCLIP_BLOCK_NAMES = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                        "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def to_openclip(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The test's own inverse mapping: our (transformers) layout written out as OpenCLIP stores it."""
    out: dict[str, Tensor] = {"logit_scale": torch.tensor(4.6052)}
    fused: dict[str, dict[str, Tensor]] = {}
    for key, value in state_dict.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()  # OpenCLIP computes x @ P
        elif key == "text_model.embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "text_model.embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key.startswith("text_model.final_layer_norm."):
            out["ln_final." + key.rsplit(".", 1)[1]] = value
        else:
            block, module, kind = re.fullmatch(r"text_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key).groups()
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                fused.setdefault(f"transformer.resblocks.{block}.attn.in_proj_{kind}", {})[module[-6]] = value
            else:
                out[f"transformer.resblocks.{block}.{OPENCLIP_BLOCK_NAMES[module]}.{kind}"] = value
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def canonical_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """A stored text encoder (keys without their checkpoint prefix, either layout) read as the loader reads it."""
    openclip = is_openclip(state_dict)
    return dict(pair for key, value in state_dict.items() for pair in canonical_entries(key, value, openclip))


def windows_ids(text: str, pad_token: int) -> Tensor:
    return torch.tensor(CLIPTokenizer(pad_token).tokenize_with_weights(text).ids)


ENCODERS = {
    # name: (config, settings, whether ours loads through the OpenCLIP layout)
    "vit-l14-full": (VIT_L14, SD1_CLIP_L, False),
    "vit-l14-small": (SMALL_L14, SDXL_CLIP_L, False),
    "vit-h14-small": (SMALL_H14, SD2_CLIP_H, True),
    "vit-bigg14-small": (SMALL_BIGG14, SDXL_CLIP_G, True),
}


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest) -> tuple[CLIPTextModel, torch.nn.Module, TextEncoderSettings]:
    """Ours and transformers' with the same seeded weights; H and bigG reach ours through the OpenCLIP layout."""
    config, settings, via_openclip = ENCODERS[request.param]
    source = init_random_(empty_module(CLIPTextModel, config), seed=0)
    reference = reference_model(config, source.state_dict())
    if via_openclip:
        with torch.device("meta"):
            ours = CLIPTextModel(config)
        ours.load_state_dict(canonical_state_dict(to_openclip(source.state_dict())), strict=True, assign=True)
    else:
        ours = source
    return ours.eval(), reference, settings


@pytest.mark.parametrize("pair", list(ENCODERS), indirect=True)
@torch.no_grad()
def test_outputs_match_transformers(pair: tuple[CLIPTextModel, torch.nn.Module, TextEncoderSettings]) -> None:
    ours, reference, settings = pair
    ids = windows_ids(PROMPT, settings.pad_token)
    assert ids.shape == (2, 77)
    expected = reference(ids, output_hidden_states=True)
    out = ours(ids)
    errors = {
        "last": relative_error(out.hidden, expected.last_hidden_state),
        "penultimate": relative_error(ours(ids, -2, norm_hidden=False).hidden, expected.hidden_states[-2]),
        "penultimate+ln": relative_error(ours(ids, -2, norm_hidden=True).hidden,
                                         reference_final_norm(reference)(expected.hidden_states[-2])),
        "last-raw": relative_error(ours(ids, -1, norm_hidden=False).hidden, expected.hidden_states[-1]),
    }
    if ours.text_projection is None:
        errors["pooled"] = relative_error(out.pooled, expected.pooler_output)
        assert out.projected is None
    else:
        # CLIPTextModelWithProjection reports only the projection; the pooled state is in last_hidden_state.
        eos = (ids == 49407).int().argmax(-1)
        errors["pooled"] = relative_error(out.pooled, expected.last_hidden_state[torch.arange(2), eos])
        errors["projected"] = relative_error(out.projected, expected.text_embeds)
    print({name: f"{error:.1e}" for name, error in errors.items()})
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("pair", [name for name in ENCODERS if "small" in name], indirect=True)
@torch.no_grad()
def test_encode_weights_windows_and_pooled_as_comfyui(
        pair: tuple[CLIPTextModel, torch.nn.Module, TextEncoderSettings]) -> None:
    ours, reference, settings = pair
    windows = CLIPTokenizer(settings.pad_token).tokenize_with_weights(PROMPT)
    cond, pooled = encode(ours, windows, settings)

    # ComfyUI's recipe, token by token, on the reference: z = (z - z_empty) * w + z_empty where w != 1.
    empty, _ = reference_window(reference, [49406, 49407] + [windows.pad_token] * 75, settings)
    chunks, pools = [], []
    for ids, weights in zip(windows.ids, windows.weights):
        z, pool = reference_window(reference, list(ids), settings)
        z = z.clone()
        for j, weight in enumerate(weights):
            if weight != 1.0:
                z[j] = (z[j] - empty[j]) * weight + empty[j]
        chunks.append(z)
        pools.append(pool)
    expected_cond, expected_pooled = torch.cat(chunks)[None], pools[0][None]

    assert cond.shape == (1, 154, ours.config.width) and cond.dtype == torch.float32
    assert pooled.shape == (1, ours.config.projection_dim or ours.config.width)
    print(f"cond {relative_error(cond, expected_cond):.1e} pooled {relative_error(pooled, expected_pooled):.1e}")
    assert relative_error(cond, expected_cond) < TOLERANCE
    assert relative_error(pooled, expected_pooled) < TOLERANCE


@torch.no_grad()
def test_unweighted_prompt_is_the_plain_layer_output() -> None:
    model = init_random_(empty_module(CLIPTextModel, replace(SMALL_H14, layers=2)), seed=3).eval()
    windows = CLIPTokenizer(0).tokenize_with_weights("a photo of a cat")
    cond, pooled = encode(model, windows, SD2_CLIP_H)
    out = model(torch.tensor(windows.ids), -2, norm_hidden=True)
    assert torch.equal(cond, out.hidden) and torch.equal(pooled, out.projected)


@torch.no_grad()
def test_layer_beyond_the_depth_is_the_last_layer() -> None:
    # ComfyUI's CLIPSetLastLayer(-24) on a 12-layer CLIP-L: the normed last layer, even for SDXL's raw setting.
    model = init_random_(empty_module(CLIPTextModel, replace(VIT_L14, width=128, heads=2, mlp_width=256)), 1)
    ids = windows_ids("a cat", 49407)
    assert torch.equal(model(ids, -24, norm_hidden=False).hidden, model(ids).hidden)
    assert not torch.equal(model(ids, -12, norm_hidden=False).hidden, model(ids, -12, True).hidden)
    with pytest.raises(ValueError):
        model(ids, 0)


def test_presets_follow_comfyui() -> None:
    assert (SD1_CLIP_L.pad_token, SD1_CLIP_L.layer, SD1_CLIP_L.norm_hidden) == (49407, None, True)
    assert (SD2_CLIP_H.pad_token, SD2_CLIP_H.layer, SD2_CLIP_H.norm_hidden) == (0, -2, True)
    assert (SDXL_CLIP_L.pad_token, SDXL_CLIP_L.layer, SDXL_CLIP_L.norm_hidden) == (49407, -2, False)
    assert (SDXL_CLIP_G.pad_token, SDXL_CLIP_G.layer, SDXL_CLIP_G.norm_hidden) == (0, -2, False)


@pytest.mark.parametrize("config", [VIT_L14, VIT_H14, VIT_BIGG14], ids=["vit-l14", "vit-h14", "vit-bigg14"])
def test_full_size_presets_have_the_released_layout(config: CLIPTextConfig) -> None:
    with torch.device("meta"):
        ours = CLIPTextModel(config).state_dict()
        factory = ReferenceModel if config.projection_dim is None else ReferenceModelWithProjection
        theirs = factory(reference_config(config)).state_dict()
    if config.projection_dim is None:
        theirs = {f"text_model.{key}": value for key, value in theirs.items()}
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_openclip_layout_round_trip_and_checks() -> None:
    model = init_random_(empty_module(CLIPTextModel, replace(SMALL_BIGG14, layers=2)), seed=2)
    state = model.state_dict()
    converted = canonical_state_dict(to_openclip(state))
    assert converted.keys() == state.keys()
    assert all(torch.equal(converted[key], state[key]) for key in state)
    with pytest.raises(ValueError, match="visual.proj"):
        canonical_state_dict({**to_openclip(state), "visual.proj": torch.zeros(1)})


def test_canonical_state_dict_accepts_the_stored_layouts() -> None:
    state = init_random_(empty_module(CLIPTextModel, replace(VIT_L14, width=64, heads=1, mlp_width=128,
                                                             layers=1)), seed=4).state_dict()
    # Early SD1 checkpoints: no `text_model.`, and a position_ids buffer.
    old = {key.removeprefix("text_model."): value for key, value in state.items()}
    old["embeddings.position_ids"] = torch.arange(77)[None]
    assert canonical_state_dict(old).keys() == state.keys()
    assert canonical_state_dict({**state, "text_model.embeddings.position_ids": torch.arange(77)[None]}).keys() \
        == state.keys()

