"""The command line of a per-set study (granularity_stability.py, hierarchy_methods.py).

``run_study`` parses ``--sets`` / ``--out`` / ``--from-json``, measures each set (or only rewrites
the markdown from a saved run), and writes ``OUT`` (.md) and its results next to it (.json),
with a header naming the script, the time and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path


def run_study(script: str, description: str, default_sets: str, default_out: Path, measure: Callable[[str], dict],
              write_markdown: Callable[[list[dict], str, Path], None],
              about: str = "MiniLM int8 vectors of the quality suite") -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sets", default=default_sets)
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--from-json", default="", help="only rewrite the markdown from a saved .json of a run")
    args = parser.parse_args()
    out = Path(args.out)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        write_markdown(saved["results"], saved["header"], out)
        return
    load = os.getloadavg()[0]
    results = [measure(name) for name in args.sets.split(",")]
    header = (f"Produced by `benchmarks/{script}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"{os.cpu_count()} cores shared with other jobs (1-minute load {load:.1f} at start); {about}.")
    write_markdown(results, header, out)
    out.with_suffix(".json").write_text(json.dumps(dict(header=header, results=results), indent=1), encoding="utf-8")
    print(f"wrote {out}")
