"""The library database's SQL, one module per concern. Every statement the library runs on its tables lives
here (``db`` opens connections and migrates the schema); callers import the concern module they need, e.g.
``from app.library.storage import media as media_store``. The write operations run inside one of the
caller's transactions; ``Library.apply`` mirrors the vector ids they return in the vector indexes after the
commit.

- ``media``: media rows and file state (what a scan compares with, folders, failures) and the deletion of a
  row's data (``delete_media_data``: the one place a row's vectors, texts and signal results are deleted).
- ``vectors``: stored embeddings of media, video segments and texts (captions, the vocabulary).
- ``search``: search's reads: filters as SQL conditions on ``m``, the lexical (FTS5) search, fact conditions.
- ``signals``: the signals' results (facts, boxes, texts in the full-text index) and their work lists.
- ``people``: faces, their identity vectors and the people they are grouped into (the grouping itself is
  ``app.library.people``'s).
- ``browse``: the library itself, newest first, page by page or per period.
"""
