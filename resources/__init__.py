"""Data files shipped with cots (installed as the package ``cots_resources``)."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
# the app icon's PNG sizes in resources/desktop/ (cots-16.png ...), rendered from cots.svg by make_icons.py
APP_ICON_SIZES = (16, 32, 48, 64, 128, 256)
# dlib's frontal face HOG detector in dlib's binary form (written by make_face_hog.py): loads in ~1 ms
FACE_HOG_FILE = ("faces", "frontal_face_hog.svm")
FACE_HOG_SHA256 = "f3f7aa833fb4a14a46fc48689f45b98d85ef72d6dfaf8bdc012b7d3c522a5426"  # printed by make_face_hog.py


def resource_path(*parts: str) -> Path:
    """Absolute path of a shipped resource file, e.g. ``resource_path("vocab", "tiny_vocab.txt")``."""
    return RESOURCES_DIR.joinpath(*parts)
