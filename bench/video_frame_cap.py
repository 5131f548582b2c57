"""What a long video loses when training caps its frames: the index embeds one frame every 2 s (up to 32),
training the same frames up to ``--frames`` (default 8), spread evenly past that; measured with cots-lite.

    .venv/bin/python bench/video_frame_cap.py [--videos 12] [--seconds 60] [--seeds 3]

There is no video benchmark with real captions in this project, so this one is built from the sample
library's photos (resources/sample_library, captions written for this script): each video is a slideshow of
4 photos, three shown for 6 s and one for the rest, in a seeded order. A query is the caption of one of a
video's photos; a hit at 1 is a top-ranked video that shows that photo. Each video is represented three ways:
the index's frames (one every 2 s), training's (the same times, at most 8), and the trainer's sampler before
issue 21 (8 evenly spaced frames), at 2 frames/s. Every frame is one of the photos, so a frame's embedding is
its photo's (a video file would add only JPEG noise) and no file is written. Videos of 16 s or less get the
index's frames exactly in training.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cots_core import load_model  # noqa: E402
from cots_core.video_files import evenly_spaced, video_frame_indices  # noqa: E402
from trainer.data.media import SEARCH_MAX_FRAMES  # noqa: E402

LIBRARY = ROOT / "resources" / "sample_library"
CAPTIONS = {
    "astronaut.jpg": "an astronaut in a space suit", "camera.jpg": "an old camera",
    "chelsea.jpg": "a cat", "coffee.jpg": "a cup of coffee", "coins.jpg": "a pile of coins",
    "hubble_deep_field.jpg": "galaxies in deep space", "rocket.jpg": "a rocket on its launch pad",
    "Trip to China 2011/flower.jpg": "a flower", "Trip to China 2011/china.jpg": "a Chinese temple roof among trees",
    "people/grace_hopper.jpg": "a woman in a navy uniform",
}
FPS = 2  # frames per second of the slideshows
SHORT_S = 6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=12)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--train-frames", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args(argv)
    if args.seconds <= 3 * SHORT_S:
        p.error(f"--seconds must exceed {3 * SHORT_S}: three photos are shown for {SHORT_S} s each")
    model = load_model("cots-lite")
    names = sorted(CAPTIONS)
    photos = {n: Image.open(LIBRARY / n).convert("RGB").resize((224, 224)) for n in names}
    photo_vectors = model.encode_pil([photos[n] for n in names])  # every frame is one of these photos
    text = model.encode_texts([CAPTIONS[n] for n in names])
    count = args.seconds * FPS
    schemes = {"index (every 2 s, <= 32)": video_frame_indices(count, FPS, max_frames=SEARCH_MAX_FRAMES),
               f"training now (same times, <= {args.train_frames})": video_frame_indices(count, FPS, max_frames=args.train_frames),
               f"training before ({args.train_frames} evenly spaced)": evenly_spaced(count, args.train_frames)}
    results: dict[str, list] = {name: [] for name in schemes}
    cosines: dict[str, list] = {name: [] for name in schemes}
    for seed in range(args.seeds):
        rng = random.Random(seed)
        frame_photo, shown = [], []  # per video: which photo each frame shows; which photos it shows
        for _ in range(args.videos):
            chosen = rng.sample(names, 4)
            durations = [SHORT_S] * 3 + [args.seconds - 3 * SHORT_S]
            rng.shuffle(durations)
            frame_photo.append([names.index(n) for n, d in zip(chosen, durations) for _ in range(d * FPS)])
            shown.append({names.index(n) for n in chosen})
        for name, indices in schemes.items():
            videos = torch.stack([F.normalize(photo_vectors[[frames[i] for i in indices]].mean(0), dim=-1)
                                  for frames in frame_photo])
            if name.startswith("index"):
                reference = videos
            cosines[name].append(float((videos * reference).sum(1).min()))
            hits = [int(names.index(n) in shown[int((text[names.index(n)] @ videos.T).argmax())])
                    for v in range(args.videos) for n in (names[i] for i in shown[v])]
            results[name].append(100 * sum(hits) / len(hits))
    print(f"{args.videos} videos of {args.seconds} s (3 photos x {SHORT_S} s + 1 for the rest), "
          f"{args.seeds} seeded layouts, cots-lite; queries: the captions of each video's photos")
    print("| frames | text->video R@1 (mean of seeds) | worst cosine to the index's embedding |")
    print("|---|---|---|")
    for name in schemes:
        print(f"| {name}: {len(schemes[name])} | {sum(results[name]) / len(results[name]):.1f} | "
              f"{min(cosines[name]):.3f} |")
    print(json.dumps({"r1": results, "min_cosine": cosines}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
