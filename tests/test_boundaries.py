"""The import rules of the layout: cots_core is a library; trainer and app never import each other."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = {"PySide6", "sqlite3", "sqlite_utils", "argparse", "app", "trainer", "hnswlib", "tqdm", "rich"}


def imported_modules(package: str):
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module.split(".")[0]


def test_core_imports_no_application_code():
    bad = [(str(p), m) for p, m in imported_modules("cots_core") if m in FORBIDDEN_IN_CORE]
    assert not bad


def test_core_never_prints_or_exits():
    for path in (ROOT / "cots_core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"print", "exit", "quit"}, path
            if isinstance(node, ast.Attribute) and node.attr == "exit":
                assert not (isinstance(node.value, ast.Name) and node.value.id == "sys"), path


def test_trainer_and_app_do_not_import_each_other():
    assert not [p for p, m in imported_modules("trainer") if m == "app"]
    assert not [p for p, m in imported_modules("app") if m == "trainer"]
    assert not [p for p, m in imported_modules("app") if m == "PySide6" and "gui" not in p.parts]


def test_every_package_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("app", "cots_core", "trainer")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, found - listed
