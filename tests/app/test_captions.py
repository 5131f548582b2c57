"""One caption convention: the library (``cots index``) and the trainer's sidecar reader (``cots train
finetune``) read the same captions from the same folder."""
from __future__ import annotations

from fakes import run_indexer, solid

from cots_core.media import read_captions
from trainer.data.readers import read_sidecar_folder
from trainer.data.records import LoadReport


def test_the_indexer_and_the_trainer_read_the_same_captions(library, encoder, tmp_path):
    folder = tmp_path / "captioned"
    folder.mkdir()
    sidecars = {
        "beach.jpg": ("beach.jpg.txt", "a  beach\n\nthe sea at dusk\n"),  # the form the trainer used to miss
        "dog.jpg": ("dog.txt", "a dog on a sofa\n"),
        "cake.jpg": ("cake.caption", "grandma's birthday cake\n"),
        "both.jpg": ("both.jpg.txt", "the full name wins\n"),
    }
    for image, (sidecar, text) in sidecars.items():
        solid("red").save(folder / image)
        (folder / sidecar).write_text(text)
    (folder / "both.txt").write_text("the stem loses\n")
    solid("blue").save(folder / "bare.jpg")

    library.add_folder(folder)
    run_indexer(library, encoder)
    indexed = {name: library.media_by_path(folder / name).caption for name in [*sidecars, "bare.jpg"]}
    report = LoadReport(source=str(folder))
    trained = {record.path.rsplit("/", 1)[-1]: record.captions for record in read_sidecar_folder(folder, report)}

    assert trained == {"beach.jpg": ["a beach", "the sea at dusk"], "dog.jpg": ["a dog on a sofa"],
                       "cake.jpg": ["grandma's birthday cake"], "both.jpg": ["the full name wins"]}
    assert indexed == {name: " ".join(captions) for name, captions in trained.items()} | {"bare.jpg": None}
    assert report.skipped == {"no caption": 1}
    assert read_captions(folder / "beach.jpg") == trained["beach.jpg"]
