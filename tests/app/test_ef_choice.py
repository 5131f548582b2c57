"""ef_search chosen per library from its own data (app/library/vector_index.py, Library.save_vectors)."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from fakes import run_indexer

from app.cli import main
from app.library import Library
from app.library.vector_index import (
    EF_CANDIDATES,
    HnswParams,
    VectorIndex,
    choose_ef_search,
    exact_top_k,
    item_midpoints,
    needs_ef_choice,
    recall_at_k,
)


def _clustered(rng, n: int, d: int = 64, centres: int = 40) -> np.ndarray:
    x = rng.standard_normal((centres, d)).astype(np.float32)[rng.integers(0, centres, n)]
    x += rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _held_out_recall(index: VectorIndex, queries: np.ndarray, k: int = 10) -> float:
    _, truth = exact_top_k(index, queries, k)
    hits = 0
    for query, row in zip(queries, truth):
        _, scores = index.search(query, k, exact=False)
        hits += int((scores >= row[-1] - 1e-5).sum())
    return hits / (k * len(queries))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_clustered_library_gets_a_small_ef_that_reaches_the_target(seed):
    rng = np.random.default_rng(seed)
    data = _clustered(rng, 6300)
    items, held_out = data[:6000], data[6000:]
    index = VectorIndex(64, HnswParams(exact_below=1000), capacity=6000)
    ids = np.arange(6000) * 7 + 3  # labels are row ids, not positions
    index.add(ids, items, num_threads=-1)
    assert needs_ef_choice(index)
    own = rng.choice(ids, 200, replace=False)
    choice = choose_ef_search(index, [(index.get(own), own), (item_midpoints(items, 200, seed), None)])
    assert choice.recall >= 0.98 and choice.ef_search < HnswParams().ef_search
    smaller = [ef for ef in EF_CANDIDATES if ef < choice.ef_search]
    if smaller:  # the smallest that reaches the target
        _, truth = exact_top_k(index, item_midpoints(items, 200, seed), 10)
        assert recall_at_k(index, item_midpoints(items, 200, seed), np.full(200, -1), smaller[-1], truth) < 0.98
    index.ef_choice = choice
    assert index.ef_search == choice.ef_search
    # queries the choice never saw (measured 0.999-1.0 over 5 seeds, 1 and 2 threads)
    assert _held_out_recall(index, held_out) >= 0.95
    index.add(ids[:10] + 1, items[:10])  # grown a little: the choice stands
    assert not needs_ef_choice(index)


def test_the_choice_is_saved_with_the_index_and_made_again_after_growth(tmp_path):
    rng = np.random.default_rng(3)
    index = VectorIndex(16, HnswParams(exact_below=50))
    index.add(np.arange(100), _clustered(rng, 100, 16))
    index.ef_choice = choose_ef_search(index, [(index.get(np.arange(20)), np.arange(20))])
    index.save(tmp_path / "x", {"model_id": "m", "generation": 1})
    assert json.loads((tmp_path / "x.json").read_text())["ef_choice"]["ef_search"] == index.ef_choice.ef_search
    loaded, _ = VectorIndex.load(tmp_path / "x", 16, HnswParams(exact_below=50))
    assert loaded.ef_choice == index.ef_choice and loaded.ef_search == index.ef_choice.ef_search
    loaded.add(np.arange(100, 200), _clustered(rng, 100, 16))
    assert needs_ef_choice(loaded)  # twice the size it was chosen at


def test_library_chooses_ef_when_saving_and_status_shows_it(tmp_path, encoder, photos, capsys, monkeypatch):
    db = tmp_path / "lib" / "library.db"
    library = Library(db, params=HnswParams(exact_below=4))  # 8 photos: searched by HNSW
    library.add_folder(photos)
    run_indexer(library, encoder)
    library.close()  # saves the indexes, choosing their ef
    library = Library(db, params=HnswParams(exact_below=4))
    media = library.status().index["media"]
    assert media["search"] == "hnsw" and media["ef_search"] in EF_CANDIDATES and media["recall_at_10"] >= 0.98
    assert library.vectors("media").ef_choice.queries >= 8  # own items, midpoints and vocabulary texts
    library.close()
    monkeypatch.setattr("app.library.library.HnswParams", lambda: HnswParams(exact_below=4))
    assert main(["status", "--db", str(db)]) == 0
    assert f"media 8/8 (hnsw ef {media['ef_search']}, graph M 32 / ef_construction 400)" in capsys.readouterr().out


def test_small_libraries_are_searched_exactly_and_choose_nothing(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    library.save_vectors()
    assert library.vectors("media").ef_choice is None
    assert library.status().index["media"]["search"] == "exact"


def test_searches_and_indexing_go_on_while_the_ef_choice_runs(tmp_path, encoder, photos, monkeypatch):
    """The choice (~40 s at 100k) runs outside the library's vector lock; it is stored when it lands."""
    from fakes import solid

    from app.library import vector_index
    from app.library.search import SearchService

    db = tmp_path / "lib" / "library.db"
    library = Library(db, params=HnswParams(exact_below=4))
    library.add_folder(photos)
    started, release = threading.Event(), threading.Event()
    real_choice = vector_index.choose_ef_search

    def slow_choice(index, query_sets, **kwargs):
        started.set()
        assert release.wait(60), "the test never released the choice"
        return real_choice(index, query_sets, **kwargs)

    monkeypatch.setattr(vector_index, "choose_ef_search", slow_choice)
    run_indexer(library, encoder)  # its last save starts the choice, and the run returns meanwhile
    assert started.wait(30)
    results = {}

    def search_and_index() -> None:
        results["hits"] = SearchService(library, encoder, min_relevance=float("-inf")).text("red", 3, hybrid=False)
        solid("cyan").save(photos / "cyan.jpg")
        results["report"] = run_indexer(library, encoder)

    worker = threading.Thread(target=search_and_index)
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and not release.is_set()  # both finished while the choice was still held
    assert results["hits"][0].path == str(photos / "red.jpg") and results["report"].added == 1
    assert library.vectors("media").ef_choice is None  # not chosen yet
    release.set()
    library.close()  # waits for the choice, which lands in the saved index
    library = Library(db, params=HnswParams(exact_below=4))
    media = library.status().index["media"]
    assert media["in_index"] == 9 and media["ef_search"] in EF_CANDIDATES and media["recall_at_10"] >= 0.98
    library.close()


def test_a_closing_window_stops_the_ef_choice_instead_of_waiting(tmp_path, encoder, photos, monkeypatch):
    """close(finish_ef_choice=False) (the GUI) ends a running measurement at its next slice; nothing is
    stored, and the next save measures again."""
    from app.library import vector_index

    db = tmp_path / "lib" / "library.db"
    library = Library(db, params=HnswParams(exact_below=4))
    library.add_folder(photos)
    started, stopped = threading.Event(), threading.Event()
    real_check = vector_index._check

    def check_after_start(stop):
        started.set()
        if stop is not None and not stop.wait(60):  # holds the choice until close sets stop
            raise AssertionError("close never stopped the choice")
        try:
            real_check(stop)
        except vector_index.ChoiceStopped:
            stopped.set()
            raise

    monkeypatch.setattr(vector_index, "_check", check_after_start)
    run_indexer(library, encoder)
    assert started.wait(30)
    library.close(finish_ef_choice=False)
    assert stopped.is_set()
    monkeypatch.setattr(vector_index, "_check", real_check)
    library = Library(db, params=HnswParams(exact_below=4))
    assert library.vectors("media").ef_choice is None and needs_ef_choice(library.vectors("media"))
    library.close()  # measures now
    library = Library(db, params=HnswParams(exact_below=4))
    assert library.status().index["media"]["ef_search"] in EF_CANDIDATES
    library.close()
