"""Our CLIP tokenizer against transformers' CLIPTokenizer, and ComfyUI's weighting syntax by hand."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import CLIPTokenizer as ReferenceTokenizer

from sigmagraph.nodes.models.clip import CLIPTextConfig, CLIPTextModel, TextEncoderSettings, encode
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.tokenizer import (END_TOKEN, START_TOKEN, CLIPTokenizer, clean_text, parse_weights,
                                               pre_tokenize)

VOCAB_GZ = importlib.resources.files("sigmagraph.nodes.models") / "tokenizer_data" / "bpe_simple_vocab_16e6.txt.gz"


def write_vocabulary_files(directory: Path) -> None:
    """vocab.json and merges.txt as OpenAI CLIP derives them from the .gz (first 48894 merges)."""
    merges = gzip.decompress(VOCAB_GZ.read_bytes()).decode("utf-8").split("\n")[1:48895]
    # GPT-2's byte alphabet: printable non-space bytes as themselves, the rest as chr(256 + n).
    printable = [b for b in range(256) if chr(b).isprintable() and b != 0x20]
    others = [b for b in range(256) if b not in printable]
    alphabet = [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]
    tokens = alphabet + [c + "</w>" for c in alphabet] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ReferenceTokenizer:
    directory = tmp_path_factory.mktemp("clip_vocab")
    write_vocabulary_files(directory)
    return ReferenceTokenizer.from_pretrained(str(directory))


@pytest.fixture(scope="module")
def tokenizer() -> CLIPTokenizer:
    return CLIPTokenizer()


def reference_ids(reference: ReferenceTokenizer, text: str) -> list[int]:
    """The reference's ids without its BOS/EOS."""
    return reference(text)["input_ids"][1:-1]


AWKWARD_PROMPTS = [
    "a photo of a cat",
    "A Photo Of A CAT, Highly DETAILED",
    "café naïve résumé Ångström façade",
    "e\u0301cole, decomposed accents",  # NFC composes e + combining acute
    "🐱🐶 emoji 👨‍👩‍👧 zwj family 🏳️‍🌈 flag",
    "日本語のテキスト 中文提示 한국어 一二三",
    "Привет мир, Ελληνικά ΟΔΥΣΣΕΥΣ",
    "it's they're we've I'm you'll he'd don't CAN'T",
    "2024 3.14 1,000,000 ½ ² ٣ Ⅻ",
    "hello,world!!! ...??? --- ;;; @#$%^*",
    "'''quoted''' \"double\" `tick` «guillemets»",
    "multiple    spaces\t\ttabs\nnew\r\nlines\u00a0nbsp\u3000ideographic",
    "  leading and trailing  ",
    "İstanbul straße ﬁnal",
    "zero\u200bwidth control\x1cseparator",
    "masterpiece, best quality, ultra-detailed, 8k, (bokeh) [film grain] {braces} <angle>",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "a" * 120,
    "",
]


@pytest.mark.parametrize("text", AWKWARD_PROMPTS)
def test_ids_match_transformers(tokenizer: CLIPTokenizer, reference: ReferenceTokenizer, text: str) -> None:
    assert tokenizer.encode(text) == reference_ids(reference, text)


def test_known_ids(tokenizer: CLIPTokenizer) -> None:
    # OpenAI CLIP's published ids for this prompt.
    assert tokenizer.encode("a photo of a cat") == [320, 1125, 539, 320, 2368]


LONG_PROMPTS = [
    "masterpiece, best quality, a very detailed portrait of an old fisherman, " * 12,
    "one two three four five six seven eight nine ten " * 30,
    "🐱 " * 100,
]


@pytest.mark.parametrize("text", LONG_PROMPTS)
def test_long_prompts_fill_windows_of_75(tokenizer: CLIPTokenizer, reference: ReferenceTokenizer, text: str) -> None:
    ids = reference_ids(reference, text)
    assert len(ids) > 75
    windows = tokenizer.tokenize_with_weights(text)
    chunks = [ids[i:i + 75] for i in range(0, len(ids), 75)]
    assert len(windows.ids) == len(chunks)
    for window, chunk in zip(windows.ids, chunks):
        assert window == tuple([START_TOKEN, *chunk, END_TOKEN] + [END_TOKEN] * (75 - len(chunk)))
    assert all(w == 1.0 for window in windows.weights for w in window)


def test_window_boundaries(tokenizer: CLIPTokenizer) -> None:
    # 75 tokens fit in one window; the 76th opens a second.
    assert len(tokenizer.tokenize_with_weights("cat " * 75).ids) == 1
    assert len(tokenizer.tokenize_with_weights("cat " * 76).ids) == 2
    empty = tokenizer.tokenize_with_weights("")
    assert empty.ids == ((START_TOKEN, END_TOKEN) + (END_TOKEN,) * 75,)
    assert empty.weights == ((1.0,) * 77,)


def test_pad_token_is_a_parameter(reference: ReferenceTokenizer) -> None:
    windows = CLIPTokenizer(pad_token=0).tokenize_with_weights("a photo of a cat")
    assert windows.ids == ((START_TOKEN, *reference_ids(reference, "a photo of a cat"), END_TOKEN) + (0,) * 70,)
    assert windows.pad_token == 0


def test_short_weighted_segment_moves_whole_to_the_next_window(tokenizer: CLIPTokenizer,
                                                               reference: ReferenceTokenizer) -> None:
    # 72 + 5 tokens exceed 75: the 5-token segment (shorter than 8) is not cut.
    windows = tokenizer.tokenize_with_weights("cat " * 72 + "(one two three four five:1.2)")
    cat = reference_ids(reference, "cat")[0]
    five = reference_ids(reference, "one two three four five")
    assert windows.ids == ((START_TOKEN, *[cat] * 72, END_TOKEN, END_TOKEN, END_TOKEN, END_TOKEN),
                           (START_TOKEN, *five, END_TOKEN) + (END_TOKEN,) * 70)
    assert windows.weights == ((1.0,) * 77, (1.0,) + (1.2,) * 5 + (1.0,) * 71)


def test_long_weighted_segment_is_cut_at_the_boundary(tokenizer: CLIPTokenizer, reference: ReferenceTokenizer) -> None:
    windows = tokenizer.tokenize_with_weights("dog " * 70 + "(" + "cat " * 10 + ":0.5)")
    dog, cat = reference_ids(reference, "dog cat")
    assert windows.ids == ((START_TOKEN, *[dog] * 70, *[cat] * 5, END_TOKEN),
                           (START_TOKEN, *[cat] * 5, END_TOKEN) + (END_TOKEN,) * 70)
    assert windows.weights == ((1.0,) * 71 + (0.5,) * 5 + (1.0,),
                               (1.0,) + (0.5,) * 5 + (1.0,) * 71)


def test_weights_follow_the_tokens(tokenizer: CLIPTokenizer, reference: ReferenceTokenizer) -> None:
    windows = tokenizer.tokenize_with_weights("a ((red:1.5) cat) [on] \\(mat\\)")
    expected = [(t, 1.0) for t in reference_ids(reference, "a")]
    expected += [(t, 1.5) for t in reference_ids(reference, "red")]
    expected += [(t, 1.1) for t in reference_ids(reference, "cat")]
    expected += [(t, 1.0) for t in reference_ids(reference, "[on] (mat)")]
    count = len(expected)
    assert windows.ids[0][1:count + 1] == tuple(t for t, _ in expected)
    assert windows.weights[0][1:count + 1] == pytest.approx([w for _, w in expected])


def test_embeddings_are_dropped_like_comfyui_without_the_file(tokenizer: CLIPTokenizer,
                                                              reference: ReferenceTokenizer,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        windows = tokenizer.tokenize_with_weights("a photo embedding:my_style, of a cat")
    # The name goes, its trailing comma stays.
    expected = reference_ids(reference, "a photo") + reference_ids(reference, ", of a cat")
    assert windows.ids[0][1:len(expected) + 2] == (*expected, END_TOKEN)
    assert "embedding:my_style" in caplog.text


# (prompt, ComfyUI's segments and weights), worked out by hand from its parser's rules.
WEIGHT_CASES = [
    ("a cat", [("a cat", 1.0)]),
    ("(a cat)", [("a cat", 1.1)]),
    ("((a cat))", [("a cat", 1.1 * 1.1)]),
    ("(((a cat)))", [("a cat", 1.1 * 1.1 * 1.1)]),
    ("(a cat:1.5)", [("a cat", 1.5)]),
    ("((a cat:1.5))", [("a cat", 1.5)]),  # an explicit weight replaces the inherited one
    ("((a cat):1.5)", [("a cat", 1.5 * 1.1)]),
    ("(a (b:0.5) c:2)", [("a ", 2.0), ("b", 0.5), (" c", 2.0)]),
    ("a (b:0.5) c", [("a ", 1.0), ("b", 0.5), (" c", 1.0)]),
    ("x (y (z:2) w) v", [("x ", 1.0), ("y ", 1.1), ("z", 2.0), (" w", 1.1), (" v", 1.0)]),
    ("(a: 2 )", [("a", 2.0)]),
    ("(a:1e-1)", [("a", 0.1)]),
    ("(a:-1)", [("a", -1.0)]),
    ("(a:1.2:1.3)", [("a:1.2", 1.3)]),  # the last colon
    ("(a:b)", [("a:b", 1.1)]),  # not a number: part of the text
    ("(:1.2)", [(":1.2", 1.1)]),  # a colon at the start is text
    ("\\(a\\)", [("(a)", 1.0)]),
    ("(a\\)b)", [("a)b", 1.1)]),
    ("(a:1.2\\))", [("a:1.2)", 1.1)]),
    ("[a] {b}", [("[a] {b}", 1.0)]),  # brackets are not ComfyUI syntax
    ("a () b", [("a ", 1.0), (" b", 1.0)]),
    ("(a", [("(a", 1.0)]),  # unclosed: literal
    ("((a)", [("(a", 1.1)]),
    ("a)", [("a)", 1.0)]),
    ("a) (b)", [("a) (b)", 1.0)]),  # after a stray ")" the next group does not open
    ("(a)(b:0.9)", [("a", 1.1), ("b", 0.9)]),
    ("", []),
]


@pytest.mark.parametrize("text, expected", WEIGHT_CASES)
def test_parse_weights(text: str, expected: list[tuple[str, float]]) -> None:
    parsed = parse_weights(text)
    assert [segment for segment, _ in parsed] == [segment for segment, _ in expected]
    assert [weight for _, weight in parsed] == pytest.approx([weight for _, weight in expected])


@pytest.mark.parametrize("text, expected", [
    ("Tom &amp; Jerry", "tom & jerry"),
    ("&amp;lt;b&amp;gt;", "<b>"),  # unescaped twice, as CLIP does
    ("  A\t\tB\n C  ", "a b c"),
    ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),  # no word-final sigma, as transformers lowercases
])
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("it's", ["it", "'s"]),
    ("2024", ["2", "0", "2", "4"]),
    ("一二三", ["一二三"]),  # CJK numerals are letters (Lo), not \p{N}
    ("½Ⅻ", ["½", "Ⅻ"]),  # No and Nl are numbers, one at a time
    ("hi!!!...", ["hi", "!!!..."]),
    ("a<|endoftext|>b", ["a", "<|endoftext|>", "b"]),
    ("x''s", ["x", "''", "s"]),
])
def test_pre_tokenize(text: str, expected: list[str]) -> None:
    assert pre_tokenize(text) == expected


def test_min_length_pads_one_window_only_that_far_and_keeps_the_states_of_a_full_window():
    short, full = CLIPTokenizer(END_TOKEN, min_length=24), CLIPTokenizer(END_TOKEN)
    prompt = "a (large:1.2) red star left of a small blue circle"
    windows, reference = short.tokenize_with_weights(prompt), full.tokenize_with_weights(prompt)
    assert len(windows.ids) == 1 and len(windows.ids[0]) == 24
    assert windows.ids[0] == reference.ids[0][:24] and windows.weights[0] == reference.weights[0][:24]
    # CLIP attends causally: the first 24 states of the full window are the short window's, weights included.
    model = init_random_(empty_module(CLIPTextModel, CLIPTextConfig(width=64, layers=2, heads=1, mlp_width=128)), 0)
    settings = TextEncoderSettings(pad_token=END_TOKEN, layer=None, norm_hidden=True)
    (cond, pooled), (cond_full, pooled_full) = encode(model, windows, settings), encode(model, reference, settings)
    assert cond.shape == (1, 24, 64)
    assert torch.allclose(cond, cond_full[:, :24], atol=1e-5) and torch.allclose(pooled, pooled_full, atol=1e-5)
    # A prompt longer than min_length grows its window; one longer than a window keeps full windows.
    assert len(short.tokenize_with_weights(" ".join(["red"] * 30)).ids[0]) == 32
    assert [len(w) for w in short.tokenize_with_weights(" ".join(["red"] * 100)).ids] == [77, 77]
