"""The docs are checked against the code: every name and path they cite exists, every relative link leads
somewhere, and the contributor guide's layout lists the tree as it is.

What counts as a reference (only inside `backticks`, outside fenced code blocks):
- a fully qualified name under a project package: `cots_core.losses.mcl_loss`, `app.cli:main`,
  `app.library.search.Filters.place` (the longest importable module prefix is imported, the rest looked up);
- a short name whose first part is the basename of exactly one project module or package:
  `losses.mcl_loss`, `signals.exif.read_exif` (config keys such as `model.loss.w_kl`, `optim.tower_lr_scale`
  are not names: their roots, the config dataclasses' field names, are left out);
- a path under a project folder or a top-level file: `app/library/signals/base.py`, `pyproject.toml`,
  `tests/app/test_db.py::test_x` (placeholders such as `NAME`, `{000..009}`, `*` are not checked).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("cots_core", "trainer", "app")
NAME_ROOTS = (*PACKAGES, "bench", "cots_resources")
PATH_ROOTS = ("cots_core", "trainer", "app", "tests", "bench", "docs", "resources", ".ci")
TOP_LEVEL_FILES = ("pyproject.toml", "Makefile", "README.md", "LICENSE")
# a dotted word ending in one of these is a file name ("metrics.jsonl", "config.json"), not a Python name
FILE_SUFFIXES = {"json", "jsonl", "yaml", "yml", "toml", "txt", "py", "md", "jpg", "jpeg", "png", "gif", "webp",
                 "heic", "mp4", "mov", "csv", "tsv", "tar", "gz", "hnsw", "onnx", "safetensors", "pt", "caption",
                 "db", "sqlite", "cfg", "ini", "log"}
PLACEHOLDER = re.compile(r"[*{}<>]|NAME|NNN|\.\.\.")

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
DOTTED = re.compile(r"(?<![\w./:-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?::([A-Za-z_]\w*))?(?![\w/-])")
_ROOTS = "|".join(re.escape(r) for r in PATH_ROOTS)
_FILES = "|".join(re.escape(f) for f in TOP_LEVEL_FILES)
PATH = re.compile(rf"(?<![\w./-])((?:{_ROOTS})/[\w./*{{}}<>-]*|{_FILES})(?:::?[\w.]+)?(?![\w/])")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _config_roots() -> set[str]:
    from cots_core.config import ModelConfig
    from trainer.config import TrainConfig

    return {f.name for f in dataclasses.fields(ModelConfig)} | {f.name for f in dataclasses.fields(TrainConfig)} | {
        "model"}


def _project_modules() -> dict[str, list[str]]:
    """Basename -> dotted names of every module and package under the project's packages."""
    found: dict[str, list[str]] = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found.setdefault(parts[-1], []).append(".".join(parts))
    return found


def _inline_spans(text: str) -> list[str]:
    return INLINE.findall(FENCE.sub("", text))


def _has_attribute(obj, name: str) -> bool:
    if hasattr(obj, name):
        return True
    if not inspect.isclass(obj):
        return False
    # dataclass fields with factories, annotated attributes and those set in __init__ live on instances only
    if dataclasses.is_dataclass(obj) and name in {f.name for f in dataclasses.fields(obj)}:
        return True
    if any(name in getattr(k, "__annotations__", {}) for k in obj.__mro__):
        return True
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return False
    return re.search(rf"self\.{re.escape(name)}\s*[:=]", source) is not None


def resolve(dotted: str) -> str | None:
    """None when `dotted` names something that exists, else what is missing."""
    parts = dotted.split(".")
    module, rest = None, parts
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and not name.startswith(error.name):
                return f"importing {name} fails: {error}"
            continue
        rest = parts[cut:]
        break
    if module is None:
        return f"no module {parts[0]}"
    obj, where = module, module.__name__
    for part in rest:
        if not _has_attribute(obj, part):
            return f"{where} has no {part!r}"
        obj = getattr(obj, part, None)
        where = f"{where}.{part}"
        if obj is None:  # an instance attribute: nothing further to look into
            break
    return None


def _name_references(text: str, modules: dict[str, list[str]], config_roots: set[str]) -> list[tuple[str, str]]:
    """(as written, fully qualified) for every Python name the text cites."""
    refs = []
    for span in _inline_spans(text):
        for match in DOTTED.finditer(span):
            dotted, attr = match.group(1), match.group(2)
            parts = dotted.split(".")
            if parts[-1].lower() in FILE_SUFFIXES and attr is None:
                continue
            if parts[0] in NAME_ROOTS:
                full = dotted
            elif parts[0] in config_roots or len(modules.get(parts[0], [])) != 1:
                continue
            else:
                full = ".".join([modules[parts[0]][0], *parts[1:]])
            refs.append((match.group(0), f"{full}.{attr}" if attr else full))
    return refs


def _path_references(text: str) -> list[str]:
    refs = []
    for span in _inline_spans(text):
        for match in PATH.finditer(span):
            path = re.split(r"::?", match.group(0))[0]
            if not PLACEHOLDER.search(path):
                refs.append(path)
    return refs


def test_every_cited_name_exists():
    modules, config_roots = _project_modules(), _config_roots()
    problems = []
    for doc in DOCS:
        for written, full in _name_references(doc.read_text(), modules, config_roots):
            missing = resolve(full)
            if missing:
                problems.append(f"{doc.relative_to(ROOT)}: `{written}` ({full}): {missing}")
    assert not problems, "names the docs cite that do not exist:\n" + "\n".join(sorted(set(problems)))


def test_every_cited_path_exists():
    problems = [f"{doc.relative_to(ROOT)}: `{path}` does not exist"
                for doc in DOCS for path in _path_references(doc.read_text())
                if not (ROOT / path.rstrip("/")).exists()]
    assert not problems, "paths the docs cite that do not exist:\n" + "\n".join(sorted(set(problems)))


def anchors(path: Path) -> set[str]:
    """The #anchors GitHub gives a Markdown file's headings."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_relative_link_leads_somewhere():
    problems = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = doc.parent / file if file else doc
            if not linked.exists():
                problems.append(f"{doc.relative_to(ROOT)}: link ({target}) leads nowhere from {doc.parent.relative_to(ROOT)}/")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{doc.relative_to(ROOT)}: link ({target}): {linked.name} has no heading #{anchor}")
    assert not problems, "\n".join(problems)


def layout_entries(text: str) -> dict[str, str]:
    """Path -> description, from the first fenced block after '## Layout'."""
    section = text.split("\n## Layout", 1)
    assert len(section) == 2, "docs/CONTRIBUTING.md has no '## Layout' section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section[1], re.S | re.M)
    assert block, "the Layout section of docs/CONTRIBUTING.md has no fenced block"
    entries = {}
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        path, _, description = line.strip().partition(" ")
        assert description.strip(), f"docs/CONTRIBUTING.md, Layout: {path!r} has no description"
        entries[path] = description.strip()
    return entries


def tree_entries() -> set[str]:
    """Every package folder and module under cots_core/, trainer/, app/ (not __init__.py, __main__.py)."""
    found = set()
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if path.name == "__init__.py":
                found.add(rel.parent.as_posix() + "/")
            elif path.name != "__main__.py":
                found.add(rel.as_posix())
    return found


def test_layout_matches_the_tree():
    listed = layout_entries((ROOT / "docs" / "CONTRIBUTING.md").read_text())
    gone = sorted(p for p in listed if not (ROOT / p.rstrip("/")).exists())
    unlisted = sorted(tree_entries() - set(listed))
    assert not gone and not unlisted, (
        "docs/CONTRIBUTING.md, Layout does not match the tree:\n"
        + "".join(f"  listed but missing: {p}\n" for p in gone)
        + "".join(f"  in the tree but not listed: {p}\n" for p in unlisted))


def test_the_checks_catch_a_broken_reference():
    modules, config_roots = _project_modules(), _config_roots()
    text = ("`storage.people_candidates` and `cots_core.losses.no_such_loss` and `app.gui.service.SignalChoices.places`"
            " but not `model.loss.w_kl` nor `metrics.jsonl`; `app/no_such.py`, `tests/app/test_signal_NAME.py`")
    refs = dict(_name_references(text, modules, config_roots))
    assert set(refs) == {"storage.people_candidates", "cots_core.losses.no_such_loss",
                         "app.gui.service.SignalChoices.places"}
    assert all(resolve(full) for full in refs.values())
    assert resolve("cots_core.losses.mcl_loss") is None
    assert resolve("app.gui.service.SignalChoices.second_pass") is None  # a dataclass field
    assert resolve("app.cli.main") is None
    assert _path_references(text) == ["app/no_such.py"]
    assert "cots_core/losses.py" in tree_entries() and "app/library/signals/" in tree_entries()
