"""Scanning and indexing: incremental runs, moves, deletes, links, progress, pause and cancel."""
from __future__ import annotations

import os
import shutil
import threading
import time

from fakes import FakeModel, fake_encoder, noise_image, run_indexer, solid, write_video

from app.library.encoder import Encoder
from app.library.indexer import Indexer, IndexOptions, decode_workers
from app.library.search import SearchService

ALL = float("-inf")  # the fake model is not calibrated: no cut-off


def _counts(library):
    conn = library.db.conn
    media = conn.execute("SELECT COUNT(*) FROM media WHERE status = 'ok'").fetchone()[0]
    embeddings = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    return media, embeddings, len(library.vectors("media"))


def test_first_run_indexes_everything_and_second_run_touches_nothing(library, encoder, photos):
    library.add_folder(photos)
    report = run_indexer(library, encoder)
    assert (report.added, report.failed) == (8, 0)
    assert _counts(library) == (8, 8, 8)
    encoded = encoder.model.images_encoded
    report = run_indexer(library, encoder)
    assert report.unchanged == 8 and report.added == report.updated == 0
    assert encoder.model.images_encoded == encoded  # no model work at all


def test_changed_file_is_the_only_one_re_embedded(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    before = library.media_by_path(photos / "red.jpg").id
    encoded = encoder.model.images_encoded
    time.sleep(0.01)
    solid("yellow").save(photos / "red.jpg")
    report = run_indexer(library, encoder)
    assert (report.updated, report.unchanged, report.added) == (1, 7, 0)
    assert encoder.model.images_encoded == encoded + 1
    assert library.media_by_path(photos / "red.jpg").id == before  # same row, new vector
    hits = SearchService(library, encoder, min_relevance=ALL).text("yellow", k=1, hybrid=False)
    assert hits[0].path == str(photos / "red.jpg")


def test_touched_but_identical_file_keeps_its_embedding(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    encoded = encoder.model.images_encoded
    os.utime(photos / "green.jpg", (time.time() + 100, time.time() + 100))
    report = run_indexer(library, encoder)
    assert report.touched == 1 and encoder.model.images_encoded == encoded


def test_moved_and_renamed_files_keep_row_and_embedding(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    old = library.media_by_path(photos / "blue.jpg")
    vector = library.embedding(old.id)
    (photos / "moved").mkdir()
    shutil.move(photos / "blue.jpg", photos / "moved" / "renamed_blue.jpg")
    encoded = encoder.model.images_encoded
    report = run_indexer(library, encoder)
    assert (report.moved, report.removed, report.added) == (1, 0, 0)
    assert encoder.model.images_encoded == encoded
    new = library.media_by_path(photos / "moved" / "renamed_blue.jpg")
    assert new.id == old.id and (library.embedding(new.id) == vector).all()
    assert library.media_by_path(photos / "blue.jpg") is None


def test_deleted_files_leave_database_and_index(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    gone = library.media_by_path(photos / "green.jpg").id
    (photos / "green.jpg").unlink()
    shutil.rmtree(photos / "Paris 2019")
    report = run_indexer(library, encoder)
    assert report.removed == 6
    assert _counts(library) == (2, 2, 2)
    assert gone not in library.vectors("media")
    library.save_vectors()
    fresh = type(library)(library.path)  # the saved index agrees too
    assert len(fresh.vectors("media")) == 2 and gone not in fresh.vectors("media")
    fresh.close()


def test_hidden_system_folders_symlink_loops_and_hard_links(library, encoder, tmp_path):
    root = tmp_path / "lib_root"
    (root / "a").mkdir(parents=True)
    for name in (".hidden", "@eaDir", "$RECYCLE.BIN"):
        (root / name).mkdir()
        solid("red").save(root / name / "x.jpg")
    solid("red").save(root / ".dotfile.jpg")
    solid("green").save(root / "a" / "one.jpg")
    os.link(root / "a" / "one.jpg", root / "a" / "hardlink.jpg")
    os.symlink(root, root / "a" / "loop")  # a symlink back up: must not recurse forever
    (root / "notes.txt").write_text("not media")
    library.add_folder(root)
    report = run_indexer(library, encoder)
    assert report.scanned == 1 and report.added == 1


def test_video_hit_carries_the_timestamp_of_the_matching_segment(library, encoder, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "clip.mp4", ["red", "green", "blue"], seconds_each=4.0)
    solid("white").save(folder / "white.png")
    library.add_folder(folder)
    report = run_indexer(library, encoder)
    assert report.added == 2
    search = SearchService(library, encoder, min_relevance=ALL)
    for colour, window in (("red", (0, 4)), ("green", (4, 8)), ("blue", (8, 12))):
        hits = search.text(colour, k=5, hybrid=False)
        video = next(h for h in hits if h.kind == "video")
        assert window[0] <= video.timestamp < window[1], (colour, video.timestamp)
        assert video.to_dict()["timestamp"] == video.timestamp
    record = library.media_by_path(folder / "clip.mp4")
    assert 11 <= record.duration <= 13
    starts, ends, vectors = library.segments(record.id)
    assert list(starts) == [0, 2, 4, 6, 8, 10] and len(vectors) == 6


def test_video_frames_are_capped(library, encoder, tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    write_video(folder / "long.mp4", ["red", "green"] * 3, seconds_each=4.0, fps=2)  # 24 s
    library.add_folder(folder)
    run_indexer(library, encoder, video_max_frames=4)
    starts, _, _ = library.segments(library.media_by_path(folder / "long.mp4").id)
    assert len(starts) == 4


def test_progress_reports_and_pause_and_cancel(library, encoder, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        noise_image(i).save(folder / f"{i:03d}.png")
    library.add_folder(folder)
    reports = []
    indexer = Indexer(library, encoder, IndexOptions(batch_size=4, workers=2, vocabulary=False),
                      progress=reports.append)
    paused_at = []

    def on_progress(p):
        reports.append(p)
        if p.phase == "index" and p.done >= 8 and not paused_at:
            indexer.pause()
            paused_at.append(p.done)
            threading.Timer(0.3, indexer.cancel).start()

    indexer.progress = on_progress
    started = time.perf_counter()
    report = indexer.run()
    assert report.cancelled and time.perf_counter() - started >= 0.3
    index_reports = [r for r in reports if r.phase == "index"]
    assert index_reports[0].total == 60 and index_reports[-1].done < 60
    assert all(r.rate > 0 and r.current for r in index_reports)
    kept = _counts(library)
    assert kept[0] == kept[1] == kept[2] >= paused_at[0]  # written batches are kept, stores agree
    report = run_indexer(library, encoder)  # resumes: only the rest is done
    assert report.added == 60 - kept[0] and _counts(library) == (60, 60, 60)


def test_captions_are_searchable_by_name_and_describable(library, encoder, photos):
    (photos / "red.txt").write_text("Grandma's red birthday cake\n")
    library.add_folder(photos)
    run_indexer(library, encoder, vocabulary=True)
    search = SearchService(library, encoder, min_relevance=ALL)
    hits = search.text("birthday", k=3)
    assert hits[0].path == str(photos / "red.jpg") and "name" in hits[0].matched
    texts = search.describe(photos / "red.jpg", k=50)  # the fake ties every 'red' phrase
    assert any(t.source == "caption" and "birthday" in t.text for t in texts)
    assert all(t.source in ("caption", "vocabulary") for t in texts)


def test_a_new_model_re_embeds_while_the_old_one_answers(library, photos):
    old = fake_encoder("fake")
    library.add_folder(photos)
    run_indexer(library, old)
    assert library.model_id == old.model_id
    new = Encoder(FakeModel("fake2"), device="cpu", source="fake2")
    cancel = threading.Event()
    seen_models = []

    def progress(p):
        if p.phase == "index":
            seen_models.append(library.model_id)  # the old model still answers mid-run
            cancel.set()

    Indexer(library, new, IndexOptions(batch_size=2, vocabulary=False), progress=progress,
            cancel_event=cancel).run()
    assert library.model_id == old.model_id == seen_models[0]
    assert len(SearchService(library, old, min_relevance=ALL).text("red", k=3, hybrid=False)) >= 1
    at_switch = []

    def on_switch(model_id):  # the new model answers from here on; the old rows still exist
        at_switch.append((model_id, library.db.conn.execute(
            "SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (old.model_id,)).fetchone()[0]))
        assert len(SearchService(library, new, min_relevance=ALL).text("red", k=3, hybrid=False)) >= 1

    Indexer(library, new, IndexOptions(vocabulary=False), on_model_switch=on_switch).run()  # completes
    assert at_switch == [(new.model_id, 8)]
    assert library.model_id == new.model_id
    assert library.db.conn.execute("SELECT COUNT(*) FROM embeddings WHERE model_id = ?",
                                   (old.model_id,)).fetchone()[0] == 0
    assert len(library.vectors("media")) == 8


def test_forget_folder_and_file(library, encoder, photos):
    library.add_folder(photos)
    run_indexer(library, encoder)
    assert library.forget(photos / "red.jpg") == 1
    assert len(library.vectors("media")) == 7
    run_indexer(library, encoder)
    assert len(library.vectors("media")) == 7  # a forgotten file stays forgotten while unchanged
    assert library.forget(photos) == 8
    assert library.folders() == [] and len(library.vectors("media")) == 0


def test_a_second_indexing_run_on_the_same_library_is_refused(library, encoder, photos):
    import pytest

    from app.library.errors import LibraryError
    from app.library.lock import indexing_lock

    library.add_folder(photos)
    with indexing_lock(library.path), pytest.raises(LibraryError, match="another cots process is indexing"):
        run_indexer(library, encoder)
    assert run_indexer(library, encoder).added == 8  # free again once the other run is over


def test_decode_threads_follow_the_cores_and_take_them_all_beside_a_gpu(library, encoder, photos, monkeypatch):
    assert [decode_workers("cpu", cores) for cores in (1, 2, 8, 32)] == [1, 2, 8, 8]  # the model needs cores too
    assert [decode_workers(device, 16) for device in ("cuda", "mps")] == [16, 16]  # decoding is the bound there
    asked = []
    monkeypatch.setattr("app.library.indexer.decode_workers", lambda device: asked.append(device) or 2)
    library.add_folder(photos)
    run_indexer(library, encoder)
    assert asked == ["cpu"] and library.status().indexed == 8


def test_a_search_before_the_first_vectors_leaves_indexing_working(library, encoder, photos):
    """A query on an empty library (typed while the first indexing starts) or on photos before the first video
    asks for an index with nothing stored: it must not be kept as a 1-d index that the vectors indexed next
    cannot go into (issue 32: 'cannot reshape array of size 64 into shape (4,1)')."""
    search = SearchService(library, encoder)
    assert search.text("blue") == []
    library.add_folder(photos)
    assert run_indexer(library, encoder).added == 8
    assert search.text("blue")[0].path.endswith("blue.jpg")  # also searched the (empty) segment index
    write_video(photos / "clip.mp4", ["red", "green"], seconds_each=4.0)
    report = run_indexer(library, encoder)
    assert report.added == 1 and not report.errors and len(library.vectors("segment")) >= 2
