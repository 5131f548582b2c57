"""Child process of test_hostile_files: the evaluation transform on a 50000x1 image, under a memory limit
(before issue 21 it allocated ~7.5 GB). Prints the peak RSS growth in MiB."""
from __future__ import annotations

import resource
import sys

from PIL import Image

from cots_core.config import ModelConfig
from cots_core.transforms import build_transform


def main(path: str) -> None:
    config = ModelConfig.preset("tiny")
    transform = build_transform(224, config.vision)
    image = Image.open(path)
    image.load()
    transform(Image.new("RGB", (64, 48)))  # warm up the pipeline's own buffers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # a failing defence must fail here, not take the machine's memory: 1 GiB more data at most
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (before * 1024 + (1 << 30), hard))
    pixels = transform(image)
    assert tuple(pixels.shape) == (3, 224, 224), pixels.shape
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)


if __name__ == "__main__":
    main(sys.argv[1])
