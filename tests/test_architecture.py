"""The import rules of the README's Architecture section, checked on the code itself, so the
picture cannot drift: actions -> reads -> broker, the core never imports streamlit, pages never
speak HTTP, AMQP or SQL, the local tooling stays out of the product, tests share helpers only
through tests/support."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each layer of the core may import of the others (settings and errors: everyone).
MAY_IMPORT = {
    "broker": {"broker"},
    "reads": {"broker", "reads"},
    "actions": {"broker", "reads", "actions"},
    "watch": {"broker", "reads", "watch"},
    "cli": {"broker", "reads", "actions", "watch", "cli", "local"},
    "local": {"broker", "reads", "actions", "watch", "local"},
}
SPEAKING = ("requests", "pika", "sqlite3", "urllib3", "psycopg")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def layer_of(module: str) -> str | None:
    """`dashboard.reads.overview` -> `reads`; None for settings, errors and the package itself."""
    parts = module.split(".")
    return (
        parts[1] if parts[0] == "dashboard" and len(parts) > 1 and parts[1] in MAY_IMPORT else None
    )


def core_files() -> list[tuple[Path, str | None]]:
    return [
        (path, layer_of(".".join(path.relative_to(ROOT).with_suffix("").parts)))
        for path in sources("dashboard")
    ]


def test_the_core_never_imports_streamlit():
    offenders = [
        str(path.relative_to(ROOT))
        for path, _ in core_files()
        if any(name.split(".")[0] == "streamlit" for name in imports_of(path))
    ]
    assert offenders == []


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_each_layer_imports_only_the_layers_below_it(layer):
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path, own in core_files()
        if own == layer
        for name in imports_of(path)
        if (other := layer_of(name)) is not None and other not in MAY_IMPORT[layer]
    }
    assert offenders == set()


def test_settings_and_errors_import_no_layer():
    for name in ("settings", "errors"):
        path = ROOT / "dashboard" / f"{name}.py"
        assert {layer_of(module) for module in imports_of(path)} <= {None}, name


def test_only_the_demo_verb_and_the_tests_import_the_local_tooling():
    users = {
        str(path.relative_to(ROOT))
        for path in [*sources("dashboard", "pages"), ROOT / "streamlit_app.py"]
        if layer_of(".".join(path.relative_to(ROOT).with_suffix("").parts)) != "local"
        and any(layer_of(name) == "local" for name in imports_of(path))
    }
    assert users == {"dashboard/cli/__init__.py"}


def test_pages_only_render():
    """No page speaks HTTP, AMQP or SQL, or reaches the local tooling."""
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in [*sources("pages"), ROOT / "streamlit_app.py"]
        for name in imports_of(path)
        if name.split(".")[0] in SPEAKING or layer_of(name) == "local"
    }
    assert offenders == set()


def test_only_the_database_module_speaks_sql():
    """In the product; the local tooling makes its disposable cluster's databases."""
    speaking = {
        str(path.relative_to(ROOT))
        for path, layer in core_files()
        if layer != "local" and imports_of(path) & {"sqlite3", "psycopg"}
    }
    assert speaking == {"dashboard/database.py"}


def test_tests_share_helpers_only_through_tests_support():
    offenders = {
        f"{path.name} imports {name}"
        for path in sources("tests")
        for name in imports_of(path)
        if name.startswith("tests.") and not name.startswith("tests.support")
    }
    assert offenders == set()


def test_the_readme_layout_names_every_module_of_the_core():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") : readme.index("## Dependencies")]
    unnamed = [
        str(path.relative_to(ROOT))
        for path, _ in core_files()
        if path.name not in ("__init__.py", "__main__.py") and path.name not in layout
    ]
    assert unnamed == []
