"""T5 prompts as ComfyUI encodes them for SD3 and Flux: the SentencePiece tokenizer, weighted windows, encoding.

The tokenizer. T5 v1.1 reads text with a SentencePiece Unigram vocabulary of 32,000 pieces that
no package on PyPI ships, and nothing may be downloaded at run time. ComfyUI keeps it in its
source tree (comfy/text_encoders/t5_tokenizer/tokenizer.json, Hugging Face's `tokenizers`
format, the same file as google/t5-v1_1-xxl's), so every ComfyUI user has it: the loader reads
`t5_tokenizer/tokenizer.json` from the folder of the model file holding the T5 encoder, and a
missing file is an error naming the path to put it at. The file is read by the `tokenizers`
library (Rust, part of every transformers install), imported only when a T5 is loaded.

Encoding, as ComfyUI's SDTokenizer(has_start_token=False, pad_with_end=False) and SDClipModel:
each weighted segment of the prompt is split at spaces and every word tokenized alone (each
thus starts with SentencePiece's "▁"); the prompt is one window of its tokens, the end token 1,
then padding 0 up to `min_length` (SD3 77, Flux 256) — never cut. The encoder's last hidden
state is the conditioning, with token weights applied relative to the empty prompt as for CLIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .clip import weigh_tokens
from .t5 import T5EncoderModel
from .tokenizer import TokenWindows, parse_weights

END = 1  # </s>
PAD = 0  # <pad>
TOKENIZER_FOLDER = "t5_tokenizer"
TOKENIZER_FILE = "tokenizer.json"


class TokenizerMissing(FileNotFoundError):
    """No T5 tokenizer file where the loader looks for it."""


@dataclass(frozen=True)
class T5Settings:
    """How a family reads T5: the padded length of a prompt's one window (SD3 77, Flux 256)."""

    min_length: int


def tokenizer_path(model_file: Path) -> Path:
    """Where the tokenizer of the T5 encoder stored in `model_file` must be: t5_tokenizer/tokenizer.json beside it."""
    return Path(model_file).parent / TOKENIZER_FOLDER / TOKENIZER_FILE


class T5Tokenizer:
    """T5's SentencePiece tokenizer producing ComfyUI's weighted, padded single window."""

    def __init__(self, path: Path, min_length: int):
        path = Path(path)
        if not path.is_file():
            raise TokenizerMissing(
                f"the T5 text encoder needs its tokenizer at {path}: copy ComfyUI's "
                f"comfy/text_encoders/{TOKENIZER_FOLDER}/{TOKENIZER_FILE} (or google/t5-v1_1-xxl's {TOKENIZER_FILE}) "
                f"into a folder '{TOKENIZER_FOLDER}' beside the model file")
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ImportError("reading T5 prompts needs the 'tokenizers' package (pip install tokenizers)") from None
        self._tokenizer: Any = Tokenizer.from_file(str(path))
        self.min_length = min_length
        self.pad_token = PAD

    def encode(self, text: str) -> list[int]:
        """Token ids of a text without the end token, word by word as ComfyUI tokenizes."""
        words = [word for word in text.replace("\n", " ").split(" ") if word]
        return [token for word in words for token in self._tokenizer.encode(word, add_special_tokens=False).ids]

    def tokenize_with_weights(self, text: str) -> TokenWindows:
        """The prompt as one window: tokens with their weights, END, then PAD up to min_length."""
        pairs = [(token, weight) for segment, weight in parse_weights(text) for token in self.encode(segment)]
        pairs.append((END, 1.0))
        pairs += [(PAD, 1.0)] * (self.min_length - len(pairs))
        return TokenWindows(ids=(tuple(token for token, _ in pairs),), weights=(tuple(weight for _, weight in pairs),),
                            pad_token=PAD)


@torch.no_grad()
def encode(model: T5EncoderModel, windows: TokenWindows) -> Tensor:
    """The conditioning [1, tokens, d_model] (float32) of a tokenized prompt; weights relative to the empty prompt."""
    device = model.shared.weight.device
    ids = torch.tensor(windows.ids, dtype=torch.long, device=device)
    weights = torch.tensor(windows.weights, dtype=torch.float32, device=device)[..., None]
    weighted = bool((weights != 1.0).any())
    if weighted:
        empty = [END] + [PAD] * (ids.shape[1] - 1)
        ids = torch.cat([ids, torch.tensor([empty], dtype=torch.long, device=device)])
    hidden = model(ids).float()
    cond = hidden[:len(windows.ids)]
    if weighted:
        cond = weigh_tokens(cond, weights, hidden[-1])
    return cond.reshape(1, -1, cond.shape[-1])
