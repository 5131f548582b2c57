"""The model's own image transforms, for any PIL mode."""
from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.functional import InterpolationMode

from cots_core.config import VisionConfig
from cots_core.images import to_rgb

_INTERPOLATION = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                  "nearest": InterpolationMode.NEAREST}


def build_transform(image_size: int, vision: VisionConfig, train: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Evaluation: resize the short side and centre-crop, or resize to a square (``vision.resize``
    "squash", as SigLIP). Training: random resized crop (no flip: captions such as "left of" would become
    false). ``vision.resize_backend`` "tensor" resamples uint8 tensors with torchvision, as transformers'
    image processors do, so CLIP-family towers see exactly the pixels they are checked against."""
    mode = _INTERPOLATION[vision.interpolation]
    if vision.resize not in ("shortest_edge", "squash"):
        raise ValueError(f"unknown resize {vision.resize!r} (shortest_edge, squash)")
    if train:
        geometry = [T.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), interpolation=mode,
                                        antialias=True)]
    elif vision.resize == "squash":
        geometry = [T.Resize((image_size, image_size), interpolation=mode, antialias=True)]
    else:
        # transformers' processors place the crop at floor((h - size) / 2), torchvision rounds (to even)
        crop = _FloorCenterCrop(image_size) if vision.resize_backend == "tensor" else T.CenterCrop(image_size)
        geometry = [T.Resize(image_size, interpolation=mode, antialias=True), crop]
    if vision.resize_backend == "tensor":
        steps = [T.PILToTensor(), *geometry]
    else:
        steps = [*geometry, T.PILToTensor()]
    pipeline = T.Compose([*steps, T.ToDtype(torch.float32, scale=True),
                          T.Normalize(mean=list(vision.mean), std=list(vision.std))])

    def transform(image: Image.Image) -> torch.Tensor:
        if not train:
            image = crop_elongated(image)
        return pipeline(to_rgb(image))

    return transform


class _FloorCenterCrop(torch.nn.Module):
    """Centre crop of a [C, H, W] tensor with the offset rounded down, as transformers' image processors
    (torchvision's ``CenterCrop`` rounds half to even: one pixel apart on odd margins)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        if height < self.size or width < self.size:
            return T.CenterCrop(self.size)(image)  # pads, as transformers does
        top, left = int((height - self.size) / 2.0), int((width - self.size) / 2.0)
        return image[..., top:top + self.size, left:left + self.size]


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
