"""The vector index: recall with the shipped parameters, persistence, and repair from SQLite."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from fakes import run_indexer

from app.library import Library
from app.library.vector_index import HnswParams, VectorIndex, ids_checksum


def _unit(rng, n, d=384):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.slow  # about a minute to build on two busy cores
def test_hnsw_recall_at_10_on_20k_random_384d_vectors(seed_offset, record_measure):
    rng = np.random.default_rng(seed_offset)
    data, queries = _unit(rng, 20_000), _unit(rng, 200)
    index = VectorIndex(384, HnswParams(), capacity=20_000)
    ids = np.arange(1, 20_001) * 3  # labels are arbitrary row ids, not positions
    index.add(ids, data, num_threads=-1)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    hits = 0
    for q, expected in zip(queries, truth):
        found, _ = index.search(q, 10, exact=False)
        hits += len(set(found.tolist()) & set(ids[expected].tolist()))
    recall = hits / (10 * len(queries))
    record_measure("miss rate (1 - recall@10)", 1 - recall, 0.05, "max")  # recall is capped at 1: audit the misses
    assert recall >= 0.95, recall


def test_exact_and_hnsw_agree_on_small_sets_and_deletes_apply():
    rng = np.random.default_rng(1)
    data = _unit(rng, 500, 32)
    index = VectorIndex(32)
    index.add(np.arange(500), data)
    index.remove([0, 1, 2])
    q = data[0]
    exact_ids, exact_scores = index.search(q, 5, exact=True)
    hnsw_ids, _ = index.search(q, 5, exact=False)
    assert 0 not in exact_ids and 0 not in hnsw_ids
    assert list(exact_ids[:3]) == list(hnsw_ids[:3])
    assert np.all(np.diff(exact_scores) <= 1e-6)
    index.add([0], data[:1])  # re-adding a deleted id works
    assert index.search(q, 1, exact=False)[0][0] == 0 and len(index) == 498


def test_save_load_and_inconsistent_files_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    index = VectorIndex(16)
    index.add([5, 7, 9], _unit(rng, 3, 16))
    index.save(tmp_path / "x", {"model_id": "m", "generation": 3})
    loaded, meta = VectorIndex.load(tmp_path / "x", 16)
    assert sorted(loaded.ids.tolist()) == [5, 7, 9] and meta["generation"] == 3
    meta["checksum"] = ids_checksum(np.array([1, 2]))
    (tmp_path / "x.json").write_text(json.dumps(meta))
    assert VectorIndex.load(tmp_path / "x", 16) is None
    assert VectorIndex.load(tmp_path / "missing", 16) is None
    for junk in ("[]", '{"dim": 16, "hnsw_bytes": "x"}', '"text"', "\udce9"):
        (tmp_path / "x.json").write_text(junk, errors="surrogateescape")
        assert VectorIndex.load(tmp_path / "x", 16) is None


def test_a_loaded_index_keeps_the_graph_parameters_it_was_built_with(tmp_path):
    """An index built before a change of the shipped M/ef_construction keeps its own (read from the graph file),
    so growth and compaction go on with them; a json that names other parameters than the file holds is refused."""
    rng = np.random.default_rng(3)
    old = HnswParams(M=16, ef_construction=200)
    assert (old.M, old.ef_construction) != (HnswParams().M, HnswParams().ef_construction)
    index = VectorIndex(16, old)
    index.add(np.arange(40), _unit(rng, 40, 16))
    index.save(tmp_path / "x", {})
    loaded, meta = VectorIndex.load(tmp_path / "x", 16, HnswParams(exact_below=10))
    assert (loaded.params.M, loaded.params.ef_construction) == (16, 200)
    assert loaded.params.exact_below == 10  # the caller's search settings still apply
    loaded.remove(np.arange(30))
    loaded.add(np.arange(100, 140), _unit(rng, 40, 16))
    loaded.save(tmp_path / "y", {})
    assert json.loads((tmp_path / "y.json").read_text())["params"]["M"] == 16
    del meta["params"]["ef_construction"]  # a json that does not name it: the file's value stands
    (tmp_path / "x.json").write_text(json.dumps(meta))
    assert VectorIndex.load(tmp_path / "x", 16)[0].params.ef_construction == 200
    meta["params"]["M"] = 48
    (tmp_path / "x.json").write_text(json.dumps(meta))
    assert VectorIndex.load(tmp_path / "x", 16) is None


def test_index_is_rebuilt_when_missing_stale_or_from_another_model(library, encoder, photos, tmp_path):
    library.add_folder(photos)
    run_indexer(library, encoder)
    prefix = library.index_prefix("media", library.model_id)
    library.close()
    # missing
    for suffix in (".hnsw", ".ids.npy", ".json"):
        (prefix.parent / (prefix.name + suffix)).unlink()
    lib = Library(library.path)
    assert len(lib.vectors("media")) == 8
    lib.close()
    # stale: the database changed behind the saved index's back (another process, or a crash)
    lib = Library(library.path)
    row = lib.media_by_path(photos / "red.jpg").id
    lib.db.conn.execute("DELETE FROM embeddings WHERE media_id = ?", (row,))
    lib.db.conn.execute("UPDATE settings SET value = value + 1 WHERE key = 'generation'")
    assert len(lib.vectors("media")) == 7 and row not in lib.vectors("media")
    lib.close()
    # saved by another model
    meta = json.loads((prefix.parent / (prefix.name + ".json")).read_text())
    meta["model_id"] = "other"
    (prefix.parent / (prefix.name + ".json")).write_text(json.dumps(meta))
    lib = Library(library.path)
    assert len(lib.vectors("media")) == 7
    assert lib.status().index["media"]["healthy"]
    lib.close()


def test_an_index_file_damaged_in_place_is_detected_and_rebuilt(library, encoder, photos, capsys, monkeypatch):
    """Same size, same ids, every vector's sign flipped: the file's own checks pass, the spot check does not."""
    library.add_folder(photos)
    run_indexer(library, encoder)
    model_id = library.model_id
    prefix = library.index_prefix("media", model_id)
    library.close()
    meta = json.loads((prefix.parent / (prefix.name + ".json")).read_text())
    size = os.path.getsize(str(prefix) + ".hnsw")
    saved, _ = VectorIndex.load(prefix, meta["dim"])
    ids = saved.ids
    flipped = VectorIndex(meta["dim"], capacity=1024)
    flipped.add(ids, -saved.get(ids))
    flipped.save(prefix, {k: meta[k] for k in ("model_id", "kind", "generation")})
    assert os.path.getsize(str(prefix) + ".hnsw") == size and VectorIndex.load(prefix, meta["dim"]) is not None

    lib = Library(library.path)
    red = lib.media_by_path(photos / "red.jpg").id
    assert np.allclose(lib.vectors("media").get([red])[0], lib.embedding(red))
    status = lib.status()
    assert "disagreed" in status.index["media"]["rebuilt"] and status.index["text"]["rebuilt"] is None
    lib.close()
    lib = Library(library.path)  # the rebuilt index was saved: no second rebuild
    assert lib.status().index["media"]["rebuilt"] is None
    lib.close()

    flipped.save(prefix, {k: meta[k] for k in ("model_id", "kind", "generation")})
    from app.cli import main

    capsys.readouterr()
    assert main(["status", "--db", str(library.path)]) == 0
    assert "media index: the saved index file disagreed" in capsys.readouterr().out
