"""The search-quality benchmark: real object photographs with human-written captions, from a Debian package.

    .venv/bin/python bench/quality_data.py [--deb tuxpaint-stamps-default_*.deb] [--out DIR]

Source: Debian `tuxpaint-stamps-default` (GPL-2; Bill Kendrick and the Tux Paint contributors). Its stamps
are cut-out photographs of animals, food, plants, tools, instruments, vehicles... each with a `.txt` whose
first line is an English description written by a person ("A giraffe.", "Holly leaves are shiny and have
prickles!"). Drawn, rendered and mirrored stamps are left out (the lists below were made by looking at every
stamp), and identical pixels are kept once. Photos are flattened onto white and written as JPEG under
neutral names (a hash of the stamp's path), so a file name says nothing about the content.

The split is BY PHOTO (seed 0): 60 % train, 20 % validation, 20 % test, written as sidecar folders
`DIR/{train,val,test}/img_XXXXXXXXXX.{jpg,txt}` plus `DIR/splits.json` (stamp path -> split). Recipes
are chosen on `val` and reported on `test`. The data is derived, never committed: the default DIR is
`<cots data dir>/bench/tuxpaint` (COTS_DATA_DIR overrides). Without --deb, `apt-get download` fetches the
package (the Debian archive is the only network use).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps"
SPLITS = (("train", 0.6), ("val", 0.2), ("test", 0.2))
SEED = 0
# Drawings, symbols and renderings, found by looking at every stamp (only photographs stay).
EXCLUDED_FOLDERS = ("symbols/", "seasonal/easter/", "seasonal/hanukkah/", "seasonal/newyears/",
                    "space/planets/", "town/flags/", "town/roadsigns/")
KEPT_IN_EXCLUDED = ("town/roadsigns/traffic_cone.png", "town/roadsigns/railroad_crossing.png")
EXCLUDED_STAMPS = frozenset("""
animals/mammals/hedgehog.png clothes/button.png clothes/hats/blue_fedora.png clothes/hats/feathered_hat.png
clothes/hats/green_fedora.png clothes/hats/propeller_hat.png clothes/hats/sombrero.png clothes/hats/tophat.png
clothes/t_baseballcap.png clothes/t_glove.png clothes/t_jacket.png clothes/t_pants.png clothes/t_poloshirt.png
clothes/t_scarf.png clothes/t_shirt.png clothes/t_sock.png clothes/t_tshirt.png food/pizza.png medical/tooth.png
military/ammunition/old_naval_shell.png naturalforces/lightningbolt.png people/body_parts/eye.png
seasonal/christmas/Santa.png seasonal/christmas/bow.png seasonal/christmas/candy_cane.png
seasonal/christmas/hard_candy.png seasonal/christmas/lamp.png seasonal/christmas/santahat.png
seasonal/christmas/star.png seasonal/christmas/stocking.png seasonal/christmas/tree.png
seasonal/christmas/xmas_tp_bulb.png seasonal/halloween/bat_left.png seasonal/halloween/blackcat.png
seasonal/halloween/ghost.png seasonal/halloween/skull.png seasonal/halloween/spider.png
seasonal/halloween/jackolantern_mean.png seasonal/halloween/grave-c.png town/monuments/inukshuk-outline.png
vehicles/7spoke256.png
""".split())


def default_out() -> Path:
    from cots_core.paths import data_dir

    return data_dir() / "bench" / "tuxpaint"


def is_photo_stamp(relative: str) -> bool:
    """True for the stamps kept as photographs (see the module docstring)."""
    if "cartoon" in relative.split("/") or relative.endswith("_mirror.png") or relative in EXCLUDED_STAMPS:
        return False
    return relative in KEPT_IN_EXCLUDED or not relative.startswith(EXCLUDED_FOLDERS)


def stamp_captions(stamps: Path) -> dict[str, str]:
    """Stamp path (relative) -> its English description, for every photographic stamp that has one."""
    found = {}
    for path in sorted(stamps.rglob("*.png")):
        relative = path.relative_to(stamps).as_posix()
        text = path.with_suffix(".txt")
        if not is_photo_stamp(relative) or not text.is_file():
            continue
        english = text.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if english and english[0].strip():
            found[relative] = english[0].strip()
    return found


def flatten(path: Path) -> Image.Image:
    """The stamp on a white background (the cut-outs are transparent around the object)."""
    image = Image.open(path).convert("RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image).convert("RGB")


def assign_splits(names: list[str], seed: int = SEED) -> dict[str, str]:
    order = sorted(names)
    random.Random(seed).shuffle(order)
    bounds, start = {}, 0
    for index, (split, fraction) in enumerate(SPLITS):
        end = len(order) if index == len(SPLITS) - 1 else start + round(fraction * len(order))
        bounds.update({name: split for name in order[start:end]})
        start = end
    return bounds


def extract(deb: Path | None, scratch: Path) -> Path:
    if deb is None:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=scratch, check=True, capture_output=True)
        deb = next(scratch.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch / "root")], check=True)
    return scratch / "root" / STAMPS


def assemble(deb: Path | None, out: Path) -> dict[str, int]:
    """Write the benchmark under ``out``; returns the number of photos per split."""
    with tempfile.TemporaryDirectory() as tmp:
        stamps = extract(deb, Path(tmp))
        captions = stamp_captions(stamps)
        seen: set[str] = set()
        images = {}
        for relative in sorted(captions):
            image = flatten(stamps / relative)
            digest = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
            if digest in seen:  # the same photo filed twice (e.g. under military/ and people/)
                continue
            seen.add(digest)
            images[relative] = image
        splits = assign_splits(list(images))
        for relative, image in images.items():
            folder = out / splits[relative]
            folder.mkdir(parents=True, exist_ok=True)
            stem = "img_" + hashlib.sha1(relative.encode()).hexdigest()[:10]
            image.save(folder / f"{stem}.jpg", quality=92)
            (folder / f"{stem}.txt").write_text(captions[relative] + "\n", encoding="utf-8")
    (out / "splits.json").write_text(json.dumps(dict(sorted(splits.items())), indent=1) + "\n")
    return {split: sum(1 for s in splits.values() if s == split) for split, _ in SPLITS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE} .deb (default: apt-get download)")
    parser.add_argument("--out", type=Path, help="output folder (default: <cots data dir>/bench/tuxpaint)")
    args = parser.parse_args()
    out = args.out or default_out()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: remove it first (the benchmark is rebuilt from scratch)")
    print(json.dumps({"out": str(out), **assemble(args.deb, out)}))


if __name__ == "__main__":
    main()
