"""The README's quick start, timed as a new user meets it: `kiku run` on the bundled W&B example.

Each configuration runs in a new process with an empty run folder, side by side in one go:

- first run after install: a new, empty kiku cache folder (nothing compiled yet);
- later runs: the same cache folder again (UMAP's compiled code is reused when UMAP runs);
- the projection forced to UMAP (what every small run paid before t-SNE was the small-run
  default), first and later runs.

    python benchmarks/quickstart.py            # writes benchmarks/results/quickstart.md

Only the example shipped in ``examples/`` is read, so this runs on a fresh clone.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "wandb-queries.jsonl"
RESULT = ROOT / "benchmarks" / "results" / "quickstart.md"

RUN_AND_TIME = """
import json, sys, time
from pathlib import Path
import kiku.project as project
if sys.argv[3] == "umap":
    project.TSNE_MAX_POINTS = 0
start = time.perf_counter()
import kiku
run = kiku.analyze(sys.argv[1], sys.argv[2], seed=0)
total = time.perf_counter() - start
manifest = json.loads((Path(sys.argv[2]) / "manifest.json").read_text())
stages = {name: info.get("seconds") for name, info in manifest.get("stages", {}).items()}
print(json.dumps({"total": total, "stages": stages}))
"""


def timed_run(cache: Path, out: Path, projection: str) -> dict:
    """One `kiku.analyze` of the example in a new Python process; wall time includes imports."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | {"KIKU_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_TIME, str(EXAMPLE), str(out), projection],
        env=env, check=True, capture_output=True, text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - start
    return result


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        for projection in ("auto", "umap"):
            cache = base / f"cache-{projection}"
            for attempt in ("first run after install", "later run"):
                out = base / f"run-{projection}-{len(rows)}"
                result = timed_run(cache, out, projection)
                rows.append((projection, attempt, result))
                shutil.rmtree(out)
    load = os.getloadavg()
    lines = [
        "# Quick start: `kiku run examples/wandb-queries.jsonl` (560 queries)",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other jobs were running).",
        "Wall time of a new process (imports included); project = the projection stage.",
        "",
        "| projection | run | wall s | project s | embed s |",
        "|---|---|---:|---:|---:|",
    ]
    for projection, attempt, result in rows:
        label = "default (t-SNE up to 1,000 points)" if projection == "auto" else "UMAP forced"
        stages = result["stages"]
        lines.append(
            f"| {label} | {attempt} | {result['wall']:.1f} | {stages.get('project') or 0:.1f} | {stages.get('embed') or 0:.1f} |"
        )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
