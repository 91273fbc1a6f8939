"""CLIP's byte-level BPE tokenizer and ComfyUI's prompt-weighting syntax, cut into 77-token windows.

The pipeline follows OpenAI CLIP's `simple_tokenizer.py` (the same vocabulary every Stable
Diffusion text encoder uses) and ComfyUI's `SDTokenizer` for weights and windows:

    text --parse_weights--> (segment, weight) pairs --clean_text, pre_tokenize, BPE--> token groups
         --windows--> [BOS, 75 tokens, EOS, padding] x k, with one weight per token

Text cleanup differs from CLIP's: CLIP runs `ftfy.fix_text` (repairs mojibake, curly quotes,
odd widths), which is not a dependency here. We do the parts that matter for ordinary prompts:
NFC normalization (ftfy's default), HTML unescaping twice (as CLIP does), whitespace collapsing
and lowercasing. transformers' `CLIPTokenizer`, which ComfyUI calls, does NFC + whitespace +
lowercase but no HTML unescaping: prompts with entities like `&amp;` tokenize as in CLIP, not as
in ComfyUI. Where CLIP and transformers otherwise disagree (word-final sigma, the separators
\x1c-\x1f) we follow transformers, so all other prompts give ComfyUI's ids (with transformers 5;
ComfyUI on transformers 4 without ftfy splits CJK ideographs apart, which neither CLIP nor we do).
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.resources
import logging
import re
import unicodedata
from dataclasses import dataclass

START_TOKEN = 49406  # <|startoftext|>
END_TOKEN = 49407  # <|endoftext|>
WINDOW_LENGTH = 77  # CLIP's context: BOS, 75 prompt tokens, EOS
MERGE_COUNT = 49152 - 256 - 2  # CLIP keeps only the first 48894 merges of the 16e6 file
EMPHASIS = 1.1  # the factor of one pair of parentheses
MIN_SPLIT_GROUP = 8  # ComfyUI's `max_word_length`: shorter segments are never cut across windows
EMBEDDING_PREFIX = "embedding:"

_SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")
# Stand-ins for the escaped parentheses `\(` and `\)` while the weight parser runs.
_ESCAPED_OPEN, _ESCAPED_CLOSE = "\0\2", "\0\1"

# Unicode White_Space, as transformers' tokenizer (Rust regex) and thus ComfyUI see it; Python's
# `\s` and str.isspace() also count the separators \x1c-\x1f.
_WHITESPACE = re.compile(r"[^\S\x1c-\x1f]+")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenWindows:
    """A prompt as k windows of 77 token ids, one weight per token, and the id used as padding."""

    ids: tuple[tuple[int, ...], ...]
    weights: tuple[tuple[float, ...], ...]
    pad_token: int


def clean_text(text: str) -> str:
    """CLIP's text cleanup without ftfy: NFC, HTML entities (twice), collapsed whitespace, lowercase."""
    text = html.unescape(html.unescape(unicodedata.normalize("NFC", text)))
    # Lowercasing character by character skips Python's word-final sigma rule, as transformers does.
    return "".join(char.lower() for char in _WHITESPACE.sub(" ", text).strip(" "))


@functools.lru_cache(maxsize=4096)
def _char_class(char: str) -> str:
    """The class of a character in CLIP's pre-tokenizer regex: letter, number, space or other."""
    if _WHITESPACE.match(char):
        return " "
    # isalpha() is exactly \p{L}; isnumeric() is not \p{N} (it includes CJK numerals like 一).
    if char.isalpha():
        return "L"
    return "N" if unicodedata.category(char)[0] == "N" else "P"


def pre_tokenize(text: str) -> list[str]:
    """Splits cleaned text like CLIP's regex: specials, contractions, letter runs, single digits, other runs.

    The regex is `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`;
    Python's `re` has no \\p classes, so this scanner tries the alternatives in the same order.
    """
    pieces = []
    i = 0
    while i < len(text):
        literal = next((s for s in _SPECIAL_TOKENS + _CONTRACTIONS if text.startswith(s, i)), None)
        if literal is not None:
            pieces.append(literal)
            i += len(literal)
            continue
        kind = _char_class(text[i])
        end = i + 1
        if kind in "LP":
            while end < len(text) and _char_class(text[end]) == kind:
                end += 1
        if kind != " ":
            pieces.append(text[i:end])
        i = end
    return pieces


def _top_level_groups(text: str) -> list[str]:
    """Cuts text into plain runs and top-level `( ... )` groups, counting nesting like ComfyUI.

    An unmatched `)` drives the depth negative, and the next `(` only brings it back to zero
    without opening a group: ComfyUI's parser behaves so, and prompts must weigh the same.
    """
    pieces = []
    depth = start = 0
    for i, char in enumerate(text):
        if char == "(":
            if depth == 0:
                if i > start:
                    pieces.append(text[start:i])
                start = i
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(text[start:i + 1])
                start = i + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _weigh(text: str, weight: float) -> list[tuple[str, float]]:
    """Assigns weights to the runs of text inside a group of the given weight (recursively)."""
    out = []
    for piece in _top_level_groups(text):
        if len(piece) < 2 or piece[0] != "(" or piece[-1] != ")":
            out.append((piece, weight))
            continue
        inner, inner_weight = piece[1:-1], weight * EMPHASIS
        colon = inner.rfind(":")
        if colon > 0:
            # An explicit weight replaces the inherited one (ComfyUI), it does not multiply it (A1111).
            try:
                inner_weight = float(inner[colon + 1:])
                inner = inner[:colon]
            except ValueError:
                pass
        out += _weigh(inner, inner_weight)
    return out


def parse_weights(text: str) -> list[tuple[str, float]]:
    """Splits a prompt into (text, weight) segments with ComfyUI's syntax.

    `(text)` multiplies the weight by 1.1 and nests; `(text:1.3)` sets it to 1.3; `\\(` and `\\)`
    are literal parentheses. Square brackets are plain text, as in ComfyUI: A1111's `[text]`
    de-emphasis is not ComfyUI syntax, and honouring it would change ComfyUI prompts.
    """
    escaped = text.replace("\\)", _ESCAPED_CLOSE).replace("\\(", _ESCAPED_OPEN)
    return [(segment.replace(_ESCAPED_CLOSE, ")").replace(_ESCAPED_OPEN, "("), weight)
            for segment, weight in _weigh(escaped, 1.0)]


def _without_embeddings(segment: str) -> list[str]:
    """The parts of a segment to tokenize, with `embedding:name` references removed.

    Textual-inversion embeddings are not supported. ComfyUI cuts a segment before each
    ` embedding:` and drops the name when it finds no such file; we do the same, so window
    boundaries and tokens match ComfyUI's when the embedding is missing.
    """
    parts = re.split(f" {EMBEDDING_PREFIX}|\n{EMBEDDING_PREFIX}", segment)
    kept = []
    for part in [parts[0], *(EMBEDDING_PREFIX + p for p in parts[1:])]:
        if not part.startswith(EMBEDDING_PREFIX):
            kept.append(part)
            continue
        words = part[len(EMBEDDING_PREFIX):].split()
        if words:
            name = words[0]
            log.warning("textual-inversion embeddings are not supported: ignoring %s%s", EMBEDDING_PREFIX, name)
            # ComfyUI retries without surrounding commas and keeps name[len(stripped):]: the commas
            # of "name," (the usual case), an odd tail for ",name"; kept alike for identical tokens.
            stripped = name.strip(",")
            tail = name[len(stripped):] if len(stripped) < len(name) else ""
            kept.append(" ".join([tail, *words[1:]]))
    return [part for part in kept if part.strip()]


def _byte_to_char() -> dict[int, str]:
    """GPT-2's reversible map of bytes to printable characters, so merges never see spaces or controls."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {b: chr(b) for b in printable}
    # Dict order is the vocabulary order: printable bytes first, then the others shifted past 255.
    mapping.update({b: chr(256 + n) for n, b in enumerate(b for b in range(256) if b not in mapping)})
    return mapping


_BYTE_TO_CHAR = _byte_to_char()


@functools.cache
def _load_vocabulary() -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """CLIP's vocabulary (token -> id) and merge ranks, read from the packaged BPE file."""
    resource = importlib.resources.files(__package__) / "tokenizer_data" / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(resource.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:MERGE_COUNT + 1]]
    alphabet = list(_BYTE_TO_CHAR.values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges] + list(_SPECIAL_TOKENS)
    return {token: i for i, token in enumerate(tokens)}, {pair: rank for rank, pair in enumerate(merges)}


@functools.lru_cache(maxsize=65536)
def _bpe(word: str) -> tuple[str, ...]:
    """Merges the characters of one pre-token, lowest-ranked pair first, the last one marked `</w>`."""
    ranks = _load_vocabulary()[1]
    parts = [*word[:-1], word[-1] + "</w>"]
    while len(parts) > 1:
        best = min(zip(parts, parts[1:]), key=lambda pair: ranks.get(pair, MERGE_COUNT))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                merged.append(parts[i] + parts[i + 1])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return tuple(parts)


class CLIPTokenizer:
    """CLIP's BPE tokenizer producing ComfyUI's weighted 77-token windows.

    `pad_token` fills each window after its EOS: END_TOKEN for OpenAI CLIP-L (SD1, SDXL's L),
    0 for the OpenCLIP encoders (SD2's H, SDXL's G). With `min_length`, a prompt that fits one
    window is padded only to that many tokens (ComfyUI's `pad_to_max_length=False, min_length=`):
    CLIP's causal attention makes those tokens' states the same as in a full window, and a
    network reading the tokens attends to fewer pads. Longer prompts keep full windows.
    """

    def __init__(self, pad_token: int = END_TOKEN, min_length: int | None = None) -> None:
        self.pad_token = pad_token
        self.min_length = min_length
        self.vocab = _load_vocabulary()[0]

    def encode(self, text: str) -> list[int]:
        """Token ids of a text, without BOS/EOS."""
        ids = []
        for piece in pre_tokenize(clean_text(text)):
            if piece in _SPECIAL_TOKENS:
                ids.append(self.vocab[piece])
                continue
            word = "".join(_BYTE_TO_CHAR[b] for b in piece.encode("utf-8"))
            ids += [self.vocab[token] for token in _bpe(word)]
        return ids

    def tokenize_with_weights(self, text: str) -> TokenWindows:
        """Tokenizes a weighted prompt into 77-token windows, as ComfyUI's `SDTokenizer` does.

        Each weighted segment is tokenized on its own. A segment shorter than 8 tokens that
        does not fit in the current window moves whole to the next one; longer segments are cut
        at the window boundary. Every window is BOS, up to 75 tokens, EOS, then padding.
        """
        groups = [[(token, weight) for token in self.encode(part)]
                  for segment, weight in parse_weights(text) for part in _without_embeddings(segment)]
        capacity = WINDOW_LENGTH - 2
        contents: list[list[tuple[int, float]]] = [[]]
        for group in groups:
            splittable = len(group) >= MIN_SPLIT_GROUP
            while group:
                room = capacity - len(contents[-1])
                if len(group) <= room:
                    contents[-1] += group
                    break
                if splittable:
                    contents[-1] += group[:room]
                    group = group[room:]
                contents.append([])
        windows = [[(START_TOKEN, 1.0), *content, (END_TOKEN, 1.0)] for content in contents]
        length = WINDOW_LENGTH if self.min_length is None or len(windows) > 1 else max(self.min_length, len(windows[0]))
        windows = [window + [(self.pad_token, 1.0)] * (length - len(window)) for window in windows]
        return TokenWindows(ids=tuple(tuple(token for token, _ in window) for window in windows),
                            weights=tuple(tuple(weight for _, weight in window) for window in windows),
                            pad_token=self.pad_token)
