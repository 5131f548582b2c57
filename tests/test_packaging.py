"""pyproject.toml's package list: every importable folder is listed (else setuptools prints a
"Package would be ignored" warning per folder at install) and every shipped data file is packaged."""
from __future__ import annotations

import glob
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# package name -> its folder (pyproject's package-dir maps cots_resources to resources/)
PACKAGE_ROOTS = {"cots_core": "cots_core", "trainer": "trainer", "app": "app", "cots_resources": "resources"}


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _importable_folders() -> set[str]:
    """Dotted names of the folders Python could import (every path part an identifier), as setuptools sees them."""
    found = set()
    for package, top in PACKAGE_ROOTS.items():
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            parts = folder.relative_to(ROOT / top).parts
            if all(part.isidentifier() for part in parts) and "__pycache__" not in parts:
                found.add(".".join((package, *parts)))
    return found


def test_every_importable_folder_is_a_listed_package():
    listed = set(_setuptools_config()["packages"])
    assert _importable_folders() == listed


def test_every_resource_file_is_package_data():
    config = _setuptools_config()
    packaged = set()
    for package, patterns in config["package-data"].items():
        top, *rest = package.split(".")
        folder = ROOT.joinpath(PACKAGE_ROOTS[top], *rest)
        for pattern in patterns:
            packaged |= {folder / name for name in glob.glob(pattern, root_dir=folder, recursive=True)}
    shipped = {p for p in (ROOT / "resources").rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert shipped and shipped <= packaged, sorted(str(p) for p in shipped - packaged)
