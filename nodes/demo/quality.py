"""How well a picture follows its caption, measured from its pixels with the caption's expectation (scenes.py).

Two measures per (picture, caption):

- checks: the promises kept — the background region's dominant palette colour is the caption's
  background, and each placed object's core region's dominant colour is the object's colour.
  A picture of random colours keeps each with a chance of about 1/8.
- colour_accuracy: the share of pixels in those regions whose nearest palette colour is the
  expected one — continuous, so it also ranks pictures that keep the same promises (a blurred
  or washed-out picture loses pixels before it loses a check).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .scenes import COLOURS, dominant_colour, expectation, palette_names


@dataclass(frozen=True)
class CaptionScore:
    """Promises kept out of promises made, and the share of region pixels of the right colour."""

    kept: int
    made: int
    colour_accuracy: float


def caption_score(image: np.ndarray, caption: str) -> CaptionScore:
    """Scores one uint8 RGB picture [64, 64, 3] against the caption it was generated from."""
    expected = expectation(caption)
    names = palette_names(image)
    regions = [(expected.background, expected.background_mask)]
    regions += [(colour, core) for colour, core in expected.objects if core is not None]
    kept = sum(dominant_colour(image, mask) == colour for colour, mask in regions)
    accuracy = float(np.mean([(names[mask] == COLOURS.index(colour)).mean() for colour, mask in regions]))
    return CaptionScore(kept, len(regions), accuracy)


@dataclass(frozen=True)
class QualityReport:
    """Scores summed over many pictures."""

    kept: int
    made: int
    colour_accuracy: float  # mean over pictures

    @property
    def kept_share(self) -> float:
        return self.kept / self.made

    def __str__(self) -> str:
        return f"{self.kept}/{self.made} promises kept ({self.kept_share:.0%}), colour accuracy {self.colour_accuracy:.3f}"


def quality(scored: Iterable[tuple[np.ndarray, str]]) -> QualityReport:
    """The report over (picture, caption) pairs."""
    scores = [caption_score(image, caption) for image, caption in scored]
    return QualityReport(sum(s.kept for s in scores), sum(s.made for s in scores),
                         float(np.mean([s.colour_accuracy for s in scores])))


# Captions the quality checks use: every colour as object and as background, every shape, both
# sizes, every placement phrase and relation; all with a position, so every object has a region.
EVALUATION_CAPTIONS = (
    "a large red circle in the center on a yellow background",
    "a small blue square at the left on a white background",
    "a large green triangle at the top on a purple background",
    "a large white star at the bottom on a blue background",
    "a small yellow diamond at the right on a black background",
    "a large purple cross in the center on an orange background",
    "a large orange circle at the left on a green background",
    "a large black square at the right on a red background",
    "a large red star left of a large blue circle on a white background",
    "a large yellow square above a large green diamond on a black background",
    "a large white triangle right of a large purple circle on an orange background",
    "a large blue cross below a large orange square on a yellow background",
)
