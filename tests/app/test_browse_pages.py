"""The library listed newest first a page at a time (``storage.browse.browse_media``, ``search.browse``): what the
app's grid shows when there is no query."""
from __future__ import annotations

from datetime import datetime

from app.library import Library
from app.library.search import Filters, browse
from app.library.storage.browse import browse_media
from app.library.storage.media import upsert_media


def test_pages_are_disjoint_newest_first_and_filtered(tmp_path):
    library = Library(tmp_path / "library.db")
    folder = tmp_path / "photos"
    folder.mkdir()
    library.add_folder(folder)
    folder_id = library.db.conn.execute("SELECT id FROM folders").fetchone()[0]
    taken = {i: datetime(2020, 1 + i % 12, 1 + i % 27, 12).timestamp() for i in range(50)}
    with library.db.transaction() as conn:
        for i, when in taken.items():
            # no EXIF time on every third: its file time counts instead
            upsert_media(conn, {"path": str(folder / f"p{i:02d}.jpg"), "folder_id": folder_id, "name": f"p{i:02d}",
                                "folder_names": "photos", "kind": "video" if i % 10 == 0 else "image",
                                "size": 1, "mtime_ns": int(when * 1e9), "captured_at": None if i % 3 == 0 else when,
                                "status": "ok" if i != 7 else "failed"})
    pages = [browse(library, Filters(), offset, 20) for offset in (0, 20, 40)]
    names = [hit.path.rsplit("/", 1)[-1] for page in pages for hit in page]
    readable = [i for i in taken if i != 7]
    assert len(names) == len(set(names)) == len(readable)  # every readable item once, the failed one left out
    dates = [hit.record.date for page in pages for hit in page]
    assert dates == sorted(dates, reverse=True)
    months = browse_media(library.db.conn, *Filters().where(), per="%Y-%m")
    assert [m for m, _ in months] == sorted({m for m, _ in months}, reverse=True)
    assert sum(n for _, n in months) == len(readable)
    videos = browse(library, Filters(kind="video"), 0, 100)
    assert {hit.kind for hit in videos} == {"video"} and len(videos) == 5
    library.close()
