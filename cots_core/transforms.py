"""The model's own image transforms, for any PIL mode."""
from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torchvision.transforms import v2 as T
from torchvision.transforms.functional import InterpolationMode

from cots_core.config import VisionConfig
from cots_core.image_graph import crop_elongated  # torch-free: the query image path shares it
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
