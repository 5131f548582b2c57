"""Text in photos: OCR with RapidOCR (PaddleOCR's PP-OCRv6 detector and recogniser and its angle
classifier, as ONNX models run by onnxruntime). The three models ship inside the ``rapidocr`` wheel and are
opened by explicit path, so RapidOCR's own download code is never reached. Runs as a second pass, after
embeddings, on one worker with few threads; cost and precision are measured by ``bench/signals_ocr.py``."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from app.library.signals.base import Box, DetailRow, SignalDeclaration, SignalError, SignalOutput, Toggle

INSTALL_HINT = "text in photos needs the rapidocr and onnxruntime packages: pip install rapidocr onnxruntime"
# The models inside the rapidocr 3.10 wheel (det: 9.9 MB, rec: 21 MB, cls: 0.6 MB).
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
# Longest side the photo is shrunk to before OCR: bench/signals_ocr.py measures recall and cost per size.
DEFAULT_MAX_SIDE = 1280
# Lines recognised with less confidence are mostly texture read as letters: the lowest threshold with no
# false word on the rendered set and the plain photos, at no loss of recall (bench/signals_ocr.py).
DEFAULT_MIN_SCORE = 0.8
# The detector's input: its longest side is brought down to this (rapidocr's own default instead brings the
# SHORT side UP to 736, so a 1280 x 720 photo was detected at 1312 x 736 and a 512 px one upscaled). Lines are
# still recognised on crops of the max_side photo, so small letters keep their detail. 800 was chosen on
# bench/signals_ocr.py's rendered set (recall at 1.5 / 3 / 6 % letter height 0.87 / 1.00 / 1.00 against
# 0.83 / 1.00 / 0.83 with rapidocr's rule; 640 fell to 0.74 on the smallest letters) at 0.38x the detector's
# cost (bench/RESULTS.md, "Second pass speed"); 736 then on 96 rendered photos (`--det-sides`: 0.86 / 1.00 /
# 1.00 against 800's 0.85 / 1.00 / 1.00; 704 lost words at 6 %), reported on the real photos with text and the
# plain ones: the same 49 of 52 words, 1 false, none on plain photos, as at 800, for 12 % less time per photo.
# Version 2 stays: the words found are as good, and a new version would read every library's photos again.
DEFAULT_DET_SIDE = 736  # 0: rapidocr's own rule
# The angle classifier (turns lines it thinks upside down) is off: EXIF orientation is applied before OCR,
# and on the real photos it turned right-way-up lines over, losing 11 of page.png's 52 words.
DEFAULT_USE_ANGLE = False
# A line needs this many letters or digits: lone characters are mostly noise (a "0" on a cat's fur).
MIN_LINE_CHARS = 2


def _model_dir() -> Path:
    """The folder of the models inside the installed rapidocr package (imports it)."""
    import rapidocr

    return Path(rapidocr.__file__).parent / "models"


def _missing() -> str | None:
    """Why OCR cannot run here, or None: a package or a model file is missing."""
    try:
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken native library (OSError)
        return INSTALL_HINT
    absent = [name for name in MODEL_FILES.values() if not (_model_dir() / name).is_file()]
    if absent:
        return (f"text in photos needs the OCR models of rapidocr 3.10 ({', '.join(absent)} not found): "
                "pip install 'rapidocr==3.10.0'")
    return None


def _bounded(image: Image.Image, max_side: int) -> Image.Image:
    """The photo with its longest side at most ``max_side`` (small text stays readable down to ~1280)."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


# Where the recogniser (trained mostly on Chinese, which has no spaces) tends to swallow a space between
# words: a lower-case letter before a capital ("GateB12"), a letter next to a digit ("EXIT12").
_CASE_JOIN = re.compile(r"(?<=[a-z])(?=[A-Z])")
_DIGIT_JOIN = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def index_text(line: str) -> str:
    """``line`` for the full-text index: each word that looks like merged words is followed by its parts
    ("EXIT12" -> "EXIT12 EXIT 12", "GateB12" -> "GateB12 Gate B12 B 12"), so the whole and the parts match."""
    out = []
    for word in line.split():
        out.append(word)
        parts = _CASE_JOIN.sub(" ", word).split()
        if len(parts) > 1:
            out.extend(parts)
        out.extend(_DIGIT_JOIN.sub(" ", part) for part in parts if _DIGIT_JOIN.search(part))
    return " ".join(out)


TEXT_LINES = 3  # recognised lines shown in the GUI's detail pane, at most


def first_lines(text: str) -> str:
    """The detail pane's text: the first lines recognised, " …" when there are more."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(lines[:TEXT_LINES]) + (" …" if len(lines) > TEXT_LINES else "")


def _keep_line(text: str, score: float, min_score: float) -> bool:
    """Whether a recognised line is worth indexing (confident, and more than a lone character)."""
    return score >= min_score and sum(ch.isalnum() for ch in text) >= MIN_LINE_CHARS


class OcrSignal:
    """Recognised text lines of a photo: ``text`` (lines in reading order, one per line, see ``index_text``),
    ``facts["ocr_lines"]`` and one Box per line labelled with the line as recognised."""

    name: ClassVar[str] = "ocr"
    version: ClassVar[int] = 2  # 2: detector on an 800 px copy (736 since: as good), no angle classifier
    second_pass: ClassVar[bool] = True
    declares: ClassVar[SignalDeclaration] = SignalDeclaration(
        display_name="text",
        fact_keys=("ocr_lines",),
        rows=(DetailRow("Text", lambda text: first_lines(text), from_text=True),),
        toggle=Toggle("text in photos (OCR)", "text in photos"),
    )

    def __init__(self, threads: int = 1, max_side: int = DEFAULT_MAX_SIDE,
                 min_score: float = DEFAULT_MIN_SCORE, det_side: int = DEFAULT_DET_SIDE,
                 use_angle: bool = DEFAULT_USE_ANGLE) -> None:
        """``threads``: onnxruntime intra-op threads per model (1: OCR runs beside the embedding work
        without taking its cores). ``max_side``: longest side OCR sees (and recognises lines on).
        ``min_score``: line confidence kept. ``det_side``: longest side of the detector's copy (0: rapidocr's
        rule). ``use_angle``: run the angle classifier on each line."""
        self.threads = max(1, int(threads))
        self.max_side = int(max_side)
        self.min_score = float(min_score)
        self.det_side = int(det_side)
        self.use_angle = bool(use_angle)
        self._engine: Any = None
        self._engine_lock = threading.Lock()  # prepare() may build the engine beside a first extract()
        self._why_not: str | None = None
        self._checked = False

    @property
    def decode_side(self) -> int:
        """The longest side the runner decodes the photo at for OCR: the side lines are read at."""
        return self.max_side

    def unavailable(self) -> str | None:
        """One line naming what to install, or None when OCR can run. Cheap after the first call."""
        if not self._checked:
            self._why_not = _missing()
            self._checked = True
        return self._why_not

    def prepare(self) -> None:
        """Build the engine and open its detector and recogniser sessions now (rapidocr opens them on first
        use): ~0.6 s that the indexer spends while the embedding pass runs instead of on the first photo."""
        engine = self._load()
        engine._load_det_model()  # rapidocr's own lazy loaders, each under its own lock
        engine._load_rec_model()

    def _load(self) -> Any:
        """The RapidOCR engine, built on first use from the models in the wheel and kept."""
        with self._engine_lock:
            return self._build()

    def _build(self) -> Any:
        if self._engine is None:
            why_not = self.unavailable()
            if why_not:
                raise RuntimeError(why_not)
            from rapidocr import RapidOCR

            models = _model_dir()
            params: dict[str, Any] = {f"{part}.model_path": str(models / file) for part, file in MODEL_FILES.items()}
            params.update({
                "Global.log_level": "error",
                "Global.text_score": self.min_score,
                "Global.max_side_len": self.max_side,
                "Global.use_cls": self.use_angle,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                # rapidocr turns onnxruntime's memory arena off, so every detector run allocates and frees
                # its activations anew: 14-18 % of the detector's time, for ~95 MB kept while OCR runs
                # (bench/RESULTS.md "The second pass on 20+ MP photos"); the output is bit-identical
                "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
            })
            if self.det_side:
                params.update({"Det.limit_type": "max", "Det.limit_side_len": self.det_side})
            self._engine = RapidOCR(params=params)
        return self._engine

    def _run_stages(self, photo: Image.Image) -> tuple[Any, dict[str, float]]:
        """RapidOCR's own steps (its ``__call__``), each timed: the result (its output object; empty when
        the detector finds no text region, in which case nothing else runs) and seconds per stage."""
        from rapidocr.ch_ppocr_cls import TextClsOutput
        from rapidocr.main import RapidOCRError
        from rapidocr.utils.output import RapidOCROutput

        engine = self._load()
        stages: dict[str, float] = {}
        start = time.perf_counter()
        array = engine.load_img(photo)
        img, op_record = engine.preprocess_img(array)
        try:
            crops, det = engine.detect_and_crop(img, op_record)
        except RapidOCRError:  # no text region: the common case, recognition is skipped
            crops, det = [], None
        stages["detect"] = time.perf_counter() - start
        if not crops:
            return RapidOCROutput(), stages
        start = time.perf_counter()
        angle, turned = TextClsOutput(), crops
        if engine.use_cls:
            turned, angle = engine.cls_and_rotate(crops)
            stages["angle"] = time.perf_counter() - start
        start = time.perf_counter()
        try:
            rec = engine.recognize_txt(turned)  # in batches of Rec.rec_batch_num crops
        except RapidOCRError:
            return RapidOCROutput(), stages
        result = engine.build_final_output(array, det, angle, rec, crops, op_record)
        stages["recognise"] = time.perf_counter() - start
        return result, stages

    def extract(self, path: str, image: Image.Image | None) -> SignalOutput:
        """Recognise the text in one photo. ``image`` should be the full-resolution decode (a thumbnail
        loses small text); None opens ``path``. SignalError when the file cannot be read as an image."""
        if image is None:
            image = _open(path, self.max_side)
        photo = _bounded(image.convert("RGB") if image.mode != "RGB" else image, self.max_side)
        result, stages = self._run_stages(photo)
        width, height = photo.size
        lines: list[str] = []
        boxes: list[Box] = []
        if getattr(result, "txts", None):
            for quad, text, score in zip(result.boxes, result.txts, result.scores):
                text = text.strip()
                if not _keep_line(text, float(score), self.min_score):
                    continue
                xs, ys = quad[:, 0].clip(0, width), quad[:, 1].clip(0, height)
                boxes.append(Box(x=float(xs.min()) / width, y=float(ys.min()) / height,
                                 w=float(xs.max() - xs.min()) / width, h=float(ys.max() - ys.min()) / height,
                                 score=float(score), label=text))
                lines.append(text)
        return SignalOutput(text="\n".join(index_text(line) for line in lines), facts={"ocr_lines": len(lines)},
                            boxes=boxes, stage_seconds=stages)


def _open(path: str, max_side: int) -> Image.Image:
    """The photo at ``path`` decoded in RGB, EXIF orientation applied, at least ``max_side`` on its short side
    where the file is larger (JPEG draft decoding); SignalError when it cannot be read."""
    from cots_core.media import MediaError, read_image

    try:
        return read_image(path, target_size=max(1, max_side // 2)).frames[0]
    except MediaError as error:
        raise SignalError(f"{path}: {error}") from error
