"""The detector shares no code with the virtual camera (issue 17): it may read the camera's
config and fetch its pictures (config.py, client.py, mjpeg.py), nothing else of
printforge/hardware/camera/, and never the camera's ground truth. Checked by imports, lazy
ones included, and by the names the detector's modules mention."""

from __future__ import annotations

import ast
from pathlib import Path

import printforge

VISION = Path(printforge.__file__).parent / "vision"
ALLOWED = {
    "printforge.hardware.camera.config",
    "printforge.hardware.camera.client",
    "printforge.hardware.camera.mjpeg",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_the_detector_imports_nothing_of_the_virtual_camera() -> None:
    assert list(VISION.glob("*.py")), "printforge/vision/ has no modules"
    bad = []
    for path in sorted(VISION.rglob("*.py")):
        for line, name in _imports(path):
            if name.startswith("printforge.hardware.camera") and name not in ALLOWED:
                if name.rpartition(".")[0] in ALLOWED:
                    continue  # a name imported from an allowed module
                if name == "printforge.hardware.camera":
                    continue  # the package itself imports nothing (its __init__ is empty)
                bad.append(f"{path.name}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_detector_never_reads_the_ground_truth() -> None:
    words = ("ground_truth", "read_ground_truth", "GroundTruthLog", "cameras/", ".jsonl")
    bad = [
        f"{path.name} mentions {word}"
        for path in sorted(VISION.rglob("*.py"))
        for word in words
        if word in path.read_text(encoding="utf-8")
    ]
    assert not bad, "\n".join(bad)


def test_the_camera_package_init_stays_empty() -> None:
    # Importing config.py runs printforge/hardware/camera/__init__.py: it must pull in none of
    # the virtual camera, or the rule above would hold on paper only.
    init = VISION.parent / "hardware" / "camera" / "__init__.py"
    assert not [
        n
        for n in ast.walk(ast.parse(init.read_text()))
        if isinstance(n, ast.Import | ast.ImportFrom)
    ]
