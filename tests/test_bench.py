"""Every bench script still runs: each at its --tiny sizes (figures meaningless, code paths the real ones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from run_all import BENCHES  # noqa: E402

pytestmark = pytest.mark.slow


def test_run_all_lists_every_bench_script():
    assert sorted(BENCHES) == sorted(p.name for p in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCHES)
def test_bench_runs_at_tiny_sizes(script):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--tiny"], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "|---" in result.stdout  # printed its markdown table
