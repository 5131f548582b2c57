"""Faces in videos (issue 32, item 2): the faces pass on a video's sampled frames beside the video's
embedding pass, per video.

    .venv/bin/python bench/video_faces_cost.py [--work DIR] [--repeat 3] [--json OUT]

Videos: the shipped ``resources/sample_library/clips/scenes.mp4`` (no people), and clips made here with
cv2.VideoWriter (into --work, default /tmp/cots_video_faces) from the sample library's photos: each photo held
5 s with a slow pan so that no two frames are alike, 30 s at 30 fps, at 1280x720 and 1920x1080; "people" holds
Grace Hopper, the astronaut and the cameraman between photos without anyone, "nobody" only photos without.
Per video and repeat, in one loop so that the shared machine disturbs both columns alike:
- embedding pass: the indexer's read (``MEDIA_KINDS["video"].read`` with ``IndexOptions``' defaults: a frame
  every 2 s, at most 32, at the model's size), the preprocessing and the image tower over all the frames
  (the default model on the CPU);
- faces pass: what the second pass does for a video (``signal_runner.decode_video_frames``): its frames at
  the embedding's times decoded at the faces signal's side (``video_frames_at``), ``FaceSignal.extract_frames``
  and the thinning (``face_grouping.keep_video_faces``).
Medians over the repeats; the faces' models are loaded before timing (once per run in the app).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "sample_library"
PEOPLE = ["people/grace_hopper.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg", "camera.jpg", "chelsea.jpg"]
NOBODY = ["coffee.jpg", "rocket.jpg", "chelsea.jpg", "coins.jpg", "hubble_deep_field.jpg", "coffee.jpg"]
FPS = 30
SECONDS_EACH = 5


def make_clip(path: Path, photos: list[str], size: tuple[int, int]) -> Path:
    """A clip of ``photos`` (sample library paths), each filling the frame's height and panning slowly."""
    import cv2

    if path.exists():
        return path
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, size)
    width, height = size
    for name in photos:
        photo = Image.open(SAMPLES / name).convert("RGB")
        scale = 1.15 * max(width / photo.width, height / photo.height)
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR)
        spare_x, spare_y = photo.width - width, photo.height - height
        frames = FPS * SECONDS_EACH
        for i in range(frames):
            left, top = round(spare_x * i / frames), round(spare_y / 2)
            crop = np.asarray(photo.crop((left, top, left + width, top + height)))
            writer.write(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def videos(work: Path) -> list[Path]:
    work.mkdir(parents=True, exist_ok=True)
    made = [make_clip(work / f"{name}_{size[1]}p.mp4", photos, size)
            for name, photos in (("people", PEOPLE), ("nobody", NOBODY)) for size in ((1280, 720), (1920, 1080))]
    return [SAMPLES / "clips" / "scenes.mp4", *made]


def measure(path: Path, encoder, faces) -> dict:
    """One video: the embedding pass and the faces pass, timed."""
    import torch

    from app.library.face_grouping import keep_video_faces
    from app.library.indexer import IndexOptions
    from cots_core.media import MEDIA_KINDS, ReadOptions, video_frames_at

    options = IndexOptions()
    started = time.perf_counter()
    decoded = MEDIA_KINDS["video"].read(path, ReadOptions(encoder.image_size, options.max_pixels,
                                                         options.video_every_s, options.video_max_frames))
    read = time.perf_counter() - started
    pixels = torch.stack([encoder.preprocess(frame) for frame in decoded.frames])
    encoder.encode_images(pixels)
    embed = time.perf_counter() - started
    started = time.perf_counter()
    frames = video_frames_at(path, decoded.times, long_side=faces.decode_side)
    decode = time.perf_counter() - started
    found = faces.extract_frames(str(path), frames)
    kept = keep_video_faces(found.boxes, found.vectors)
    total = time.perf_counter() - started
    return {"video": path.name, "duration_s": round(decoded.duration or 0.0, 1), "frames": len(decoded.times),
            "size": f"{decoded.width}x{decoded.height}", "embed_read_s": read, "embed_s": embed,
            "faces_decode_s": decode, "faces_s": total, "faces_found": len(found.boxes), "faces_kept": len(kept),
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cots_video_faces"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from app.library.encoder import Encoder
    from app.library.signals.faces import FaceSignal

    encoder = Encoder.load(device="cpu")
    encoder.prepare_images()
    faces = FaceSignal()
    faces.models()
    clips = videos(args.work)
    rows = [measure(path, encoder, faces) for _ in range(args.repeat) for path in clips]
    summary = []
    for path in clips:
        mine = [r for r in rows if r["video"] == path.name]
        median = {key: statistics.median(r[key] for r in mine)
                  for key in ("embed_read_s", "embed_s", "faces_decode_s", "faces_s", "load")}
        summary.append({**mine[0], **median, "ratio": median["faces_s"] / median["embed_s"]})
    print("| video | size | length | frames | embedding pass (read + model) | faces pass (decode + faces) "
          "| faces / embedding | faces found / kept | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['video']} | {s['size']} | {s['duration_s']:.0f} s | {s['frames']} "
              f"| {s['embed_s']:.2f} s ({s['embed_read_s']:.2f} + {s['embed_s'] - s['embed_read_s']:.2f}) "
              f"| {s['faces_s']:.2f} s ({s['faces_decode_s']:.2f} + {s['faces_s'] - s['faces_decode_s']:.2f}) "
              f"| {s['ratio']:.1f}x | {s['faces_found']} / {s['faces_kept']} | {s['load']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
