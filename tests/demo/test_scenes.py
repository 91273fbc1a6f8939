"""The procedural dataset: deterministic, captions in a grammar that reads back, and pictures that show their captions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sigmagraph.nodes.demo.scenes import (COLOURS, IMAGE_SIZE, PALETTE, SHAPES, dataset, dominant_colour, expectation,
                                          palette_names, render, scene_at)


def test_an_item_depends_only_on_seed_and_index():
    images, captions = dataset(3, 8)
    later_images, later_captions = dataset(3, 3, start=5)
    assert later_captions == captions[5:]
    assert np.array_equal(later_images, images[5:])
    assert dataset(4, 8)[1] != captions
    assert images.shape == (8, IMAGE_SIZE, IMAGE_SIZE, 3) and images.dtype == np.uint8


def test_palette_colours_are_far_apart():
    distances = [np.linalg.norm(np.subtract(PALETTE[a], PALETTE[b])) for a, b in itertools.combinations(COLOURS, 2)]
    assert min(distances) > 80


@pytest.mark.parametrize("seed", [0, 1])
def test_every_rendered_scene_shows_what_its_caption_says(seed):
    """The expectation read from the caption alone (regex, nominal geometry) against the drawn pixels."""
    for index in range(200):
        scene = scene_at(seed, index)
        image = render(scene)
        expected = expectation(scene.caption)
        assert expected.background == scene.background
        assert dominant_colour(image, expected.background_mask) == scene.background, scene.caption
        # Background pixels are the background colour, however textured.
        assert (palette_names(image)[expected.background_mask] == COLOURS.index(scene.background)).all(), scene.caption
        for (colour, core), obj in zip(expected.objects, scene.objects):
            assert colour == obj.colour
            if core is not None:
                assert dominant_colour(image, core) == colour, scene.caption
                # Mostly inside the shape, whatever the jitter (a small triangle's core pokes out most).
                covered = palette_names(image)[core] == COLOURS.index(colour)
                assert covered.mean() > 0.8, (scene.caption, covered.mean())


def test_the_dataset_covers_the_vocabulary():
    captions = " ".join(dataset(0, 400)[1])
    for word in COLOURS + SHAPES + ("left of", "above", "at the top", "small", "large"):
        assert word in captions
    assert any(len(scene_at(0, i).objects) == 2 for i in range(50))


def test_a_caption_outside_the_grammar_is_refused():
    with pytest.raises(ValueError, match="not a caption of the demo dataset"):
        expectation("a photo of a cat")
