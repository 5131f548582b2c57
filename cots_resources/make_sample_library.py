"""Rebuild ``cots_resources/sample_library/`` from images that ship inside pip packages (offline).

Run from the repository root: ``python cots_resources/make_sample_library.py`` (needs the ``test`` extra:
scikit-image, scikit-learn, matplotlib). The result is committed; `cots demo` only reads it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent / "sample_library"
MAX_SIDE = 640


def _skimage(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)())


def _sklearn(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name))


def _matplotlib(name: str) -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data(name) as handle:
        return Image.open(handle).copy()


STILLS = {
    "astronaut.jpg": lambda: _skimage("astronaut"),
    "chelsea.jpg": lambda: _skimage("chelsea"),
    "coffee.jpg": lambda: _skimage("coffee"),
    "rocket.jpg": lambda: _skimage("rocket"),
    "hubble_deep_field.jpg": lambda: _skimage("hubble_deep_field"),
    "camera.jpg": lambda: _skimage("camera"),
    "coins.jpg": lambda: _skimage("coins"),
    "people/grace_hopper.jpg": lambda: _matplotlib("grace_hopper.jpg"),
    "Trip to China 2011/china.jpg": lambda: _sklearn("china.jpg"),
    "Trip to China 2011/flower.jpg": lambda: _sklearn("flower.jpg"),
}
CAPTIONS = {
    "people/grace_hopper.txt": "Rear Admiral Grace Hopper, computer scientist, in her navy uniform",
    "Trip to China 2011/china.txt": "A Chinese temple roof among trees",
}
# The video: three scenes that differ, each a slow zoom into one photo.
VIDEO = ("clips/scenes.mp4", ["chelsea", "rocket", "coffee"], 4.0, 10, (320, 240))


def _fit(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return image


def _write_video(path: Path, names: list[str], seconds_each: float, fps: int, size: tuple[int, int]) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for name in names:
        photo = _skimage(name).convert("RGB")
        frames = int(seconds_each * fps)
        for i in range(frames):
            zoom = 1.0 + 0.15 * i / frames  # a slow zoom, so that frames differ
            w, h = photo.width / zoom, photo.height / zoom
            left, top = (photo.width - w) / 2, (photo.height - h) / 2
            frame = photo.crop((int(left), int(top), int(left + w), int(top + h))).resize(size)
            writer.write(cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    if OUT.exists():
        for child in OUT.iterdir():
            if child.name != "SOURCES.md":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    for relative, load in STILLS.items():
        target = OUT / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        _fit(load()).save(target, quality=85)
    for relative, text in CAPTIONS.items():
        (OUT / relative).write_text(text + "\n")
    relative, names, seconds, fps, size = VIDEO
    (OUT / relative).parent.mkdir(parents=True, exist_ok=True)
    _write_video(OUT / relative, names, seconds, fps, size)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
