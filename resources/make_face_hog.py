"""Write dlib's frontal face HOG detector to ``resources/faces/frontal_face_hog.svm``.

``dlib.get_frontal_face_detector()`` rebuilds the detector from a text form compiled into dlib, 0.26-0.30 s
holding the GIL at every load; the same detector saved in dlib's binary form loads in ~1 ms
(``app.library.signals.faces``). Run from the repository root after upgrading dlib:
``python resources/make_face_hog.py``; tests/app/test_signal_faces.py checks that the file still detects
exactly as the installed dlib's own detector does.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import dlib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from resources import FACE_HOG_FILE, resource_path  # noqa: E402

if __name__ == "__main__":
    out = resource_path(*FACE_HOG_FILE)
    out.parent.mkdir(parents=True, exist_ok=True)
    dlib.get_frontal_face_detector().save(str(out))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} ({out.stat().st_size} bytes) from dlib {dlib.__version__}; FACE_HOG_SHA256 = {digest!r}")
