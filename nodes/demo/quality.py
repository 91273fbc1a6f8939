"""How well a picture follows its caption, measured from its pixels with the caption's expectation (scenes.py).

Three measures per (picture, caption):

- checks: the promises kept — the background region's dominant palette colour is the caption's
  background, and each placed object's core region's dominant colour is the object's colour.
  A picture of random colours keeps each with a chance of about 1/8.
- colour_accuracy: the share of pixels in those regions whose nearest palette colour is the
  expected one — continuous, so it also ranks pictures that keep the same promises (a blurred
  or washed-out picture loses pixels before it loses a check).
- shapes: for each placed object, which of the six shapes it drew. The pixels of the object's
  colour near its place (within the farthest any shape of its size reaches) are compared with
  each shape as the scene renderer draws it at that size (both sizes when the caption names
  none), moved up to SEARCH pixels from the nominal centre (the renderer's jitter is 2); the
  shape of highest intersection-over-union wins, if that IoU reaches MIN_IOU. The shape is kept
  when the caption's shape wins. A soft blob is nearest a circle; chance is 1/6.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from .scenes import (COLOURS, IMAGE_SIZE, SHAPES, SIZES, PlacedShape, disc, dominant_colour, expectation,
                     object_reach, palette_names, shape_coverage)

SEARCH = 3  # pixels a template moves from the nominal centre, each axis, in whole pixels
MIN_IOU = 0.5  # a shape overlapping its best template less than this is not a drawn shape at all
CENTRE = (IMAGE_SIZE / 2, IMAGE_SIZE / 2)


@lru_cache(maxsize=None)
def _template(shape: str, size: str) -> np.ndarray:
    """The shape's pixels (coverage ≥ 1/2) drawn at the picture's centre, bool [64, 64]."""
    return shape_coverage(shape, CENTRE, SIZES[size]) >= 0.5


def shape_ious(image: np.ndarray, placed: PlacedShape) -> dict[str, float]:
    """The best IoU of each shape's template with the object's colour pixels near its place."""
    window = disc(placed.centre, object_reach(placed.size or "large"))
    drawn = (palette_names(image) == COLOURS.index(placed.colour)) & window
    dx0, dy0 = round(placed.centre[0] - CENTRE[0]), round(placed.centre[1] - CENTRE[1])
    best = {}
    for shape in SHAPES:
        score = 0.0
        for size in ([placed.size] if placed.size else list(SIZES)):
            template = _template(shape, size)
            for dy in range(dy0 - SEARCH, dy0 + SEARCH + 1):
                for dx in range(dx0 - SEARCH, dx0 + SEARCH + 1):
                    moved = np.roll(template, (dy, dx), axis=(0, 1)) & window
                    union = np.count_nonzero(moved | drawn)
                    if union:
                        score = max(score, np.count_nonzero(moved & drawn) / union)
        best[shape] = score
    return best


def drawn_shape(image: np.ndarray, placed: PlacedShape) -> str | None:
    """Which shape the picture drew for a placed object: the best template match, or None below MIN_IOU."""
    ious = shape_ious(image, placed)
    shape = max(ious, key=ious.get)
    return shape if ious[shape] >= MIN_IOU else None


@dataclass(frozen=True)
class CaptionScore:
    """Promises kept out of promises made, the share of region pixels of the right colour, shapes kept of placed."""

    kept: int
    made: int
    colour_accuracy: float
    shapes_kept: int = 0
    shapes_placed: int = 0


def caption_score(image: np.ndarray, caption: str) -> CaptionScore:
    """Scores one uint8 RGB picture [64, 64, 3] against the caption it was generated from."""
    expected = expectation(caption)
    names = palette_names(image)
    regions = [(expected.background, expected.background_mask)]
    regions += [(colour, core) for colour, core in expected.objects if core is not None]
    kept = sum(dominant_colour(image, mask) == colour for colour, mask in regions)
    accuracy = float(np.mean([(names[mask] == COLOURS.index(colour)).mean() for colour, mask in regions]))
    shapes = sum(drawn_shape(image, placed) == placed.shape for placed in expected.placed)
    return CaptionScore(kept, len(regions), accuracy, shapes, len(expected.placed))


@dataclass(frozen=True)
class QualityReport:
    """Scores summed over many pictures."""

    kept: int
    made: int
    colour_accuracy: float  # mean over pictures
    shapes_kept: int = 0
    shapes_placed: int = 0

    @property
    def kept_share(self) -> float:
        return self.kept / self.made

    @property
    def shape_share(self) -> float:
        return self.shapes_kept / self.shapes_placed if self.shapes_placed else 0.0

    def __str__(self) -> str:
        return (f"{self.kept}/{self.made} promises kept ({self.kept_share:.0%}), colour accuracy "
                f"{self.colour_accuracy:.3f}, shapes {self.shapes_kept}/{self.shapes_placed} ({self.shape_share:.0%})")


def quality(scored: Iterable[tuple[np.ndarray, str]]) -> QualityReport:
    """The report over (picture, caption) pairs."""
    scores = [caption_score(image, caption) for image, caption in scored]
    return QualityReport(sum(s.kept for s in scores), sum(s.made for s in scores),
                         float(np.mean([s.colour_accuracy for s in scores])),
                         sum(s.shapes_kept for s in scores), sum(s.shapes_placed for s in scores))

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
