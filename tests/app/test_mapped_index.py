"""A saved index read in place for a one-shot query (app/library/mapped_index.py, Library.read_in_place): the same
answers as the loaded index, used only while the saved index is the database's, and never for a write."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import run_indexer, solid

from app.library import Library
from app.library.hnsw_file import HEADER
from app.library.mapped_index import MappedIndex
from app.library.search import SearchService
from app.library.vector_index import VectorIndex


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_mapped_index_answers_as_the_loaded_one(tmp_path):
    dim, ids = 24, np.arange(100, 700)
    index = VectorIndex(dim)
    index.add(ids, _unit(len(ids), dim, 0))
    index.remove(ids[::7])  # deleted slots stay in the file, marked
    prefix = tmp_path / "media"
    index.save(prefix, {"model_id": "m", "kind": "media", "generation": 3})
    mapped, meta = MappedIndex.load(prefix, dim)
    loaded, _ = VectorIndex.load(prefix, dim)
    assert meta["generation"] == 3 and len(mapped) == len(loaded) == len(ids) - len(ids[::7])
    assert set(mapped.ids.tolist()) == set(loaded.ids.tolist())
    for query in _unit(5, dim, 1):
        got_ids, got = mapped.search(query, 20)
        want_ids, want = loaded.search(query, 20, exact=True)
        assert got_ids.tolist() == want_ids.tolist() and np.allclose(got, want, atol=1e-6)
        assert not set(got_ids.tolist()) & set(ids[::7].tolist())
    some = [101, 650, 105, 99999]  # an unknown id is left out
    assert np.array_equal(mapped.get(some), loaded.get([101, 650, 105]))
    assert np.array_equal(mapped.sample(50), loaded.sample(50))  # the calibration's sample, the same rows
    assert 101 in mapped and 100 not in mapped  # 100 was deleted
    with pytest.raises(TypeError):
        mapped.add([1], _unit(1, dim, 2))
    with pytest.raises(TypeError, match="read-only"):
        mapped.remove([101])


def test_files_that_disagree_are_not_mapped(tmp_path):
    dim = 8
    index = VectorIndex(dim)
    index.add(np.arange(50), _unit(50, dim, 0))
    prefix = tmp_path / "media"
    index.save(prefix, {"model_id": "m", "kind": "media", "generation": 1})
    meta_path = tmp_path / "media.json"
    meta = json.loads(meta_path.read_text())
    assert MappedIndex.load(prefix, dim + 1) is None  # another dimension
    meta_path.write_text(json.dumps({**meta, "checksum": "0:0:0"}))
    assert MappedIndex.load(prefix, dim) is None  # other ids
    meta_path.write_text(json.dumps(meta))
    with open(tmp_path / "media.hnsw", "r+b") as handle:
        handle.seek(24)  # size_data_per_element in the header
        handle.write((12345).to_bytes(8, "little"))
    assert MappedIndex.load(prefix, dim) is None


def _indexed(tmp_path, photos, encoder) -> Library:
    library = Library(tmp_path / "lib" / "library.db")
    library.add_folder(photos)
    run_indexer(library, encoder)
    library.close()
    return Library(library.path)


def test_the_library_reads_in_place_only_while_nothing_changed(tmp_path, photos, encoder):
    library = _indexed(tmp_path, photos, encoder)
    library.read_in_place = True
    index = library.vectors("media")
    assert isinstance(index, MappedIndex) and len(index) == 8
    reference = Library(library.path)
    try:
        service, loaded = SearchService(library, encoder), SearchService(reference, encoder)
        for query in ("red", "a photo of green", "Paris"):
            assert [h.to_dict() for h in service.text(query, min_relevance=float("-inf"))] == \
                   [h.to_dict() for h in loaded.text(query, min_relevance=float("-inf"))]
        assert [h.id for h in service.similar(str(photos / "red.jpg"))] == \
               [h.id for h in loaded.similar(str(photos / "red.jpg"))]
    finally:
        reference.close()
    # a write in this process: the mapped index is dropped, and the next use loads the index with it
    solid("blue", size=(80, 60)).save(photos / "new.jpg")
    run_indexer(library, encoder)
    index = library.vectors("media")
    assert not isinstance(index, MappedIndex) and len(index) == 9
    library.close()
    # another process wrote after the save (a row newer than the saved index): not mapped
    writer = Library(library.path)
    row = writer.media_by_path(photos / "new.jpg").id
    writer.db.conn.execute("UPDATE embeddings SET gen = gen + 100 WHERE media_id = ?", (row,))
    reader = Library(library.path)
    reader.read_in_place = True
    assert not isinstance(reader.vectors("media"), MappedIndex) and len(reader.vectors("media")) == 9
    reader.close()
    writer.close()


def test_a_vector_damaged_in_the_saved_file_is_caught_by_the_spot_check(tmp_path, photos, encoder):
    library = _indexed(tmp_path, photos, encoder)
    prefix = library.index_prefix("media", library.model_id)
    library.close()
    # every vector's sign flipped in place: sizes, header and ids still agree
    data = np.memmap(prefix.parent / (prefix.name + ".hnsw"), dtype=np.uint8, mode="r+")
    header = np.frombuffer(bytes(data[:HEADER.size]), dtype="<u8", count=6)
    elements, per_element, label_offset, offset_data = int(header[2]), int(header[3]), int(header[4]), int(header[5])
    records = data[HEADER.size:HEADER.size + elements * per_element].reshape(elements, per_element)
    floats = records[:, offset_data:label_offset].view("<f4")
    floats *= -1
    data.flush()
    del data, records, floats
    reader = Library(library.path)
    reader.read_in_place = True
    index = reader.vectors("media")
    assert not isinstance(index, MappedIndex)
    assert reader.status().index["media"]["healthy"]
    reader.close()
