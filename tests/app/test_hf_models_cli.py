"""A Hugging Face CLIP or SigLIP folder through the real CLI: `cots index --model FOLDER`, then `search` and
`similar` rank the library as transformers' own model does."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hf_tiny import make_tiny_clip, make_tiny_siglip

from app.cli import main

REAL_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "real_photos"
NAMES = ("astronaut", "cat", "coffee", "dahlia", "moon", "motorcycle", "pagoda", "rocket", "pier", "grass")
QUERIES = ["a cat", "an astronaut on the moon", "a red flower", "a coffee cup on a table"]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def hf_folder(request, tmp_path_factory) -> Path:
    maker = make_tiny_clip if request.param == "clip" else make_tiny_siglip
    return maker(tmp_path_factory.mktemp(request.param) / f"tiny-{request.param}")


@pytest.fixture(scope="module", params=["clip", "siglip"])
def processor_folder(request, tmp_path_factory) -> Path:
    """Saved as transformers 5 saves a processor: processor_config.json, no preprocessor_config.json."""
    maker = make_tiny_clip if request.param == "clip" else make_tiny_siglip
    folder = maker(tmp_path_factory.mktemp(request.param) / f"tiny-{request.param}", processor=True)
    assert not (folder / "preprocessor_config.json").exists() and (folder / "processor_config.json").is_file()
    return folder


@pytest.fixture
def real_photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(REAL_PHOTOS / f"{name}.jpg", folder / f"{name}.jpg")
    return folder


def _reference_scores(folder: Path, photos: Path) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Cosines from transformers' model + processor: per query, per photo; and photo-to-photo for cat.jpg.
    The photos as the library decodes them (a JPEG at twice the model's size, by DCT scaling), so that what
    is compared is the model path alone (tests/core/test_hf_checkpoints.py compares full-size photos too)."""
    from transformers import AutoModel, AutoProcessor

    from cots_core.media import read_image

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    padding = "max_length" if model.config.model_type == "siglip" else True
    size = model.config.vision_config.image_size
    paths = [str(photos / f"{name}.jpg") for name in NAMES]
    with torch.no_grad():
        images = F.normalize(model.get_image_features(
            **processor(images=[read_image(p, size).frames[0] for p in paths], return_tensors="pt")).pooler_output,
            dim=-1)
        texts = F.normalize(model.get_text_features(
            **processor(text=QUERIES, padding=padding, return_tensors="pt")).pooler_output, dim=-1)
    by_query = {q: dict(zip(paths, (texts[i] @ images.T).tolist())) for i, q in enumerate(QUERIES)}
    cat = paths.index(str(photos / "cat.jpg"))
    return by_query, dict(zip(paths, (images[cat] @ images.T).tolist()))


def _json(capsys, argv: list[str]):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _assert_same_ranking(hits: list[dict], reference: dict[str, float]) -> None:
    """The CLI's scores are the reference cosines (the library rounds them to 4 digits), so its order is
    theirs."""
    scores = {hit["path"]: hit["score"] for hit in hits}
    assert set(scores) == set(reference)
    for path, score in scores.items():
        assert abs(score - reference[path]) < 2e-3, (path, score, reference[path])
    order = [hit["path"] for hit in hits]
    for earlier, later in zip(order, order[1:]):
        assert reference[earlier] >= reference[later] - 2e-3, (earlier, later)


def test_index_search_and_similar_rank_as_the_reference_model(hf_folder, real_photos, tmp_path, capsys):
    _index_search_and_similar_rank_as_the_reference_model(hf_folder, real_photos, tmp_path, capsys)


def test_a_transformers_5_processor_folder_indexes_and_searches(processor_folder, real_photos, tmp_path, capsys):
    _index_search_and_similar_rank_as_the_reference_model(processor_folder, real_photos, tmp_path, capsys)


def _index_search_and_similar_rank_as_the_reference_model(hf_folder, real_photos, tmp_path, capsys):
    common = ["--db", str(tmp_path / "library.db"), "--device", "cpu"]
    assert main(["index", str(real_photos), *common, "--model", str(hf_folder), "--quiet", "--no-ocr",
                 "--no-faces"]) == 0
    status = _json(capsys, ["status", "--json", *common])
    assert status["indexed"] == len(NAMES) and status["model"].startswith(f"tiny-{hf_folder.name.split('-')[1]}")
    by_query, similar_to_cat = _reference_scores(hf_folder, real_photos)
    for query in QUERIES:  # the library's own model (no --model): the one it was indexed with
        hits = _json(capsys, ["search", query, "--all", "--no-names", "--json", "-k", "50", *common])
        _assert_same_ranking(hits, by_query[query])
    similar = _json(capsys, ["similar", str(real_photos / "cat.jpg"), "--json", "-k", "50", *common])
    reference = {path: score for path, score in similar_to_cat.items() if not path.endswith("cat.jpg")}
    _assert_same_ranking([hit for hit in similar if not hit["path"].endswith("cat.jpg")], reference)
    # describe runs on these towers too (the shipped vocabulary embedded by the CLIP-family text tower)
    texts = _json(capsys, ["describe", str(real_photos / "cat.jpg"), "--json", "-k", "3", *common])
    assert len(texts) == 3 and all(isinstance(t["text"], str) for t in texts)


@pytest.mark.parametrize("damage", ["auto_map", "pickle_only", "other_architecture", "no_tokenizer"])
def test_a_bad_model_folder_leaves_the_library_as_it_was(damage, hf_folder, real_photos, tmp_path, capsys):
    common = ["--db", str(tmp_path / "library.db"), "--device", "cpu"]
    assert main(["index", str(real_photos), *common, "--model", str(hf_folder), "--quiet", "--no-ocr",
                 "--no-faces"]) == 0
    before = _json(capsys, ["status", "--json", *common])
    bad = tmp_path / "bad"
    shutil.copytree(hf_folder, bad)
    config = json.loads((bad / "config.json").read_text())
    if damage == "auto_map":
        config["auto_map"] = {"AutoModel": "modeling_evil.Model"}
        (bad / "modeling_evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')\n")
    elif damage == "pickle_only":
        (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    elif damage == "other_architecture":
        config["model_type"] = "blip"
    else:
        for path in bad.iterdir():
            if path.name.startswith(("tokenizer", "vocab", "merges", "spiece", "special")):
                path.unlink()
    (bad / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["index", *common, "--model", str(bad), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and len([line for line in err.splitlines() if "error" in line]) == 1
    assert not (tmp_path / "pwned").exists()
    after = _json(capsys, ["status", "--json", *common])
    assert (after["model"], after["indexed"]) == (before["model"], before["indexed"])
