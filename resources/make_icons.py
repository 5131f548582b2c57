"""Render the app icon ``resources/desktop/cots.svg`` to the PNG sizes that ship beside it.

Run from the repository root after editing the SVG: ``python resources/make_icons.py``. The PNGs are
committed, so installing the launcher entry (``cots desktop install``) and the window's icon need no SVG
renderer at run time.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from resources import APP_ICON_SIZES, resource_path  # noqa: E402


def render(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG Qt can render")
    image = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
    image.fill(Qt.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"cannot write {out}")


def main() -> None:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs one
    svg = resource_path("desktop", "cots.svg")
    for size in APP_ICON_SIZES:
        out = svg.with_name(f"cots-{size}.png")
        render(svg, size, out)
        print(out)


if __name__ == "__main__":
    main()
