"""Run every benchmark in turn (`make bench`); each prints its own markdown tables.

`--tiny` passes on to each script: smoke-test sizes (tests/test_bench.py), figures meaningless."""

import subprocess
import sys
from pathlib import Path

BENCHES = (
    "bench_synth.py",
    "bench_reader.py",
    "bench_store.py",
    "bench_stage_one.py",
    "bench_train.py",
    "bench_eval.py",
    "bench_predict.py",
    "bench_predict_tiles.py",
    "bench_prefill.py",
)

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        print(f"\n## {name}\n", flush=True)
        if subprocess.run([sys.executable, str(here / name), *sys.argv[1:]], cwd=here.parent).returncode != 0:
            failed.append(name)
    sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
