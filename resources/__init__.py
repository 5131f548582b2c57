"""Data files shipped with cots (installed as the package ``cots_resources``)."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
# the app icon's PNG sizes in resources/desktop/ (cots-16.png ...), rendered from cots.svg by make_icons.py
APP_ICON_SIZES = (16, 32, 48, 64, 128, 256)


def resource_path(*parts: str) -> Path:
    """Absolute path of a shipped resource file, e.g. ``resource_path("vocab", "tiny_vocab.txt")``."""
    return RESOURCES_DIR.joinpath(*parts)
