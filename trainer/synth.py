"""A synthetic captioned collection: simple scenes of coloured shapes with captions that describe them.

``cots data synth`` writes it in the sidecar format (``000042.png`` + ``000042.txt``) so it exercises
the same reader as a person's folder. Captions use a small vocabulary (every word is in the tiny
model's vocab file) and a fixed grammar, so a tiny model trained from scratch can learn them:

    "two small red circles left of a large blue square", "three green triangles"

With ``noise > 0`` that fraction of images gets the caption of another image instead of its own;
``noise.json`` lists which files are mismatched (what AMF should filter) and their true captions.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 60, 220), "yellow": (240, 210, 20),
    "purple": (140, 40, 170), "orange": (250, 130, 10), "black": (20, 20, 20), "cyan": (20, 200, 210),
}
SHAPES = ("circle", "square", "triangle")
COUNT_WORDS = {1: "a", 2: "two", 3: "three"}
SIZES = {"small": 0.07, "large": 0.12}  # object radius as a fraction of the image side
RELATIONS = ("left of", "right of", "above", "below")
NOISE_FILE = "noise.json"


@dataclass(frozen=True)
class Group:
    count: int
    size: str
    colour: str
    shape: str

    def phrase(self) -> str:
        noun = self.shape + ("s" if self.count > 1 else "")
        return f"{COUNT_WORDS[self.count]} {self.size} {self.colour} {noun}"


@dataclass(frozen=True)
class Scene:
    first: Group
    relation: str | None = None  # None: one group only
    second: Group | None = None

    def caption(self) -> str:
        if self.second is None:
            return self.first.phrase()
        return f"{self.first.phrase()} {self.relation} {self.second.phrase()}"


def _group(rng: random.Random) -> Group:
    return Group(rng.randint(1, 3), rng.choice(list(SIZES)), rng.choice(list(COLOURS)), rng.choice(SHAPES))


def sample_scene(rng: random.Random, max_groups: int = 2) -> Scene:
    """One or two groups of shapes; two groups always differ in colour or shape."""
    first = _group(rng)
    if max_groups < 2 or rng.random() < 0.3:
        return Scene(first)
    second = _group(rng)
    while (second.colour, second.shape) == (first.colour, first.shape):
        second = _group(rng)
    return Scene(first, rng.choice(RELATIONS), second)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=fill)


def _draw_group(draw, group: Group, box: tuple[float, float, float, float], size: int, rng) -> None:
    """Spread the group's objects along the longer side of ``box`` (x0, y0, x1, y1), with jitter."""
    x0, y0, x1, y1 = box
    r = SIZES[group.size] * size
    vertical = (y1 - y0) >= (x1 - x0)
    for k in range(group.count):
        t = (k + 0.5) / group.count
        jitter = (rng.random() - 0.5) * 0.3 / group.count
        along = t + jitter
        across = 0.5 + (rng.random() - 0.5) * 0.3
        fx, fy = (across, along) if vertical else (along, across)
        cx = x0 + r + fx * max(0.0, (x1 - x0) - 2 * r)
        cy = y0 + r + fy * max(0.0, (y1 - y0) - 2 * r)
        _draw_shape(draw, group.shape, cx, cy, r, COLOURS[group.colour])


def draw_scene(scene: Scene, size: int, rng: random.Random) -> Image.Image:
    """Render a scene on a light, slightly tinted background."""
    shade = rng.randint(225, 255)
    tint = tuple(min(255, shade + rng.randint(-8, 8)) for _ in range(3))
    image = Image.new("RGB", (size, size), tint)
    draw = ImageDraw.Draw(image)
    full = (0.0, 0.0, float(size), float(size))
    half = size / 2
    if scene.second is None:
        _draw_group(draw, scene.first, full, size, rng)
        return image
    halves = {
        "left of": ((0, 0, half, size), (half, 0, size, size)),
        "right of": ((half, 0, size, size), (0, 0, half, size)),
        "above": ((0, 0, size, half), (0, half, size, size)),
        "below": ((0, half, size, size), (0, 0, size, half)),
    }[scene.relation]
    _draw_group(draw, scene.first, halves[0], size, rng)
    _draw_group(draw, scene.second, halves[1], size, rng)
    return image


@dataclass
class SynthSummary:
    out: Path
    n: int
    n_mismatched: int

    def __str__(self) -> str:
        return f"wrote {self.n} images to {self.out} ({self.n_mismatched} with a mismatched caption)"


def generate_synthetic(n: int, out: str | Path, noise: float = 0.0, seed: int = 0, size: int = 96,
                       max_groups: int = 2) -> SynthSummary:
    """Write ``n`` images with sidecar captions to ``out``; ``noise`` of them get another image's caption.

    ``max_groups=1`` draws only single-group scenes ("two small red circles"): easier, for quick tests."""
    if n < 1:
        raise ValueError("--n must be at least 1")
    if not 0.0 <= noise <= 1.0:
        raise ValueError("--noise must be a fraction between 0 and 1")
    if size < 16:
        raise ValueError("--size must be at least 16 pixels")
    rng = random.Random(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scenes = [sample_scene(rng, max_groups) for _ in range(n)]
    truth = [scene.caption() for scene in scenes]
    captions = list(truth)
    noisy = sorted(rng.sample(range(n), round(noise * n))) if n > 1 else []
    for pos, i in enumerate(noisy):
        # take the next noisy image's true caption (a derangement), or any other differing caption
        donor = noisy[(pos + 1) % len(noisy)] if len(noisy) > 1 else (i + 1) % n
        tries = 0
        while truth[donor] == truth[i] and tries < 100:
            donor, tries = rng.randrange(n), tries + 1
        captions[i] = truth[donor]
    names = [f"{i:06d}.png" for i in range(n)]
    for i, (scene, name) in enumerate(zip(scenes, names)):
        draw_scene(scene, size, rng).save(out / name)
        (out / name).with_suffix(".txt").write_text(captions[i] + "\n", encoding="utf-8")
    mismatched = [names[i] for i in noisy if captions[i] != truth[i]]
    record = {"n": n, "noise": noise, "seed": seed, "size": size, "mismatched": mismatched,
              "true_captions": {names[i]: truth[i] for i in noisy}}
    (out / NOISE_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return SynthSummary(out, n, len(mismatched))


def load_mismatched(folder: str | Path) -> set[str]:
    """Absolute paths of the files whose caption was swapped, from a synthetic folder's noise.json."""
    folder = Path(folder)
    data = json.loads((folder / NOISE_FILE).read_text(encoding="utf-8"))
    return {str((folder / name).resolve()) for name in data["mismatched"]}
