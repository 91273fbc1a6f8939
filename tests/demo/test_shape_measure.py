"""The shape measure of nodes/demo/quality.py: it reads every rendered scene's shapes, and a blob is no star."""

from __future__ import annotations

import numpy as np

from sigmagraph.nodes.demo.quality import caption_score, drawn_shape, quality
from sigmagraph.nodes.demo.scenes import PALETTE, SHAPES, SIZES, PlacedShape, dataset, expectation, shape_coverage


def test_the_renderers_own_scenes_keep_every_shape():
    images, captions = dataset(seed=11, count=150)
    report = quality(zip(images, captions))
    assert report.shapes_placed > 100 and report.shapes_kept == report.shapes_placed, str(report)


def paint(shape: str, colour: str, centre: tuple[float, float], radius: float, background: str) -> np.ndarray:
    coverage = shape_coverage(shape, centre, radius)[..., None]
    image = np.array(PALETTE[background], float) * (1 - coverage) + np.array(PALETTE[colour], float) * coverage
    return np.round(image).astype(np.uint8)


def test_each_shape_is_told_from_the_five_others_off_centre():
    for shape in SHAPES:
        for size, radius in SIZES.items():
            image = paint(shape, "red", (17.5, 33.0), radius, "white")  # moved 1.5 and 1 px off the nominal place
            assert drawn_shape(image, PlacedShape("red", shape, size, (16.0, 32.0))) == shape, (shape, size)


def test_a_soft_blob_counts_as_a_circle_and_an_empty_place_as_nothing():
    caption = "a large red star at the left on a white background"
    (placed,) = expectation(caption).placed
    blob = paint("circle", "red", placed.centre, 0.95 * SIZES["large"], "white")
    assert drawn_shape(blob, placed) == "circle"
    score = caption_score(blob, caption)
    assert (score.kept, score.made, score.shapes_kept, score.shapes_placed) == (2, 2, 0, 1)  # colours yes, shape no
    empty = np.broadcast_to(np.array(PALETTE["white"], np.uint8), (64, 64, 3)).copy()
    assert drawn_shape(empty, placed) is None


def test_only_placed_objects_are_judged():
    assert expectation("a red star on a white background").placed == ()
    first, second = expectation("a large red star left of a small blue cross on a white background").placed
    assert (first.shape, first.size, second.shape, second.size) == ("star", "large", "cross", "small")
