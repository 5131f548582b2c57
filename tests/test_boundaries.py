"""The import rules of the layout (cots_core is a library; trainer and app never import each other) and
the size of the app's functions."""
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


# The command line sits on top of the app: it may import the GUI (lazily, for `cots gui`), never the other
# way round, and the library below both imports neither. What the GUI and the CLI share lives in app/library.
CLI_MODULES = ("app.cli", "app.library_cli", "app.people_cli", "app.models_cli")


def imported_names(tree: ast.AST):
    """(line, dotted name) of every absolute import in ``tree``; ``from app import cli`` names ``app.cli``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def imports_the_cli(name: str) -> bool:
    return any(name == cli or name.startswith(cli + ".") for cli in CLI_MODULES)


def test_the_gui_and_the_library_import_no_cli_module():
    found = [f"{path.relative_to(ROOT).as_posix()}:{line} imports {name}"
             for package in ("app/gui", "app/library") for path in sorted((ROOT / package).rglob("*.py"))
             for line, name in imported_names(ast.parse(path.read_text(), filename=str(path)))
             if imports_the_cli(name)]
    assert not found, "move what is shared into app/library:\n" + "\n".join(found)


def test_the_cli_rule_would_catch_a_breach():
    breach = ast.parse("from app import cli\nimport app.people_cli\nfrom app.cli.common import positive_int\n"
                       "from app.library import cli_words\nimport app.client\n")
    assert [line for line, name in imported_names(breach) if imports_the_cli(name)] == [1, 2, 3, 3]


def test_every_package_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("app", "cots_core", "trainer")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, found - listed


# Where SQL may run: the modules of the storage package (app/library/storage/, one per concern) hold every
# statement of the library; db.py opens connections and migrates the schema; repair.py and salvage_copy.py
# read a damaged file table by table to salvage it (see their docstrings). Anything else calls a storage
# function (app/library) or a ``Library``/search method.
STORAGE_PACKAGE = "app/library/storage/"
SQL_MODULES = {"app/library/db.py", "app/library/repair.py", "app/library/salvage_copy.py"}
SQL_CALLS = {"execute", "executemany", "executescript"}
# The storage package is SQL and nothing else: no Qt, no model, no layer above it (the layers above import it).
STORAGE_MAY_NOT_IMPORT = ("PySide6", "torch", "cots_core", "app.gui", "app.cli", "app.library.library",
                          "app.library.indexer", "app.library.search", "app.library.people", "app.library.signal_runner",
                          "app.library.planning", "app.library.encoder")
MAX_STORAGE_MODULE_LINES = 300


def _app_files():
    for path in sorted((ROOT / "app").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def may_run_sql(name: str) -> bool:
    return name.startswith(STORAGE_PACKAGE) or name in SQL_MODULES


def test_sql_runs_only_in_storage():
    found = [f"{name}:{node.lineno}: .{node.func.attr}(...) runs SQL outside app/library/storage/: add a "
             "storage function and call it" for name, tree in _app_files() if not may_run_sql(name)
             for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in SQL_CALLS]
    assert not found, "\n".join(found)


def module_imports(tree: ast.AST) -> set[str]:
    """Every module a file imports (absolute names; relative imports are not used in app/)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_storage_package_is_sql_only_and_small():
    modules = [(name, tree) for name, tree in _app_files() if name.startswith(STORAGE_PACKAGE)]
    assert len(modules) >= 6, "the storage package's modules were not found"
    found = [f"{name} imports {module}" for name, tree in modules for module in module_imports(tree)
             if any(module == bad or module.startswith(bad + ".") for bad in STORAGE_MAY_NOT_IMPORT)]
    found += [f"{name} has {lines} lines (split it by concern)" for name, _ in modules
              if (lines := len((ROOT / name).read_text().splitlines())) > MAX_STORAGE_MODULE_LINES]
    assert not found, "\n".join(found)


def _raw_connection_use(node) -> str | None:
    """What a node does with a database connection, if anything (``x.conn``, ``x.db.anything``)."""
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Attribute) and node.value.attr == "db":
            return f".db.{node.attr}"
        if node.attr == "conn":
            return ".conn"
    return None


def test_gui_and_cli_never_touch_a_connection():
    """The GUI and the CLI ask ``Library`` and search for what they need: no connection, no transaction."""
    found = [f"{name}:{node.lineno}: {use} reaches the database directly: call a Library or search method "
             "(which calls storage)" for name, tree in _app_files()
             if name.startswith("app/gui/") or "/" not in name.removeprefix("app/")
             for node in ast.walk(tree) if (use := _raw_connection_use(node))]
    assert not found, "\n".join(found)


def test_the_rules_above_would_catch_a_breach():
    assert may_run_sql("app/library/storage/people.py") and not may_run_sql("app/library/people.py")
    assert "app.library.library" in module_imports(ast.parse("from app.library.library import Library"))
    bad = ast.parse("library.db.conn.execute('SELECT 1')\nrows = self.conn.executemany(q, [])\n")
    calls = [n.func.attr for n in ast.walk(bad) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert {"execute", "executemany"} <= set(calls) & SQL_CALLS
    assert {_raw_connection_use(n) for n in ast.walk(bad)} >= {".conn", ".db.conn"}


MAX_STATEMENTS = 40



def statement_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Statements in the body, nested blocks included, but not those inside nested functions or classes
    (a nested ``def`` itself counts as one)."""
    count, pending = 0, list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        count += isinstance(node, ast.stmt)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return count


def functions_with_names(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from functions_with_names(node, f"{prefix}{node.name}.")


def test_statement_count_sees_nested_blocks_but_not_nested_functions():
    source = ("def f(x):\n    if x:\n        for i in x:\n            y = i\n    def g():\n        a = 1\n"
              "        b = 2\n    return g\n")
    counts = {name: statement_count(node) for name, node in functions_with_names(ast.parse(source))}
    assert counts == {"f": 5, "f.g": 2}  # if, for, y =, def g, return


def test_no_function_in_app_has_more_than_40_statements():
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for name, node in functions_with_names(ast.parse(path.read_text(), filename=str(path))):
            count = statement_count(node)
            if count > MAX_STATEMENTS:
                offenders.append(f"{relative}:{node.lineno} {name} ({count} statements)")
    assert not offenders, "split these functions:\n" + "\n".join(offenders)


# The main window builds the components and connects them; the wiring of each lives in its controller
# (app/gui/controllers.py, search_controller.py, indexing.py, ...). Its statements, nested ones included.
MAX_WINDOW_STATEMENTS = 200


def class_statement_count(tree: ast.AST, name: str) -> int:
    """Statements in the body of class ``name``, counted recursively (its methods' bodies included)."""
    [cls] = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == name]
    return sum(isinstance(node, ast.stmt) for statement in cls.body for node in ast.walk(statement))


def test_class_statement_count_counts_methods_and_nested_blocks():
    source = "class A:\n    x = 1\n    def f(self):\n        if self:\n            return 2\n"
    assert class_statement_count(ast.parse(source), "A") == 4  # x =, def f, if, return


def test_the_main_window_stays_wiring():
    count = class_statement_count(ast.parse((ROOT / "app/gui/window.py").read_text()), "MainWindow")
    assert count <= MAX_WINDOW_STATEMENTS, (f"MainWindow has {count} statements (at most {MAX_WINDOW_STATEMENTS}):"
                                            " move wiring into the controller that owns it")


MAX_MODULE_LINES = 600


def test_no_product_module_is_over_600_lines():
    long = [f"{path.relative_to(ROOT)}: {lines} lines" for package in ("app", "cots_core", "trainer")
            for path in sorted((ROOT / package).rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, "split these modules:\n" + "\n".join(long)

