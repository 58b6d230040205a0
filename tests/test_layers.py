"""Every module imports only its own layer and the layers below it (DESIGN.md's layer order).

The imports are read from the source (``ast``), function-level imports included, so a lazy import
cannot hide an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lnmbench"

# top to bottom; a module may import its own layer and any layer after it. ``report`` and ``audit``
# read results and run the lower layers, so they sit under the CLI; the classifier-guided noise
# generator trains a backbone, so ``noise`` sits above ``models``. The last row is the base every
# layer may use.
LAYERS: list[tuple[str, ...]] = [
    ("cli",),
    ("report", "audit"),
    ("experiment",),
    ("executors",),
    ("engine",),
    ("methods",),
    ("noise",),
    ("models",),
    ("data", "datasets_bundled"),
    ("metrics",),
    ("errors", "registry", "atomic_files", "progress", "presets", "__init__"),
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> str:
    """``lnmbench.engine.loop`` -> ``engine``; ``lnmbench`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every lnmbench import in the file (``module``: its
    dotted name, default from its place in the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = (module or module_name(path)).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "lnmbench":  # from lnmbench import models -> lnmbench.models
                found += [(node.lineno, f"lnmbench.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, mod))
    return [(line, m) for line, m in found if m == "lnmbench" or m.startswith("lnmbench.")]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer():
    packages = {layer_of(module_name(p)) for p in SOURCES}
    assert packages <= set(RANK), f"add to LAYERS: {sorted(packages - set(RANK))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_layer_above_it(path):
    own = layer_of(module_name(path))
    upward = [
        f"line {line}: {mod} ({layer_of(mod)} is above {own})"
        for line, mod in imported_modules(path)
        if RANK.get(layer_of(mod), len(LAYERS)) < RANK[own]
    ]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_lazy_and_relative_upward_imports(tmp_path):
    """Function-level, relative and ``from lnmbench import x`` imports are all found."""
    src = tmp_path / "fake.py"
    src.write_text(
        "import numpy\n"
        "from lnmbench import experiment\n"
        "def f():\n"
        "    from ..experiment import run\n"
        "    import lnmbench.cli\n"
    )
    found = sorted(m for _, m in imported_modules(src, "lnmbench.engine.fake"))
    assert found == ["lnmbench.cli", "lnmbench.experiment", "lnmbench.experiment"]
    assert all(RANK[layer_of(m)] < RANK["engine"] for m in found)


def test_executors_import_nothing_from_experiment():
    for path in (PACKAGE / "executors").rglob("*.py"):
        mods = [m for _, m in imported_modules(path)]
        assert not [m for m in mods if m.startswith("lnmbench.experiment")], path
