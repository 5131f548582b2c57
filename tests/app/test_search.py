"""Search: hybrid text search, filters, the calibrated cut-off, similar images and image -> text."""
from __future__ import annotations

import os
import time

import pytest
from fakes import noise_image, run_indexer, solid, write_video

from app.library import LibraryError
from app.library.search import Filters, SearchService, fts_query, parse_date, query_words

ALL = float("-inf")


@pytest.fixture
def indexed(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder, vocabulary=True)
    return SearchService(library, encoder)


def test_hybrid_search_finds_a_folder_by_name(indexed, photos):
    hits = indexed.text("Paris 2019", k=10)
    assert {h.path for h in hits} == {str(photos / "Paris 2019" / f"IMG_{i:04d}.png") for i in range(5)}
    assert all("name" in h.matched for h in hits)


def test_a_files_own_name_outranks_a_folder_name_it_shares(library, encoder, tmp_path):
    """Two photos of "Trip to China 2011": the one named china.jpg (with a caption, so a longer FTS row) is
    the better lexical answer to "China 2011" than flower.jpg, which matches only by its folder."""
    from app.library.storage.search import lexical

    trip = tmp_path / "trip" / "Trip to China 2011"
    trip.mkdir(parents=True)
    solid("red").save(trip / "china.jpg")
    (trip / "china.jpg.txt").write_text("The Tower of Buddhist Incense on Longevity Hill in the Summer Palace\n")
    solid("green").save(trip / "flower.jpg")
    library.add_folder(tmp_path / "trip")
    run_indexer(library, encoder)
    found = lexical(library.db.conn, fts_query("China 2011"), "1", [], 10, words=query_words("China 2011"))
    assert [library.media([i])[i].path for i in found] == [str(trip / "china.jpg"), str(trip / "flower.jpg")]


def test_meaning_and_names_are_fused(indexed, photos):
    hits = indexed.text("blue", k=3, min_relevance=ALL)
    assert hits[0].path == str(photos / "blue.jpg")
    assert set(hits[0].matched) == {"meaning", "name"}


def test_filters_kind_folder_and_date(library, encoder, photos, tmp_path):
    write_video(photos / "clip.mp4", ["red", "blue"])
    old = time.mktime((2015, 6, 1, 12, 0, 0, 0, 0, -1))
    os.utime(photos / "green.jpg", (old, old))
    library.add_folder(photos)
    run_indexer(library, encoder)
    search = SearchService(library, encoder, min_relevance=ALL)
    assert {h.kind for h in search.text("red", k=20, filters=Filters(kind="video"))} == {"video"}
    assert {h.kind for h in search.text("red", k=20, filters=Filters(kind="image"))} == {"image"}
    in_paris = search.text("red", k=20, filters=Filters(folder=str(photos / "Paris 2019")))
    assert len(in_paris) == 5 and all("/Paris 2019/" in h.path for h in in_paris)
    dated = search.text("red", k=20, filters=Filters(date_from=parse_date("2015"), date_to=parse_date("2015", end=True)))
    assert [h.path for h in dated] == [str(photos / "green.jpg")]


def test_calibrated_cut_off_drops_queries_without_a_match(library, encoder, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(80):
        noise_image(i).save(folder / f"{i:03d}.png")
    solid("red").save(folder / "the_one.png")
    library.add_folder(folder)
    run_indexer(library, encoder, vocabulary=True)
    search = SearchService(library, encoder)
    hits = search.text("red", k=10, hybrid=False)
    assert hits and hits[0].path.endswith("the_one.png") and len(hits) <= 3
    assert len(search.text("qwzx blorfy vintrap", k=10, hybrid=False)) <= 3  # few, not the top 10
    assert len(search.text("qwzx blorfy vintrap", k=10, hybrid=False, min_relevance=ALL)) == 10


def test_similar_excludes_the_query_item_and_accepts_pixels(indexed, photos):
    hits = indexed.similar(photos / "red.jpg", k=3)
    assert str(photos / "red.jpg") not in [h.path for h in hits] and len(hits) == 3
    outside = indexed.similar(solid("green", (30, 30)), k=1)
    assert outside[0].path == str(photos / "green.jpg")
    by_id = indexed.similar(indexed.library.media_by_path(photos / "blue.jpg").id, k=2)
    assert len(by_id) == 2


def test_describe_returns_scored_vocabulary(indexed, photos):
    texts = indexed.describe(photos / "red.jpg", k=3)
    assert len(texts) == 3 and all("red" in t.text.lower() for t in texts)
    assert texts[0].to_dict().keys() == {"text", "score", "relevance", "source"}


def test_json_shape_of_hits(indexed, photos):
    hit = indexed.text("red", k=1, min_relevance=ALL)[0].to_dict()
    assert {"path", "kind", "score"} <= hit.keys() and hit["kind"] == "image"


def test_search_refuses_another_model(indexed):
    from fakes import fake_encoder

    with pytest.raises(LibraryError, match="indexed with"):
        SearchService(indexed.library, fake_encoder("other"))


def test_query_helpers():
    assert fts_query("a dog on the beach") == '"dog"* AND "beach"*'
    assert fts_query("the a of") is None
    assert parse_date("2019-06-30") < parse_date("2019-06-30", end=True) < parse_date("2019-07")
    with pytest.raises(LibraryError):
        parse_date("June")


def test_describe_a_video_at_a_moment_uses_that_segment(library, encoder, photos):
    write_video(photos / "clip.mp4", ["red", "blue"])  # red for 0-4 s, blue for 4-8 s
    library.add_folder(photos)
    run_indexer(library, encoder, vocabulary=True)
    search = SearchService(library, encoder, min_relevance=ALL)
    video = library.media_by_path(photos / "clip.mp4").id
    assert "red" in search.describe(video, k=1, at=1.0)[0].text.lower()
    assert "blue" in search.describe(video, k=1, at=6.0)[0].text.lower()
    with pytest.raises(LibraryError, match="8.0 seconds long"):
        search.describe(video, k=1, at=99999)  # beyond the end: a clear error, not the last segment
    with pytest.raises(LibraryError, match="indexed video"):
        search.describe(library.media_by_path(photos / "red.jpg").id, k=1, at=1.0)


def test_exact_filtered_search_reads_segments_in_bulk_and_scores_the_best_one(library, encoder, photos):
    for i in range(6):
        write_video(photos / f"clip{i}.mp4", ["green", "blue"] if i else ["red", "blue"], seconds_each=2.0)
    library.add_folder(photos)
    run_indexer(library, encoder, vocabulary=False)
    search = SearchService(library, encoder, min_relevance=ALL)
    statements = []
    library.db.conn.set_trace_callback(statements.append)
    try:
        found = search._exact_filtered(search.encode_text("red"), Filters(kind="video"))
    finally:
        library.db.conn.set_trace_callback(None)
    assert len(found) == 6 and len(statements) <= 3  # one for the allowed items, one for their segments
    red = library.media_by_path(photos / "clip0.mp4").id
    score, start, end = found[red]
    assert (start, end) == (0.0, 2.0) and score == max(s for s, _, _ in found.values())
