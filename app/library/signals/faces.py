"""People: how many faces a photo holds, and where, from dlib's HOG frontal face detector.

The detector's weights are compiled into the `dlib-bin` wheel (no model file, nothing downloaded); it is
single-threaded, so it runs beside the embedding pass without starving it. Its known blind spots (measured
by ``bench/signals_faces.py``): faces smaller than about 40 pixels in the downscaled photo, profiles and
heads turned past roughly 45 degrees, backs of heads, faces hidden by masks or helmets.
"""
from __future__ import annotations

import math
import threading
from typing import Any, ClassVar

from PIL import Image

from app.library.signals.base import (
    AT_LEAST_ONE,
    CHECK,
    Box,
    DetailRow,
    FactFilter,
    FactSearch,
    SignalDeclaration,
    SignalError,
    SignalOutput,
    Toggle,
)
from app.library.signals.people_words import people_condition
from cots_core.media import MediaError, read_image

PACKAGE = "dlib-bin"
# The photo's longer side is brought down to this before detection; with one 2x upsampling inside the
# detector (its window is 80 px), faces down to ~40 px of this size (~6 % of the side) are found. 640
# found the same faces as 1024 on the benchmark photos at less than half the cost on large photos
# (bench/RESULTS.md, "People").
MAX_SIDE = 640
UPSAMPLE = 1
# dlib's score is an SVM margin and 0 is dlib's own cut. The benchmark's two folds chose -0.3 and +0.2
# (9 photos of people per half: noise); 0 lies between them and kept precision 1.0 on both halves.
MIN_MARGIN = 0.0
# Candidates down to this margin are asked for, so that MIN_MARGIN can be tuned without re-running.
SEARCH_MARGIN = -0.5


def margin_to_score(margin: float) -> float:
    """The detector's SVM margin as a 0..1 confidence (a logistic: monotonic, 0.5 at dlib's own cut)."""
    return 1.0 / (1.0 + math.exp(-2.0 * margin))


def load_rgb(path: str, image: Image.Image | None, max_side: int | None = None) -> Image.Image:
    """The photo as RGB with EXIF orientation applied, read by ``cots_core.media.read_image`` (its size limits
    and errors); SignalError when it cannot be decoded. With ``max_side``, a JPEG is decoded at the smallest
    1/2, 1/4 or 1/8 scale still at least that large."""
    if image is not None:
        return image if image.mode == "RGB" else image.convert("RGB")
    try:
        return read_image(path, target_size=(max_side + 1) // 2 if max_side else None, shrink=False).frames[0]
    except MediaError as error:
        raise SignalError(f"cannot read {path} as an image for face detection: {error}") from error


class FaceSignal:
    """Faces in a photo: facts ``faces`` (count) and ``face_area_max`` (share of the photo's area taken
    by the largest face box, 0..1), and one ``Box(label="face")`` per face, in fractions of the photo."""

    name: ClassVar[str] = "faces"
    version: ClassVar[int] = 1
    second_pass: ClassVar[bool] = True
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        fact_keys=("faces", "face_area_max"),
        rows=(DetailRow("Faces", lambda facts: "" if facts.get("faces") is None
                        else "none found" if int(facts["faces"]) == 0 else str(int(facts["faces"]))),),
        filters=(FactFilter("with_people", AT_LEAST_ONE, ("faces",), control=CHECK, label="With people",
                            help="only photos with faces in them", tooltip="Only photos in which faces were found",
                            negated="without_people",
                            negated_help="only photos in which the face detector found no one"),),
        search=FactSearch("faces", people_condition),
        toggle=Toggle("faces (people)", "faces"),
    )

    def __init__(self, min_margin: float = MIN_MARGIN, max_side: int = MAX_SIDE) -> None:
        self.min_margin = min_margin
        self.max_side = max_side
        self._detector: Any = None
        self._lock = threading.Lock()

    def unavailable(self) -> str | None:
        """None when dlib imports, else one line saying how to install it."""
        try:
            import dlib  # noqa: F401
        except Exception as error:  # noqa: BLE001 - any import failure means "not available"
            return (f"face detection needs the '{PACKAGE}' package ({type(error).__name__}: {error}); "
                    f"install it with: pip install {PACKAGE}")
        return None

    def _model(self) -> Any:
        with self._lock:
            if self._detector is None:
                import dlib

                self._detector = dlib.get_frontal_face_detector()
            return self._detector

    def detect(self, photo: Image.Image) -> list[Box]:
        """Face boxes in an RGB photo, best first, in fractions of its size, clipped to it."""
        import numpy as np

        small = photo
        if max(photo.size) > self.max_side:
            small = photo.copy()
            small.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        width, height = small.size
        rects, margins, _ = self._model().run(np.asarray(small), UPSAMPLE, SEARCH_MARGIN)
        boxes = []
        for rect, margin in zip(rects, margins):
            if margin < self.min_margin:
                continue
            left, top = max(rect.left(), 0), max(rect.top(), 0)
            right, bottom = min(rect.right() + 1, width), min(rect.bottom() + 1, height)
            if right <= left or bottom <= top:
                continue
            boxes.append(Box(left / width, top / height, (right - left) / width, (bottom - top) / height,
                             round(margin_to_score(margin), 4), label="face"))
        return sorted(boxes, key=lambda box: box.score, reverse=True)

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        """Count and locate the faces in one photo (see the class docstring for the facts)."""
        boxes = self.detect(load_rgb(path, image, self.max_side))
        area_max = max((box.w * box.h for box in boxes), default=0.0)
        return SignalOutput(facts={"faces": len(boxes), "face_area_max": round(area_max, 4)}, boxes=boxes)
