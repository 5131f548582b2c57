"""`cots eval` never scores an item a fine-tune's caption memory holds (trainer.memory_items): not in a copied
folder, not through a model copied without its record, not on the run's own split without best_metrics.json.
Each test runs the real CLI on one tiny fine-tune whose memory holds all 24 of its items."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from app.cli import main
from tests.trainer.conftest import write_video
from trainer.data.records import Record
from trainer.memory_items import ITEMS_FILE, remembered_items, save_memory_items
from trainer.synth import generate_synthetic


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("leak")
    data, unseen = root / "synth", root / "unseen"
    generate_synthetic(24, data, seed=3, size=64)
    generate_synthetic(6, unseen, seed=4, size=64)
    quick = ["--steps", "2", "--batch-size", "4", "--device", "cpu", "--no-progress"]
    assert main(["train", "pretrain", "--preset", "tiny", "--data", str(data), "--out", str(root / "pre"),
                 "--val-fraction", "0", *quick]) == 0
    with pytest.MonkeyPatch.context() as patch:  # the held-out check keeps the memory whatever 2 steps find
        patch.setattr("trainer.caption_memory.evaluate_retrieval", lambda *args, **kwargs: {"rsum": 100.0})
        assert main(["train", "finetune", "--from", str(root / "pre"), "--data", str(data),
                     "--out", str(root / "run"), "--val-fraction", "0.25", *quick]) == 0
    best = root / "run" / "best"
    assert json.loads((best / "config.json").read_text())["vision"]["caption_memory"] == 24
    return {"root": root, "data": data, "unseen": unseen, "run": root / "run", "best": best}


def cots_eval(capsys, *args: str) -> tuple[int, list[str]]:
    """Exit status and the stderr lines of `cots eval ARGS`."""
    capsys.readouterr()
    code = main(["eval", *args, "--device", "cpu", "--json"])
    return code, capsys.readouterr().err.splitlines()


def refusal(lines: list[str]) -> str:
    """The one line a refused command printed (no traceback)."""
    assert not any("Traceback" in line for line in lines)
    errors = [line for line in lines if line.startswith("cots: error: ")]
    assert len(errors) == 1, lines
    return errors[0]


def model_copy(best: Path, to: Path, without: tuple[str, ...]) -> Path:
    shutil.copytree(best, to, ignore=lambda _, names: [n for n in names if n in without])
    return to


def test_the_same_photos_in_a_copied_folder_are_not_scored(run, tmp_path, capsys):
    copy = shutil.copytree(run["data"], tmp_path / "copy")
    code, lines = cots_eval(capsys, "--model", str(run["run"]), "--data", str(copy))
    assert code == 2 and "remembers every item of --data" in refusal(lines)

    # a mix: 3 byte copies, 3 copies written again without loss (other bytes, the same pixels), 6 unseen photos
    mixed = shutil.copytree(run["unseen"], tmp_path / "mixed")
    for i, photo in enumerate(sorted(run["data"].glob("*.png"))[:6]):
        target = mixed / f"copied {i}.png"
        if i < 3:
            shutil.copy(photo, target)
        else:
            note = PngImagePlugin.PngInfo()
            note.add_text("Comment", "re-saved")
            Image.open(photo).save(target, compress_level=1, pnginfo=note)
            assert target.read_bytes() != photo.read_bytes()
        shutil.copy(photo.with_suffix(".txt"), target.with_suffix(".txt"))
    code, lines = cots_eval(capsys, "--model", str(run["run"]), "--data", str(mixed))
    assert code == 0
    assert "left out 6 items that the model's caption memory holds (scored: 6)" in lines


def test_a_model_copied_without_its_record_is_refused(run, tmp_path, capsys):
    bare = model_copy(run["best"], tmp_path / "bare", without=(ITEMS_FILE,))
    for data in (run["data"], run["unseen"]):  # without the record nothing it scores can be trusted
        code, lines = cots_eval(capsys, "--model", str(bare), "--data", str(data))
        line = refusal(lines)
        assert code == 2 and "caption memory of 24 items" in line and ITEMS_FILE in line


def test_the_own_split_is_refused_without_best_metrics(run, tmp_path, capsys):
    # the record alone decides: its held-out items are remembered, so nothing of the split is left to score
    no_metrics = model_copy(run["best"], tmp_path / "no_metrics", without=("best_metrics.json",))
    code, lines = cots_eval(capsys, "--model", str(no_metrics))
    assert code == 2 and "remembers its validation items" in refusal(lines)
    # and without the record as well: refused for the missing record
    bare = model_copy(run["best"], tmp_path / "bare", without=("best_metrics.json", ITEMS_FILE))
    code, lines = cots_eval(capsys, "--model", str(bare))
    assert code == 2 and ITEMS_FILE in refusal(lines)


def test_a_path_only_record_is_matched_by_content_or_refused(run, tmp_path, capsys):
    old = model_copy(run["best"], tmp_path / "old", without=(ITEMS_FILE,))
    paths = [item["path"] for item in json.loads((run["best"] / ITEMS_FILE).read_text())["items"]]
    (old / ITEMS_FILE).write_text(json.dumps(paths))  # the format before the digests
    copy = shutil.copytree(run["data"], tmp_path / "copy")
    code, lines = cots_eval(capsys, "--model", str(old), "--data", str(copy))
    assert code == 2 and "remembers every item of --data" in refusal(lines)

    (old / ITEMS_FILE).write_text(json.dumps(paths + [str(tmp_path / "moved away.png")]))
    code, lines = cots_eval(capsys, "--model", str(old), "--data", str(run["unseen"]))
    assert code == 2 and "by path only" in refusal(lines)


def test_a_video_is_recognised_by_its_bytes(tmp_path):
    video = write_video(tmp_path / "clip.mp4")
    save_memory_items(tmp_path, [Record(str(video), ["a clip"], kind="video")])
    copy = shutil.copy(video, tmp_path / "elsewhere.mp4")
    remembered = remembered_items(tmp_path)
    assert remembered.holds(Record(str(copy), ["a clip"], kind="video"))
    other = write_video(tmp_path / "other.mp4", frames=12)
    assert not remembered.holds(Record(str(other), ["a clip"], kind="video"))
