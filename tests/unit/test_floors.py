"""The house's floors: every import points down (or along its own floor), and no module
imports itself back through others. A failure names the file, line and imported module.

Floors, lowest first (DEVELOPERS.md, "Layout"): models, gcode and runtime; the components that
do one kind of work (geometry, slicing, llm, hardware); the settings tree that composes their
config sections; the agents; the orchestrator; the server; the command line. Lazy imports inside
functions and imports under TYPE_CHECKING count too: a lazy import still reaches the floor
above at run time, and a type from above still ties the floor to it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import printforge

PACKAGE = Path(printforge.__file__).parent

FLOORS: list[set[str]] = [
    {"printforge", "models", "gcode", "runtime"},
    {"geometry", "slicing", "llm", "hardware", "notify", "vision"},
    {"settings"},
    {"agents"},
    {"orchestrator"},
    {"server"},
    {"cli", "__main__"},
]


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported printforge module
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(PACKAGE.parent)}:{self.line} imports {self.target}"


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module that `name` (a module, or a name inside one) is defined in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports() -> list[Import]:
    found = []
    for module, (path, is_package) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, *([node.module] if node.module else [])])
                # `from pkg import submodule` depends on the submodule; running pkg/__init__
                # on the way is what importing any submodule does, and is not counted.
                names = [f"{base}.{alias.name}" for alias in node.names]
                targets = [n for n in names if n in MODULES]
                if len(targets) < len(names):
                    targets.append(base)
            else:
                continue
            for target in targets:
                owner = _owner(target) if target.startswith("printforge") else None
                if owner is not None and owner != module:
                    found.append(Import(module, owner, path, node.lineno))
    return found


IMPORTS = _imports()


def floor_of(module: str) -> int:
    area = module.split(".")[1] if "." in module else module
    for level, areas in enumerate(FLOORS):
        if area in areas:
            return level
    raise AssertionError(f"{module} is on no floor: add its package to FLOORS in {__file__}")


def test_every_module_is_on_a_floor() -> None:
    for module in MODULES:
        floor_of(module)


def test_imports_point_down() -> None:
    upward = [
        f"{imp} (floor {floor_of(imp.source)} -> floor {floor_of(imp.target)})"
        for imp in IMPORTS
        if floor_of(imp.target) > floor_of(imp.source)
    ]
    assert not upward, "imports against the floors:\n" + "\n".join(upward)


def test_runtime_settings_alias_is_not_used_inside_the_package() -> None:
    # printforge.runtime.settings forwards lazily to printforge.settings for callers outside;
    # inside the package it would hide an upward import from the check above.
    users = [str(imp) for imp in IMPORTS if imp.target == "printforge.runtime.settings"]
    assert not users, "\n".join(users)


def _cycle() -> list[Import] | None:
    graph: dict[str, list[Import]] = {}
    for imp in IMPORTS:
        graph.setdefault(imp.source, []).append(imp)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[Import] = []

    def visit(module: str) -> list[Import] | None:
        state[module] = 1
        for imp in graph.get(module, []):
            if state.get(imp.target) == 1:
                start = next(i for i, p in enumerate(path) if p.source == imp.target)
                return [*path[start:], imp]
            if imp.target not in state:
                path.append(imp)
                found = visit(imp.target)
                if found:
                    return found
                path.pop()
        state[module] = 2
        return None

    for module in sorted(MODULES):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle:\n" + "\n".join(str(imp) for imp in cycle)
