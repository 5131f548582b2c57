"""The model's own image transforms, for any PIL mode."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.functional import InterpolationMode

_INTERPOLATION = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                  "nearest": InterpolationMode.NEAREST}


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode: palette and grey scale expanded, 16-bit and float rescaled, alpha composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255.0 if high > low else np.zeros_like(array)
        return Image.fromarray(scaled.astype(np.uint8), mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def build_transform(image_size: int, mean: tuple[float, ...], std: tuple[float, ...],
                    interpolation: str = "bicubic", train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Evaluation: resize the short side, centre crop. Training: random resized crop (no flip: captions
    such as "left of" would become false)."""
    mode = _INTERPOLATION[interpolation]
    if train:
        geometry = [T.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), interpolation=mode,
                                        antialias=True)]
    else:
        geometry = [T.Resize(image_size, interpolation=mode, antialias=True), T.CenterCrop(image_size)]
    pipeline = T.Compose([*geometry, T.PILToTensor(), T.ToDtype(torch.float32, scale=True),
                          T.Normalize(mean=list(mean), std=list(std))])

    def transform(image: Image.Image) -> torch.Tensor:
        return pipeline(to_rgb(image))

    return transform
