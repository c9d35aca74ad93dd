"""The package layout is the architecture: each folder is one layer, and imports point down only.

docs/ARCHITECTURE.md draws the same table; a change to one changes the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "modelport"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS: dict[str, int] = {
    "core": 0,
    "custom": 0,  # the public base class of the python flavor: core types only
    "client": 0,  # the public HTTP client: core types only
    "runtimes": 1,
    "observability": 2,
    "serving": 3,
    "protocols": 4,
    "offline": 4,
    "process": 5,
    "spark": 6,
    "bench": 6,
    "deploy": 6,
    "aws_lambda": 6,
    "cli": 7,
}
# Layers side by side that must not know each other.
APART = {frozenset({"protocols", "offline"})}


def _layer(module: str) -> str | None:
    """The top-level folder or module of a dotted ``modelport.*`` name (None for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _runtime_imports(path: Path) -> list[tuple[int, str]]:
    """The ``modelport`` modules a file imports when it runs (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "modelport":
                names = [f"modelport.{alias.name}" for alias in node.names]
            found.extend((node.lineno, name) for name in names if name.startswith("modelport"))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("modelport"))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "proto" not in p.parts)


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in _modules()} - set(LAYERS) - {"__init__"}
    assert not unplaced, f"place these in a layer (and in docs/ARCHITECTURE.md): {sorted(unplaced)}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    mine = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if mine == "__init__":
        return  # the package's own front door re-exports from every layer
    wrong = []
    for line, module in _runtime_imports(path):
        theirs = _layer(module)
        if theirs is None or theirs == mine or theirs == "__version__":
            continue
        if LAYERS[theirs] > LAYERS[mine] or frozenset({mine, theirs}) in APART:
            wrong.append(f"line {line}: {module} ({theirs}, layer {LAYERS[theirs]})")
    assert not wrong, f"{mine} (layer {LAYERS[mine]}) must not import upward: {wrong}"


def test_no_two_modules_share_a_name_across_layers() -> None:
    """A name means one thing: a module and a package, or two packages, never share a stem."""
    packages = {p.parent.name for p in PACKAGE.rglob("__init__.py")}
    modules = {p.stem for p in _modules() if p.stem != "__init__"}
    assert not packages & modules, f"a module and a package share these names: {sorted(packages & modules)}"
