"""Every data format loads; every bad-row kind is skipped and counted; splits never overlap."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.trainer.conftest import write_image, write_truncated_jpeg, write_video
from trainer.data import PairDataset, ResumableBatchSampler, collate_pairs, detect_format, load_records
from trainer.data.media import load_image, read_video_frames
from trainer.data.records import Record
from trainer.data.split import holdout_split, split_records
from trainer.data.webdataset import ShardStream, expand_braces, read_holdout


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1) / 255


def test_sidecar_folder_with_every_bad_kind(tmp_path):
    ok = write_image(tmp_path / "beach.jpg")
    ok.with_suffix(".txt").write_text("a beach\n\nthe sea at dusk\n")
    write_image(tmp_path / "sub" / "dog.png").with_suffix(".txt").write_text("a dog\n")
    write_video(tmp_path / "clip.mp4").with_suffix(".txt").write_text("a fading clip\n")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    (tmp_path / "broken.txt").write_text("broken\n")
    write_truncated_jpeg(tmp_path / "cut.jpg").with_suffix(".txt").write_text("cut\n")
    write_image(tmp_path / "silent.png").with_suffix(".txt").write_text("  \n\n")
    write_image(tmp_path / "uncaptioned.png")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "bad.txt").write_text("bad video\n")
    write_video(tmp_path / "empty.avi", frames=0).with_suffix(".txt").write_text("nothing\n")
    (tmp_path / "notes.md").write_text("ignored")

    records, report = load_records(tmp_path)
    assert detect_format(tmp_path) == "folder"
    by_name = {Path(r.path).name: r for r in records}
    assert set(by_name) == {"beach.jpg", "dog.png", "clip.mp4"}
    assert by_name["beach.jpg"].captions == ["a beach", "the sea at dusk"]
    assert by_name["clip.mp4"].kind == "video"
    assert report.skipped == {"unreadable image": 1, "truncated image": 1, "empty caption": 1, "no caption": 1,
                              "video does not open": 1, "video has no frames": 1}
    text = report.summary()
    assert "2 images, 1 videos, 4 captions" in text and "skipped 6" in text and "e.g." in text


def test_images_that_fail_while_verified_are_counted_by_their_reason(tmp_path):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    for name, fmt in (("cut.png", "PNG"), ("cut.webp", "WEBP")):  # Pillow raises OSError for both
        data = io.BytesIO()
        noise.save(data, fmt)
        (tmp_path / name).write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
        (tmp_path / name).with_suffix(".txt").write_text("cut\n")
    records, report = load_records(tmp_path)
    assert records == [] and report.skipped == {"truncated image": 1, "unreadable image": 1}
    assert sorted(example.split(": ", 1)[0] for example in report.examples) == ["truncated image", "unreadable image"]
    assert all(str(tmp_path) in example for example in report.examples)


def test_manifests_csv_tsv_jsonl_with_missing_file_and_empty_caption(tmp_path):
    write_image(tmp_path / "img" / "a.jpg")
    write_image(tmp_path / "img" / "b.png")
    (tmp_path / "m.csv").write_text('path,caption\nimg/a.jpg,"a red, wide box"\nimg/a.jpg,second caption\n'
                                    "img/b.png,\nimg/gone.jpg,lost\nimg/b.png,a b image\n")
    (tmp_path / "m.tsv").write_text("path\tcaption\nimg/a.jpg\tfirst\nimg/b.png\tsecond\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "img/a.jpg", "caption": "j1"}) + "\n{broken\n"
                                      + json.dumps({"file": "img/b.png", "text": "j2", "split": "val"}) + "\n")
    records, report = load_records(tmp_path / "m.csv")
    assert [(Path(r.path).name, r.captions) for r in records] == [
        ("a.jpg", ["a red, wide box", "second caption"]), ("b.png", ["a b image"])]
    assert report.skipped == {"empty caption": 1, "missing file": 1}
    assert len(load_records(tmp_path / "m.tsv")[0]) == 2
    records, report = load_records(tmp_path / "m.jsonl")
    assert [r.split for r in records] == [None, "val"]
    assert report.skipped == {"malformed row": 1}


def test_manifest_without_header_is_an_error(tmp_path):
    (tmp_path / "m.csv").write_text("a.jpg,caption\n")
    with pytest.raises(ValueError, match="header"):
        load_records(tmp_path / "m.csv")


def test_coco_and_karpathy_json(tmp_path):
    write_image(tmp_path / "train2014" / "1.jpg")
    write_image(tmp_path / "train2014" / "2.jpg")
    coco = {"images": [{"id": 1, "file_name": "train2014/1.jpg"}, {"id": 2, "file_name": "train2014/2.jpg"},
                       {"id": 3, "file_name": "train2014/3.jpg"}],
            "annotations": [{"image_id": 1, "caption": "one"}, {"image_id": 1, "caption": "uno"},
                            {"image_id": 2, "caption": " "}, {"image_id": 3, "caption": "missing"},
                            {"image_id": 9, "caption": "orphan"}]}
    (tmp_path / "captions.json").write_text(json.dumps(coco))
    records, report = load_records(tmp_path / "captions.json")
    assert [(Path(r.path).name, r.captions) for r in records] == [("1.jpg", ["one", "uno"])]
    assert report.skipped == {"empty caption": 1, "missing file": 1, "malformed row": 1}

    karpathy = {"dataset": "coco", "images": [
        {"filepath": "train2014", "filename": "1.jpg", "split": "train", "sentences": [{"raw": "a"}, {"raw": "b"}]},
        {"filepath": "train2014", "filename": "2.jpg", "split": "test", "sentences": [{"raw": "c"}]}]}
    (tmp_path / "dataset_coco.json").write_text(json.dumps(karpathy))
    records, _ = load_records(tmp_path / "dataset_coco.json")
    assert [r.split for r in records] == ["train", "test"]
    train, val = split_records(records, val_split="test")
    assert [Path(r.path).name for r in train] == ["1.jpg"] and [Path(r.path).name for r in val] == ["2.jpg"]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def make_shards(root: Path, n_shards: int = 3, per_shard: int = 4) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        with tarfile.open(root / f"{s:06d}.tar", "w") as tar:
            for k in range(per_shard):
                key = f"{s:03d}{k:03d}"
                _add(tar, f"{key}.jpg", _png((s * 60, k * 40, 100)))
                _add(tar, f"{key}.txt", f"shard {s} item {k}".encode())
            _add(tar, "lonely.txt", b"caption without image")
            _add(tar, "mute.png", _png((1, 2, 3)))
            _add(tar, "mute.txt", b"   ")
            _add(tar, "junk.jpg", b"garbage")
            _add(tar, "junk.txt", b"junk caption")
    return str(root / f"{{000000..{n_shards - 1:06d}}}.tar")


def test_brace_expansion():
    assert expand_braces("s/{000..002}.tar") == ["s/000.tar", "s/001.tar", "s/002.tar"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]


def test_webdataset_shards_stream_and_holdout(tmp_path):
    spec = make_shards(tmp_path / "shards")
    assert detect_format(spec) == "shards"
    records, report = load_records(spec)  # everything, in memory
    assert len(records) == 12
    assert report.skipped == {"missing file": 3, "empty caption": 3, "unreadable image": 3}
    val = read_holdout(spec, 0.3, seed=0)
    stream = ShardStream(spec, to_tensor, seed=0, val_fraction=0.3, shuffle_buffer=4)
    seen = []
    for sample in stream:
        seen.append(sample["path"])
        if len(seen) == 12 - len(val):
            break
    assert not set(seen) & {r.path for r in val}, "held-out samples leaked into training"
    assert len(set(seen)) == 12 - len(val)
    # decoding failures ride along with the next good sample; one sample into epoch 2, all 3 have arrived
    reasons = [r for s, _ in zip(ShardStream(spec, to_tensor, seed=0, shuffle_buffer=4), range(13))
               for r in s["skipped"]]
    assert reasons.count("unreadable image") >= 3 and reasons.count("missing file") >= 3
    # two ranks split the stream without overlap
    ranks = [ShardStream(spec, to_tensor, seed=0, rank=r, world_size=2, shuffle_buffer=1) for r in range(2)]
    first = [{s["path"] for s, _ in zip(r, range(4))} for r in ranks]
    assert not first[0] & first[1]


def test_image_modes_exif_and_alpha(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    rgba.save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").getpixel((0, 0)) == (255, 255, 255)
    Image.new("L", (4, 4), 128).convert("P").save(tmp_path / "pal.gif")
    assert load_image(tmp_path / "pal.gif").mode == "RGB"
    image = Image.new("RGB", (30, 10), (0, 0, 255))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (10, 30)


def test_video_frames_are_the_ones_search_embeds(tmp_path):
    """Training and evaluation take a video's frames at the times the index does (one every 2 s from the
    start), capped at their own count and spread evenly past it, as the index is past 32."""
    from cots_core.media import ReadOptions, read_video, video_frame_indices, video_sample_times
    from trainer.data.media import SEARCH_MAX_FRAMES

    clip = write_video(tmp_path / "v.avi", frames=50)  # 10 s at 5 fps, frame i at level 20 i (mod 256)
    frames = read_video_frames(clip, 8)
    indexed = read_video(clip)
    assert len(frames) == len(indexed.frames) == 5 and indexed.times == [0, 2, 4, 6, 8]
    levels = [frame.getpixel((0, 0))[0] for frame in frames]
    assert levels == pytest.approx([0, 200, 400 % 256, 600 % 256, 800 % 256], abs=6)  # frames 0, 10, 20, 30, 40
    assert levels == pytest.approx([frame.getpixel((0, 0))[0] for frame in indexed.frames], abs=2)
    for seconds, cap in ((10, 4), (61, 8), (61, SEARCH_MAX_FRAMES), (200, SEARCH_MAX_FRAMES)):
        expected = [round(t * 25) for t in video_sample_times(seconds, max_frames=cap)]  # how the index seeks
        assert video_frame_indices(seconds * 25, 25.0, max_frames=cap) == expected
    assert len(video_frame_indices(61 * 25, 25.0, max_frames=8)) == 8  # past the cap: spread evenly
    assert len(video_frame_indices(61 * 25, 25.0, max_frames=SEARCH_MAX_FRAMES)) == 31  # one every 2 s, as indexed
    assert ReadOptions().max_frames == SEARCH_MAX_FRAMES  # evaluation's default cap is the index's


def test_the_trainer_samples_video_frames_as_it_did_through_the_shared_reader(tmp_path):
    """The trainer's frames come from cots_core.media.read_video (one decoder, issue 22) and are the ones its
    own sampler took (checked frame for frame against it on .avi/.mp4/.mkv/raw MJPEG): full resolution, one
    picked without decoding the others, and a stream with no frame count decoded through and sampled."""
    from cots_core.media import read_video
    from trainer.data.media import read_video_frame

    clip = write_video(tmp_path / "v.avi", frames=50, size=48)  # 10 s at 5 fps, frame i at level 20 i (mod 256)
    frames = read_video_frames(clip, 3)  # past the cap of 3: seconds 0, 3.33, 6.67, frames 0, 17, 33
    assert [frame.size for frame in frames] == [(48, 48)] * 3
    levels = [frame.getpixel((0, 0))[0] for frame in frames]
    assert levels == pytest.approx([0, 17 * 20 % 256, 33 * 20 % 256], abs=6)
    assert [read_video_frame(clip, which, 3).getpixel((0, 0))[0] for which in range(4)] == levels + levels[:1]

    stream = write_video(tmp_path / "v.mjpeg", frames=150, fourcc="MJPG")  # raw MJPEG: no frame count
    levels = [frame.getpixel((0, 0))[0] for frame in read_video_frames(stream, 8)]
    assert levels == pytest.approx([0, 50 * 20 % 256, 100 * 20 % 256], abs=6)  # OpenCV's 25 fps: 0, 2, 4 s
    assert read_video_frame(stream, 2).getpixel((0, 0))[0] == levels[2]
    assert len(read_video(stream).frames) == 1  # the indexer takes the first frame rather than decode it twice


def test_holdout_split_by_item_never_overlaps():
    records = [Record(f"/x/{i}.jpg", [f"c{i}a", f"c{i}b"]) for i in range(50)]
    train, val = holdout_split(records, 0.2, seed=3)
    assert len(val) == 10 and len(train) == 40
    assert not {r.path for r in train} & {r.path for r in val}
    assert holdout_split(records, 0.2, seed=3)[1] == val
    assert holdout_split(records, 0.2, seed=4)[1] != val
    explicit = [records[0]]
    train, val = split_records(records, explicit)
    assert records[0].path not in {r.path for r in train} and val == explicit


def test_pair_dataset_replaces_unreadable_and_counts(tmp_path):
    good = write_image(tmp_path / "good.png")
    gone = tmp_path / "gone.png"
    records = [Record(str(gone), ["lost"]), Record(str(good), ["kept one", "kept two"])]
    dataset = PairDataset(records, to_tensor, seed=0)
    sample = dataset[(0, 0)]
    assert sample["text"] == "kept one" and sample["skipped"] == ["missing file"]
    batch = collate_pairs([dataset[(i, 0)] for i in range(3)])
    assert batch["pixels"].shape == (3, 3, 8, 8) and batch["skipped"] == ["missing file"]
    # the two captions of one photo share its item key (their queued pairs are positives of each other)
    batch = collate_pairs([dataset[(1, 0)], dataset[(2, 0)], dataset[(0, 0)]])  # the last: a replacement
    assert batch["texts"] == ["kept one", "kept two", "kept one"]
    keys = batch["item_keys"].tolist()
    assert keys[0] == keys[1] == keys[2] >= 0
    other = collate_pairs([PairDataset([Record(str(write_image(tmp_path / "b.png")), ["x"])], to_tensor)[0]])
    assert other["item_keys"].tolist() != keys[:1]


def test_batch_sampler_is_resumable_and_splits_ranks():
    full = ResumableBatchSampler(10, 2, seed=1)
    it = iter(full)
    batches = [next(it) for _ in range(8)]  # crosses an epoch boundary (5 batches per epoch)
    resumed = iter(ResumableBatchSampler(10, 2, seed=1, start=3))
    assert [next(resumed) for _ in range(5)] == batches[3:]
    assert batches[5][0][1] == 1  # second epoch
    assert sorted(i for b in batches[:5] for i, _ in b) == list(range(10))
    r0, r1 = (iter(ResumableBatchSampler(10, 2, seed=1, rank=r, world_size=2)) for r in range(2))
    single = iter(ResumableBatchSampler(10, 4, seed=1))
    assert next(r0) + next(r1) == next(single)
