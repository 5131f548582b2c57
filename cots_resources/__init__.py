"""Data files shipped with cots (installed as the package ``cots_resources``)."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    """Absolute path of a shipped resource file, e.g. ``resource_path("vocab", "tiny_vocab.txt")``."""
    return RESOURCES_DIR.joinpath(*parts)
