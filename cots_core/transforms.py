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
        if not train:
            image = crop_elongated(image)
        return pipeline(to_rgb(image))

    return transform


# The evaluation transform keeps only the centre square; cropping a very long image to this ratio first
# leaves that square as it was and bounds the resize (a 50000x1 image would become 11.2M x 224 pixels).
MAX_RESIZED_ASPECT = 16


def crop_elongated(image: Image.Image, max_aspect: int = MAX_RESIZED_ASPECT) -> Image.Image:
    """The centre of ``image`` with its long side at most ``max_aspect`` times its short side."""
    width, height = image.size
    short = max(1, min(width, height))
    if max(width, height) <= max_aspect * short:
        return image
    keep = max_aspect * short
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))
