"""The folder rules: stages are thin and independent, bench uses the library only, light commands stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every mtdepth.* module `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtdepth"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mtdepth"))
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "stages").glob("*.py")), ids=lambda p: p.name)
def test_no_stage_imports_another_stage(path):
    own = f"mtdepth.stages.{path.stem}"
    others = {m for m in imported_modules(path) if m.startswith("mtdepth.stages.") and m != own}
    assert not others - {"mtdepth.stages.options"}, f"{path.name} imports {sorted(others)}"


@pytest.mark.parametrize("path", sorted((ROOT / "bench").glob("*.py")), ids=lambda p: p.name)
def test_bench_imports_the_library_not_the_commands(path):
    assert not {m for m in imported_modules(path) if m.startswith("mtdepth.stages")}


@pytest.mark.parametrize("path", sorted((ROOT / "pipeline").rglob("*.py")), ids=lambda p: p.name)
def test_pipeline_imports_neither_cache_nor_stages(path):
    assert not {m for m in imported_modules(path) if m.startswith(("mtdepth.cache", "mtdepth.stages"))}


@pytest.mark.parametrize("args", [["--help"], ["report", "--help"], ["synth", "--help"]])
def test_light_commands_import_no_torch(args):
    """`mtdepth --help` and `mtdepth report` (JSON, CSV, PNG files) never load torch."""
    code = (
        "import sys\nfrom mtdepth.cli import cli\n"
        f"try:\n    cli({args!r}, prog_name='mtdepth')\nexcept SystemExit:\n    pass\n"
        "from mtdepth.stages import report\n"
        "heavy = sorted(m for m in ('torch', 'cv2', 'ultralytics') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []"
