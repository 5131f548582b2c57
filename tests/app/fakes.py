"""A fake model with the cots_core inference interface: fast, deterministic, and with one bit of
meaning: a colour word ("red", "green", ...) embeds like a plain image of that colour."""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

COLOURS = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "white": (255, 255, 255), "black": (0, 0, 0),
}


class FakeModel:
    """16-d embeddings: colour layout (2x2 grid x RGB, centred) + a random projection of the pixels."""

    def __init__(self, name: str = "fake"):
        self.config = SimpleNamespace(image_size=8, embed_dim=16, name=name)
        self.model_id = f"{name}-0001"
        self._projection = torch.from_numpy(np.random.default_rng(0).standard_normal((192, 4)).astype(np.float32))
        self.calls = 0  # number of encode_images calls (tests count model work)
        self.images_encoded = 0

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR), np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images_encoded += len(pixels)
        pixels = pixels.float()
        grid = torch.nn.functional.avg_pool2d(pixels, 4).flatten(1) - 0.5  # [B, 12]
        detail = 0.05 * ((pixels.flatten(1) - 0.5) @ self._projection)  # [B, 4]
        return torch.nn.functional.normalize(torch.cat([grid, detail], dim=1), dim=-1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        out = []
        for text in texts:
            colour = next((c for c in COLOURS if c in text.lower().split()), None)
            if colour:
                out.append(self.encode_images(self.preprocess(Image.new("RGB", (8, 8), COLOURS[colour]))[None])[0])
            else:
                seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
                vec = torch.from_numpy(np.random.default_rng(seed).standard_normal(16).astype(np.float32))
                out.append(torch.nn.functional.normalize(vec, dim=0))
        return torch.stack(out) if out else torch.zeros(0, 16)

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.encode_images(frames).mean(0), dim=0)


def fake_encoder(name: str = "fake"):
    from app.library.encoder import Encoder

    return Encoder(FakeModel(name), device="cpu", source=name)


def solid(colour: str, size=(64, 48)) -> Image.Image:
    return Image.new("RGB", size, COLOURS[colour])


def noise_image(seed: int, size=(40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def write_video(path, colours: list[str], seconds_each: float = 4.0, fps: int = 5, size=(64, 48)) -> None:
    """An mp4 whose consecutive segments are plain colours."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for colour in colours:
        r, g, b = COLOURS[colour]
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:] = (b, g, r)
        for _ in range(int(seconds_each * fps)):
            writer.write(frame)
    writer.release()


def run_indexer(library, encoder, **options):
    from app.library.indexer import Indexer, IndexOptions

    progress = options.pop("progress", None)
    return Indexer(library, encoder, IndexOptions(vocabulary=options.pop("vocabulary", False), **options),
                   progress=progress).run()


def real_photo(name: str = "coffee", width: int = 160) -> Image.Image:
    """A real photo from scikit-image's data (astronaut, coffee, chelsea, ...), made small."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)())
    return image.resize((width, round(image.height * width / image.width)), Image.Resampling.BILINEAR)


def save_with_exif(image: Image.Image, path, gps: tuple[float, float] | None = None, camera: tuple[str, str] | None = None,
                   taken: str | None = None) -> None:
    """Save a JPEG with EXIF: GPS position (decimal degrees), camera (make, model), DateTimeOriginal
    ("2019:06:30 12:00:00")."""
    exif = Image.Exif()
    if camera:
        exif[0x010F], exif[0x0110] = camera
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    if gps:
        def dms(value: float) -> tuple[float, float, float]:
            value = abs(value)
            degrees, minutes = int(value), int(value * 60) % 60
            return (float(degrees), float(minutes), round((value * 3600) % 60, 4))

        lat, lon = gps
        exif[0x8825] = {1: "N" if lat >= 0 else "S", 2: dms(lat), 3: "E" if lon >= 0 else "W", 4: dms(lon)}
    image.save(path, exif=exif)
