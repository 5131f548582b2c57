"""The search-quality benchmark: real photographs with human-written captions, from two Debian packages.

    .venv/bin/python bench/quality_data.py [--deb PKG.deb ...] [--sources tuxpaint gcompris] [--out DIR]

Sources (bench/RESULTS.md, issue 10, describes them in full):
- `tuxpaint-stamps-default` (GPL-2; Bill Kendrick and the Tux Paint contributors). Its stamps are cut-out
  photographs of animals, food, plants, tools, instruments, vehicles... each with a `.txt` whose first line is
  an English description written by a person ("A giraffe.", "Holly leaves are shiny and have prickles!").
  Drawn, rendered and mirrored stamps are left out (the lists below were made by looking at every stamp),
  identical pixels are kept once, and the photos are flattened onto white.
- `gcompris-qt-data` (GPL-3.0-or-later; the GCompris contributors), whose Qt resource files (.rcc, read with
  PySide6's QResource) hold real photographs in four activities (every one was looked at; all are photos):
  `explore_monuments`, `explore_world_animals`, `explore_farm_animals`, whose board files give each photo a
  human title and description: caption = title + ". " + the description's first sentence ("Colosseum. The
  Colosseum or Coliseum is today the most recognizable of Rome's Classical buildings."); and
  `categorization`, whose photos carry only their file name ("hammer3.webp", "measuringTape2.webp"): caption =
  the file name without its digits, written as English words with an article by the table CATEGORIZATION_CAPTIONS
  ("hammer3" -> "A hammer.", "eiffelTower" -> "The Eiffel Tower."). Photos that repeat another photo of either
  package or one of the 23-photo set (tests/data/real_photos), by a near-identical 24x24 grey thumbnail, are
  left out (three categorization monuments that are the explore_monuments photos).

Every photo is written as JPEG under a neutral name (a hash of its path), so a file name says nothing about the
content. The split is BY PHOTO, per source (seed 0): 60 % train, 20 % validation, 20 % test; the tuxpaint part
is the same split, files and names as the tuxpaint-only benchmark of the first round. Written as sidecar
folders `DIR/{train,val,test}/img_XXXXXXXXXX.{jpg,txt}`, plus `DIR/splits.json` (source path -> split) and
`DIR/manifest.json` (file stem -> source, path, split). Recipes are chosen on `val` and reported on `test`. The
data is derived, never committed: the default DIR is `<cots data dir>/bench/quality` (COTS_DATA_DIR overrides).
Without --deb, `apt-get download` fetches the packages (the Debian archive is the only network use).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"tuxpaint": "tuxpaint-stamps-default", "gcompris": "gcompris-qt-data"}
STAMPS = "usr/share/tuxpaint/stamps"
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
GCOMPRIS_BOARDS = ("explore_monuments", "explore_world_animals", "explore_farm_animals")
CATEGORIZATION_IMAGES = "categorization/resource/images/"
PHOTOS_23 = ROOT / "tests" / "data" / "real_photos"
NEAR_DUPLICATE = 0.97  # correlation of 24x24 grey thumbnails; distinct photos here stay below 0.95
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
# The categorization activity's photos carry only a file name; its label (digits dropped) written as a caption.
CATEGORIZATION_CAPTIONS = {
    "fish": "A fish.", "alphabets": "Alphabets.", "numbers": "Numbers.",
    # monuments
    "IndiaGate": "India Gate.", "arcDeTriomphe": "The Arc de Triomphe.", "bayterek": "Bayterek.",
    "brandenburgGate": "The Brandenburg Gate.", "burj": "The Burj.", "cathedral": "A cathedral.",
    "christTheRedeemer": "Christ the Redeemer.", "colosseum": "The Colosseum.", "eiffelTower": "The Eiffel Tower.",
    "empireState": "The Empire State.", "greatPyramid": "The Great Pyramid.", "greatWall": "The Great Wall.",
    "jucheTower": "The Juche Tower.", "kutubMinar": "The Kutub Minar.", "leMusee": "Le Musée.",
    "leaningTowerOfPisa": "The Leaning Tower of Pisa.", "monument": "A monument.", "mountRushmore": "Mount Rushmore.",
    "operaHouse": "An opera house.", "parthenon": "The Parthenon.", "statueOfLiberty": "The Statue of Liberty.",
    "tajMahal": "The Taj Mahal.", "usCapitol": "The US Capitol.", "victoriaMemorial": "The Victoria Memorial.",
    "zimniPalace": "The Zimni Palace.",
    # others
    "baseball": "A baseball.", "blackslate": "A black slate.", "bucket": "A bucket.", "buffetset": "A buffet set.",
    "bulb": "A bulb.", "chair": "A chair.", "cup": "A cup.", "erasers": "Erasers.", "igloo": "An igloo.",
    "knife": "A knife.", "pan": "A pan.", "pencil": "A pencil.", "pillow": "A pillow.", "plate": "A plate.",
    "spoons": "Spoons.", "volleyball": "A volleyball.", "weighingMachine": "A weighing machine.",
    # renewable energy
    "dam": "A dam.", "geothermal": "Geothermal energy.", "solar": "Solar energy.", "windmill": "A windmill.",
    # tools
    "cuttingTool": "A cutting tool.", "hammer": "A hammer.", "measuringTape": "A measuring tape.",
    "multimeter": "A multimeter.", "nailCutter": "A nail cutter.", "plier": "Pliers.", "scissors": "Scissors.",
    "screwDriver": "A screwdriver.", "sickle": "A sickle.", "sideCutter": "A side cutter.", "spray": "A spray.",
    "tweezer": "Tweezers.", "wrench": "A wrench.",
}
BOARD_ENTRY = re.compile(r"\{[^{}]*\}")
BOARD_FIELD = re.compile(r'"(title|text|image2)"\s*:\s*(?:qsTr\(\s*)?"((?:[^"\\]|\\.)*)"')


def default_out() -> Path:
    from cots_core.paths import data_dir

    return data_dir() / "bench" / "quality"


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


def flatten(image: Image.Image) -> Image.Image:
    """The photo on a white background (the stamps are cut-outs, transparent around the object)."""
    image = image.convert("RGBA")
    background = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, image).convert("RGB")


def tuxpaint_photos(root: Path) -> dict[str, tuple[Image.Image, str]]:
    """Stamp path -> (photo, caption); identical pixels kept once (e.g. filed under military/ and people/)."""
    stamps = root / STAMPS
    captions = stamp_captions(stamps)
    seen: set[str] = set()
    photos = {}
    for relative in sorted(captions):
        image = flatten(Image.open(stamps / relative))
        digest = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            photos[relative] = (image, captions[relative])
    return photos


def read_rcc(rcc_dir: Path, activities: list[str]) -> dict[str, bytes]:
    """Path under src/activities/ -> content, for every file in these activities' Qt resource files."""
    from PySide6.QtCore import QDirIterator, QFile, QIODevice, QResource

    prefix = ":/gcompris/src/activities/"
    files = {}
    for activity in activities:
        rcc = str(rcc_dir / f"{activity}.rcc")
        if not QResource.registerResource(rcc):
            sys.exit(f"{rcc}: not a readable Qt resource file; is the gcompris-qt-data package complete?")
        walk = QDirIterator(prefix + activity, QDirIterator.IteratorFlag.Subdirectories)
        while walk.hasNext():
            path = walk.next()
            handle = QFile(path)
            if walk.fileInfo().isFile() and handle.open(QIODevice.OpenModeFlag.ReadOnly):
                files[path.removeprefix(prefix)] = bytes(handle.readAll().data())
                handle.close()
        QResource.unregisterResource(rcc)
    return files


def board_captions(qml: str) -> dict[str, str]:
    """Photo path -> "Title. First sentence of the description." for each entry of an explore_* board."""
    found = {}
    for entry in BOARD_ENTRY.findall(qml):
        fields = {k: v.replace('\\"', '"').replace("\\'", "'") for k, v in BOARD_FIELD.findall(entry)}
        if not {"title", "text", "image2"} <= fields.keys():
            continue
        title = fields["title"].strip()
        first = re.split(r"(?<=[.!?])(?<!\b[A-Z][a-z]\.)(?<!\b[A-Z]\.)\s+(?=[A-Z\"\u201c])", fields["text"].strip(), maxsplit=1)[0]
        found[fields["image2"].split("src/activities/", 1)[1]] = f"{title.rstrip('.')}. {first}"
    return found


def gcompris_photos(root: Path) -> dict[str, tuple[Image.Image, str]]:
    """"gcompris/<path>" -> (photo, caption): the explore_* boards' photos first, then categorization's."""
    import io

    files = read_rcc(root / GCOMPRIS_RCC, [*GCOMPRIS_BOARDS, "categorization"])
    captions = {}
    for path in sorted(files):
        if path.startswith(GCOMPRIS_BOARDS) and "/board/" in path and path.endswith(".qml"):
            captions.update(board_captions(files[path].decode("utf-8")))
    for path in sorted(files):
        if path.startswith(CATEGORIZATION_IMAGES) and path.endswith(".webp"):
            label = re.sub(r"\d+$", "", Path(path).stem)
            if label not in CATEGORIZATION_CAPTIONS:
                sys.exit(f"gcompris-qt-data: no caption for the categorization photo {path}; add its label to "
                         "CATEGORIZATION_CAPTIONS in bench/quality_data.py (after looking at the photo)")
            captions[path] = CATEGORIZATION_CAPTIONS[label]
    return {f"gcompris/{path}": (flatten(Image.open(io.BytesIO(files[path]))), caption)
            for path, caption in captions.items()}


def thumbnail(image: Image.Image) -> np.ndarray:
    """A 24x24 grey thumbnail, centred and unit-norm: near-identical photos correlate above NEAR_DUPLICATE."""
    grey = np.asarray(image.convert("L").resize((24, 24), Image.Resampling.BILINEAR), dtype=np.float32).ravel()
    grey -= grey.mean()
    return grey / (np.linalg.norm(grey) + 1e-6)


def assign_splits(names: list[str], seed: int = SEED) -> dict[str, str]:
    order = sorted(names)
    random.Random(seed).shuffle(order)
    bounds, start = {}, 0
    for index, (split, fraction) in enumerate(SPLITS):
        end = len(order) if index == len(SPLITS) - 1 else start + round(fraction * len(order))
        bounds.update({name: split for name in order[start:end]})
        start = end
    return bounds


def unpack(source: str, debs: list[Path], scratch: Path) -> Path:
    """Unpack the source's package (a given .deb, else `apt-get download`); returns the unpacked root."""
    package = PACKAGES[source]
    given = [deb for deb in debs if subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], check=True,
                                                  capture_output=True, text=True).stdout.strip() == package]
    if given:
        deb = given[0]
    else:
        subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
        deb = next(scratch.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(scratch / source)], check=True)
    return scratch / source


def assemble(debs: list[Path], sources: list[str], out: Path) -> dict[str, dict[str, int]]:
    """Write the benchmark under ``out``; returns the number of photos per source and split."""
    readers = {"tuxpaint": tuxpaint_photos, "gcompris": gcompris_photos}
    reference = [thumbnail(Image.open(p)) for p in sorted(PHOTOS_23.glob("*.jpg"))]
    splits, manifest, counts = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            photos = readers[source](unpack(source, debs, Path(tmp)))
            kept, dropped, signatures = {}, [], list(reference)
            for key, (image, caption) in photos.items():
                signature = thumbnail(image)
                if signatures and float(np.max(np.stack(signatures) @ signature)) > NEAR_DUPLICATE:
                    dropped.append(key)
                    continue
                kept[key] = (image, caption)
                # tuxpaint's cut-outs on white are only checked against the 23 photos: its photos were deduped
                # by pixels, and its split must stay that of the first round.
                if source != "tuxpaint":
                    signatures.append(signature)
            reference += [thumbnail(image) for image, _ in kept.values()]
            source_splits = assign_splits(list(kept))
            for key, (image, caption) in kept.items():
                folder = out / source_splits[key]
                folder.mkdir(parents=True, exist_ok=True)
                stem = "img_" + hashlib.sha1(key.encode()).hexdigest()[:10]
                image.save(folder / f"{stem}.jpg", quality=92)
                (folder / f"{stem}.txt").write_text(caption + "\n", encoding="utf-8")
                manifest[stem] = {"source": source, "path": key, "split": source_splits[key]}
            splits.update(source_splits)
            counts[source] = {split: sum(1 for k in kept if source_splits[k] == split) for split, _ in SPLITS}
            counts[source]["near_duplicates_left_out"] = len(dropped)
    (out / "splits.json").write_text(json.dumps(dict(sorted(splits.items())), indent=1) + "\n")
    (out / "manifest.json").write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, action="append", default=[],
                        help="a downloaded .deb of a source package, repeatable (others: apt-get download)")
    parser.add_argument("--sources", nargs="+", choices=list(PACKAGES), default=list(PACKAGES),
                        help="which packages to take photos from (default: all)")
    parser.add_argument("--out", type=Path, help="output folder (default: <cots data dir>/bench/quality)")
    args = parser.parse_args()
    out = args.out or default_out()
    if out.exists() and any(out.iterdir()):
        sys.exit(f"{out} is not empty: remove it first (the benchmark is rebuilt from scratch)")
    for deb in args.deb:
        if not deb.is_file():
            sys.exit(f"{deb}: no such .deb file")
    print(json.dumps({"out": str(out), **assemble(args.deb, args.sources, out)}))


if __name__ == "__main__":
    main()
