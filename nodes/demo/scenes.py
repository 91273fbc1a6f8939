"""The demo model's training data: 64x64 pictures of coloured shapes with captions, drawn in code.

Read top to bottom: the vocabulary (palette, shapes, sizes, positions), the `Scene` a picture is
drawn from and its caption, sampling scenes deterministically from a seed, drawing them, and
reading back from a caption what its picture must show (`expectation`) — the yardstick of the
tests and of the demo model's quality check.

A scene is one object or two on a background:

    "a small red circle at the left on a yellow background"
    "a large blue star left of a small white cross on a green background"

Size and position phrases are sometimes left out of a one-object caption ("a red circle on a
yellow background"), so the model also learns to fill them in. Backgrounds are plain or lightly
textured (a gradient, speckle noise or faint stripes) in the named colour; the texture is never
named. Shapes are drawn at 4x and box-filtered down, so edges carry exact area coverage.

Item i of a dataset depends only on (seed, i): `scene_at(seed, i)`, never on how many items
are drawn or in which order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4

# Colours far apart in RGB (nearest neighbours at least ~85 apart), so a pixel's nearest palette
# colour names it unambiguously even after texture, anti-aliasing or a model's small colour drift.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (245, 215, 35),
    "purple": (140, 55, 185),
    "orange": (250, 135, 20),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross")
# Nominal radius of an object in pixels: every shape spans about twice it.
SIZES: dict[str, float] = {"small": 7.5, "large": 13.0}
# Where a lone object sits, by the phrase that names it.
POSITIONS: dict[str, tuple[float, float]] = {
    "at the left": (16.0, 32.0),
    "at the right": (48.0, 32.0),
    "at the top": (32.0, 16.0),
    "at the bottom": (32.0, 48.0),
    "in the center": (32.0, 32.0),
}
# Two objects: "A <relation> B" puts A and B at these centres.
RELATIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "left of": ((18.0, 32.0), (46.0, 32.0)),
    "right of": ((46.0, 32.0), (18.0, 32.0)),
    "above": ((32.0, 18.0), (32.0, 46.0)),
    "below": ((32.0, 46.0), (32.0, 18.0)),
}
JITTER = 2.0  # an object's centre moves up to this many pixels from its nominal place, each axis
TEXTURES = ("plain", "gradient", "speckle", "stripes")

TWO_OBJECT_PROBABILITY = 0.3
OMIT_SIZE_PROBABILITY = 0.2
OMIT_POSITION_PROBABILITY = 0.2


@dataclass(frozen=True)
class SceneObject:
    """One shape: its colour, kind, size name and centre in pixels (x right, y down)."""

    colour: str
    shape: str
    size: str
    centre: tuple[float, float]


@dataclass(frozen=True)
class Scene:
    """Everything a picture is drawn from, and the caption that describes it."""

    objects: tuple[SceneObject, ...]
    background: str
    texture: str
    texture_seed: int
    caption: str


# ----------------------------------------------------------------------------------------------
# Sampling scenes


def article(word: str) -> str:
    """The indefinite article before a word: "an" before a vowel, else "a"."""
    return "an" if word[0] in "aeiou" else "a"


def _object_phrase(obj: SceneObject, with_size: bool) -> str:
    words = f"{obj.size} {obj.colour}" if with_size else obj.colour
    return f"{article(words)} {words} {obj.shape}"


def _jittered(rng: np.random.Generator, centre: tuple[float, float]) -> tuple[float, float]:
    dx, dy = rng.uniform(-JITTER, JITTER, size=2)
    return centre[0] + float(dx), centre[1] + float(dy)


def sample_scene(rng: np.random.Generator) -> Scene:
    """A random scene and its caption, drawing every choice from `rng`."""
    background = str(rng.choice(COLOURS))
    others = [c for c in COLOURS if c != background]
    texture = str(rng.choice(TEXTURES))
    texture_seed = int(rng.integers(2**31))

    def new_object(centre: tuple[float, float]) -> SceneObject:
        return SceneObject(str(rng.choice(others)), str(rng.choice(SHAPES)), str(rng.choice(list(SIZES))),
                           _jittered(rng, centre))

    if rng.random() < TWO_OBJECT_PROBABILITY:
        relation = str(rng.choice(list(RELATIONS)))
        first_at, second_at = RELATIONS[relation]
        first, second = new_object(first_at), new_object(second_at)
        caption = (f"{_object_phrase(first, True)} {relation} {_object_phrase(second, True)} "
                   f"on {article(background)} {background} background")
        return Scene((first, second), background, texture, texture_seed, caption)

    where = str(rng.choice(list(POSITIONS)))
    obj = new_object(POSITIONS[where])
    with_size = rng.random() >= OMIT_SIZE_PROBABILITY
    with_position = rng.random() >= OMIT_POSITION_PROBABILITY
    place = f" {where}" if with_position else ""
    caption = f"{_object_phrase(obj, with_size)}{place} on {article(background)} {background} background"
    return Scene((obj,), background, texture, texture_seed, caption)


def scene_at(seed: int, index: int) -> Scene:
    """Item `index` of the dataset of `seed`: the same scene however many items are drawn."""
    return sample_scene(np.random.default_rng([seed, index]))


# ----------------------------------------------------------------------------------------------
# Drawing


def shape_polygon(shape: str, centre: tuple[float, float], radius: float) -> list[tuple[float, float]]:
    """The outline of a shape as polygon vertices (a circle as a fine polygon), in pixels."""
    cx, cy = centre

    def ring(radii: list[float], start_degrees: float) -> list[tuple[float, float]]:
        step = 360.0 / len(radii)
        return [(cx + r * math.cos(math.radians(start_degrees + i * step)),
                 cy + r * math.sin(math.radians(start_degrees + i * step))) for i, r in enumerate(radii)]

    # Sizes are chosen so that all shapes of one radius have similar areas (1.8-3.1 r²).
    if shape == "circle":
        return ring([radius] * 96, 0.0)
    if shape == "square":
        half = 0.82 * radius
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if shape == "triangle":  # equilateral, pointing up, centred on its centroid
        return ring([1.15 * radius] * 3, -90.0)
    if shape == "star":  # five points, inner radius half the outer one
        return ring([1.1 * radius, 0.55 * radius] * 5, -90.0)
    if shape == "diamond":
        return ring([1.1 * radius] * 4, -90.0)
    if shape == "cross":  # an upright plus sign with arms 0.8 r wide
        arm, end = 0.4 * radius, radius
        return [(cx - arm, cy - end), (cx + arm, cy - end), (cx + arm, cy - arm), (cx + end, cy - arm),
                (cx + end, cy + arm), (cx + arm, cy + arm), (cx + arm, cy + end), (cx - arm, cy + end),
                (cx - arm, cy + arm), (cx - end, cy + arm), (cx - end, cy - arm), (cx - arm, cy - arm)]
    raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")


def _background(colour: str, texture: str, seed: int) -> np.ndarray:
    """A float RGB background [64, 64, 3] in 0..255, varying at most ~16 levels from the colour."""
    base = np.array(PALETTE[colour], dtype=np.float64)
    size = IMAGE_SIZE
    rng = np.random.default_rng(seed)
    # One brightness offset per pixel, small enough that every pixel keeps its palette name.
    if texture == "plain":
        offset = np.zeros((size, size))
    elif texture == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
        offset = 28.0 * (xs * math.cos(angle) + ys * math.sin(angle))
    elif texture == "speckle":
        offset = rng.normal(0.0, 5.0, (size, size)).clip(-14, 14)
    elif texture == "stripes":
        period = rng.uniform(6, 12)
        ys, xs = np.mgrid[0:size, 0:size]
        axis = xs if rng.random() < 0.5 else ys
        offset = 10.0 * np.sin(2 * math.pi * axis / period)
    else:
        raise ValueError(f"unknown texture {texture!r}: expected one of {', '.join(TEXTURES)}")
    return np.clip(base + offset[..., None], 0, 255)


def shape_coverage(shape: str, centre: tuple[float, float], radius: float) -> np.ndarray:
    """The fraction of each pixel [64, 64] a shape covers: drawn at 4x and box-filtered."""
    big = IMAGE_SIZE * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    centre = (centre[0] * SUPERSAMPLE, centre[1] * SUPERSAMPLE)
    ImageDraw.Draw(mask).polygon(shape_polygon(shape, centre, radius * SUPERSAMPLE), fill=255)
    return np.asarray(mask.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX), dtype=np.float64) / 255


def render(scene: Scene) -> np.ndarray:
    """The scene's picture as uint8 RGB [64, 64, 3], shapes anti-aliased by 4x supersampling."""
    image = _background(scene.background, scene.texture, scene.texture_seed)
    for obj in scene.objects:
        coverage = shape_coverage(obj.shape, obj.centre, SIZES[obj.size])[..., None]
        image = image * (1 - coverage) + np.array(PALETTE[obj.colour], dtype=np.float64) * coverage
    return np.round(image).astype(np.uint8)


def dataset(seed: int, count: int, start: int = 0) -> tuple[np.ndarray, list[str]]:
    """Items start..start+count-1 of the dataset of `seed`: uint8 images [count, 64, 64, 3] and captions."""
    scenes = [scene_at(seed, index) for index in range(start, start + count)]
    images = np.stack([render(scene) for scene in scenes]) if scenes else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3),
                                                                                   np.uint8)
    return images, [scene.caption for scene in scenes]


# ----------------------------------------------------------------------------------------------
# What a caption promises


@dataclass(frozen=True)
class PlacedShape:
    """An object a caption puts at a known place: colour, shape, size name or None, nominal centre in pixels."""

    colour: str
    shape: str
    size: str | None
    centre: tuple[float, float]


@dataclass(frozen=True)
class Expectation:
    """What a captioned picture must show: background colour and pixels, and each object's colour and pixels.

    Masks are boolean [64, 64]. An object's mask (None when the caption gives no position) lies
    inside the object wherever its jitter puts it, up to the thin tips of stars and triangles;
    the background mask lies outside every object the caption allows. `placed` says, for each
    object with a position, what the picture must draw there: its shape, size name (None when
    the caption leaves it out) and nominal centre.
    """

    background: str
    background_mask: np.ndarray
    objects: tuple[tuple[str, np.ndarray | None], ...]
    placed: tuple[PlacedShape, ...] = ()


_COLOUR = "|".join(COLOURS)
_SHAPE = "|".join(SHAPES)
_SIZE = "|".join(SIZES)
_OBJECT = rf"an? (?:({_SIZE}) )?({_COLOUR}) ({_SHAPE})"
_ONE = re.compile(rf"{_OBJECT}(?: ({'|'.join(POSITIONS)}))? on an? ({_COLOUR}) background")
_TWO = re.compile(rf"{_OBJECT} ({'|'.join(RELATIONS)}) {_OBJECT} on an? ({_COLOUR}) background")

# The object mask is a disc of this fraction of the nominal radius around the nominal centre: the
# jitter can move the shape by JITTER·√2, and the thinnest shape (the cross, arms 0.4 r wide)
# still covers most of such a disc.
CORE_FRACTION = 0.45
# Pixels at least this far beyond an object's largest possible extent count as background.
BACKGROUND_MARGIN = 2.0


def object_reach(size: str) -> float:
    """How far from its nominal centre an object of this size may cover pixels, plus BACKGROUND_MARGIN.

    The largest extent of any shape is 1.15 r (the triangle's corners), plus the jitter.
    """
    return 1.15 * SIZES[size] + JITTER * math.sqrt(2) + BACKGROUND_MARGIN


def disc(centre: tuple[float, float], radius: float) -> np.ndarray:
    """The pixels [64, 64] whose centres lie within `radius` of `centre`."""
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2


def expectation(caption: str) -> Expectation:
    """Reads a caption of the dataset's grammar back into the colours and regions its picture must show."""
    reach = {size: object_reach(size) for size in SIZES}
    if match := _TWO.fullmatch(caption.strip()):
        size_a, colour_a, shape_a, relation, size_b, colour_b, shape_b, background = match.groups()
        objects, placed = [], []
        occupied = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        for size, colour, shape, centre in ((size_a, colour_a, shape_a, RELATIONS[relation][0]),
                                            (size_b, colour_b, shape_b, RELATIONS[relation][1])):
            objects.append((colour, disc(centre, CORE_FRACTION * SIZES[size or "small"])))
            placed.append(PlacedShape(colour, shape, size, centre))
            occupied |= disc(centre, reach[size or "large"])
        return Expectation(background, ~occupied, tuple(objects), tuple(placed))
    if match := _ONE.fullmatch(caption.strip()):
        size, colour, shape, where, background = match.groups()
        candidates = [POSITIONS[where]] if where else list(POSITIONS.values())
        occupied = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
        for centre in candidates:
            occupied |= disc(centre, reach[size or "large"])
        core = disc(POSITIONS[where], CORE_FRACTION * SIZES[size or "small"]) if where else None
        placed = (PlacedShape(colour, shape, size, POSITIONS[where]),) if where else ()
        return Expectation(background, ~occupied, ((colour, core),), placed)
    raise ValueError(f"not a caption of the demo dataset: {caption!r}")


def palette_names(image: np.ndarray) -> np.ndarray:
    """The nearest palette colour of every pixel of a uint8 RGB image [H, W, 3], as indices into COLOURS."""
    palette = np.array([PALETTE[name] for name in COLOURS], dtype=np.float64)
    distances = ((image[..., None, :].astype(np.float64) - palette) ** 2).sum(-1)
    return distances.argmin(-1)


def dominant_colour(image: np.ndarray, mask: np.ndarray) -> str:
    """The palette colour most pixels of the image under the mask are nearest to."""
    counts = np.bincount(palette_names(image)[mask], minlength=len(COLOURS))
    return COLOURS[int(counts.argmax())]
