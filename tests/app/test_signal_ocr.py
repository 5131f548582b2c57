"""Text in photos (issue 14): words rendered onto real photos come back, photos without text give none,
bad files raise SignalError, a missing package is reported in one line."""
from __future__ import annotations

import random
import sys

import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from app.library.signals.ocr import OcrSignal, index_text


@pytest.fixture(scope="module")
def ocr() -> OcrSignal:
    return OcrSignal(threads=1)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _draw(photo: Image.Image, text: str, size: int, xy: tuple[int, int], sign: bool) -> tuple[int, int, int, int]:
    """Draw ``text`` like a sign (dark on a light plate) or a caption (white, outlined); its pixel box."""
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(photo)
    box = draw.textbbox(xy, text, font=font)
    if sign:
        pad = size // 4
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(235, 230, 215))
        draw.text(xy, text, font=font, fill=(20, 30, 60))
    else:
        draw.text(xy, text, font=font, fill="white", stroke_width=max(1, size // 12), stroke_fill="black")
    return box


def _words(text: str) -> set[str]:
    return {w.strip(".,:;!?").casefold() for w in text.split()}


def test_rendered_words_come_back_with_their_boxes(ocr: OcrSignal):
    photo = _photo("chelsea")  # 451 x 300
    _draw(photo, "RECEIPT IKEA 2019", 30, (20, 20), sign=True)
    stop_box = _draw(photo, "STOP", 44, (250, 200), sign=False)
    out = ocr.extract("chelsea.png", photo)
    assert {"receipt", "ikea", "2019", "stop"} <= _words(out.text)
    assert out.facts["ocr_lines"] == len(out.boxes) == len(out.text.splitlines())
    assert out.text.splitlines()[0] == "RECEIPT IKEA 2019"  # reading order: the top line first
    stop = next(b for b in out.boxes if "STOP" in b.label)
    for value in (stop.x, stop.y, stop.w, stop.h):
        assert 0.0 <= value <= 1.0
    # the line box sits on the drawn word (in fractions of the photo)
    centre = ((stop.x + stop.w / 2) * photo.width, (stop.y + stop.h / 2) * photo.height)
    assert stop_box[0] <= centre[0] <= stop_box[2] and stop_box[1] <= centre[1] <= stop_box[3]
    assert stop.score >= ocr.min_score


@pytest.mark.slow
def test_words_come_back_across_sizes_styles_and_placements(ocr: OcrSignal):
    """Share of rendered words found over 5 placements x 2 photos x 3 sizes, two styles. Measured 0.97
    (59/61) with 1 and 2 threads; what is missed is a space swallowed between capitals ("RECEIPTIKEA")."""
    found = total = 0
    for seed in range(5):
        rng = random.Random(seed)
        for base in ("coffee", "astronaut"):
            for size in (32, 44, 60):
                photo = _photo(base)
                fits = [t for t in ("STOP", "EXIT 12", "Gate B12", "Happy Birthday", "RECEIPT IKEA 2019")
                        if ImageDraw.Draw(photo).textlength(t, font=ImageFont.load_default(size=size))
                        < photo.width - 20]
                text = rng.choice(fits)
                width = ImageDraw.Draw(photo).textlength(text, font=ImageFont.load_default(size=size))
                xy = (rng.randint(5, int(photo.width - width - 10)), rng.randint(5, photo.height - size - 15))
                _draw(photo, text, size, xy, sign=rng.random() < 0.5)
                want = _words(text)
                found += len(want & _words(ocr.extract(base, photo).text))
                total += len(want)
    assert found / total >= 0.75, (found, total)


@pytest.mark.slow
def test_a_large_photo_is_shrunk_and_its_boxes_stay_in_fractions(ocr: OcrSignal):
    photo = _photo("coffee").resize((3000, 2000))
    box = _draw(photo, "Cafe de Flore", 150, (1200, 1500), sign=True)
    out = ocr.extract("big.jpg", photo)
    assert {"cafe", "de", "flore"} <= _words(out.text)
    line = out.boxes[0]
    assert abs(line.x - box[0] / 3000) < 0.03 and abs(line.y - box[1] / 2000) < 0.05


@pytest.mark.parametrize("name", ["coffee", "chelsea", "astronaut"])
def test_a_photo_without_text_gives_no_words(ocr: OcrSignal, name: str):
    out = ocr.extract(name, _photo(name))
    assert len(_words(out.text) - {""}) <= 1, out.text


def test_the_file_is_opened_when_no_image_is_given(ocr: OcrSignal, tmp_path):
    photo = _photo("chelsea")
    _draw(photo, "STOP", 48, (150, 120), sign=True)
    path = tmp_path / "sign.jpg"
    photo.save(path, quality=92)
    assert "stop" in _words(ocr.extract(str(path), None).text)


def test_unavailable_is_none_when_installed_and_names_the_package_when_not(monkeypatch):
    assert OcrSignal().unavailable() is None
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # makes `import rapidocr` raise ImportError
    why = OcrSignal().unavailable()
    assert why is not None and "rapidocr" in why and "pip install" in why and "\n" not in why


def test_words_the_recogniser_merged_are_indexed_with_their_parts_too():
    assert index_text("EXIT12 GateB12") == "EXIT12 EXIT 12 GateB12 Gate B12 B 12"
    assert index_text("RECEIPT IKEA 2019") == "RECEIPT IKEA 2019"  # nothing merged: unchanged


def test_prepare_opens_the_sessions_once_even_beside_a_first_extract():
    """``prepare()`` (called by the indexer while embeddings run) opens the detector and recogniser sessions that
    rapidocr would open on the first photo; an extract racing it shares the one engine and still reads text."""
    import threading

    signal = OcrSignal(threads=1)
    photo = _photo("coffee")
    _draw(photo, "OPEN 24 HOURS", 40, (40, 40), sign=True)
    found = []
    reader = threading.Thread(target=lambda: found.append(signal.extract("", photo)))
    reader.start()
    signal.prepare()
    reader.join()
    engine = signal._load()
    assert engine.text_det is not None and engine.text_rec is not None
    assert {"open", "24", "hours"} <= _words(found[0].text)
    signal.prepare()  # a second call loads nothing new
    assert signal._load() is engine
    # onnxruntime keeps its memory arena (rapidocr turns it off): the detector reuses its activations' memory
    for model in (engine.text_det, engine.text_rec):
        assert model.session.session.get_session_options().enable_cpu_mem_arena
