"""A new kind of media is one registry entry: the scanner, indexer, search filter, CLI and GUI pick it up."""
from __future__ import annotations

import argparse

import pytest
from fakes import run_indexer, solid
from PIL import Image

from app.cli.common import media_kind_name
from app.library.search import Filters, SearchService
from cots_core import media
from cots_core.media import DecodedMedia, MediaKind, check_nonempty_file, register_kind


@pytest.fixture
def sketch_kind():
    """``.sketch`` files: a colour name drawn as a plain picture."""
    def read(path, options):
        return DecodedMedia("sketch", [solid(open(path).read().strip())], 64, 48)

    register_kind(MediaKind("sketch", "sketches", frozenset({".sketch"}), check_nonempty_file, read))
    yield
    media.MEDIA_KINDS.pop("sketch")
    media.KIND_BY_EXTENSION.pop(".sketch")


def test_a_registered_kind_is_indexed_filtered_and_offered(sketch_kind, library, encoder, photos, qtbot, tmp_path):
    (photos / "idea.sketch").write_text("red\n")
    library.add_folder(photos)
    report = run_indexer(library, encoder, vocabulary=False)
    assert report.failed == 0
    record = library.media_by_path(photos / "idea.sketch")
    assert record.kind == "sketch" and record.status == "ok"
    hits = SearchService(library, encoder, min_relevance=float("-inf")).text("red", k=20,
                                                                             filters=Filters(kind="sketch"))
    assert [h.path for h in hits] == [str(photos / "idea.sketch")]
    assert media_kind_name("sketch") == "sketch"
    with pytest.raises(argparse.ArgumentTypeError, match="choose from image, video, sketch"):
        media_kind_name("audio")

    from app.gui.search_bar import SearchBar
    from app.gui.thumbs import ThumbnailCache

    thumbnail = ThumbnailCache(tmp_path / "thumbs", size=32).get(str(photos / "idea.sketch"))
    assert Image.open(thumbnail).getpixel((5, 5))[0] > 200  # drawn by the kind's own reader: red

    bar = SearchBar()
    qtbot.addWidget(bar)
    assert [bar.kind.itemData(i) for i in range(bar.kind.count())] == [None, "image", "video", "sketch"]
