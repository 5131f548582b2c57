"""The model's own image transforms, for any PIL mode."""
from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.functional import InterpolationMode

from cots_core.images import to_rgb

_INTERPOLATION = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                  "nearest": InterpolationMode.NEAREST}


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
