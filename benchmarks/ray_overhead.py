"""The Ray engine's overhead: `kiku run` with `--engine local` vs `--engine ray` on the same input.

Runs the real CLI in a subprocess per engine (a fresh run folder each time) on the
100,000-conversation input of ``benchmarks/speed.py`` (``build_100k``: real text only),
reads per-stage seconds from each run's manifest, checks that both engines gave the same
topics (adjusted Rand index of the base clusters) and embeddings, and writes
``benchmarks/results/ray.md``.

The Ray runs join a real cluster started for the benchmark (``tests/ray_cluster.py``: a
``ray start --head`` and a second ``ray start --address`` node, separate processes, one CPU
each), and optionally a local Ray the engine starts itself (``--engine ray`` without
``--address``: all of this machine's CPUs in one node).

    python benchmarks/ray_overhead.py                    # 100k, local vs the two-node cluster
    python benchmarks/ray_overhead.py --size 20000 --local-ray
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
RESULTS = ROOT / "benchmarks" / "results" / "ray.md"
STAGES = ["load", "describe", "embed", "project", "cluster", "name", "hierarchy"]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def input_file(size: int) -> Path:
    """The real-text input of ``size`` conversations (built once by ``speed.build_100k``)."""
    from speed import build_100k

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / ("input-100k.jsonl" if size == 100_000 else f"input-{size}.jsonl")
    if not path.exists():
        print(f"building the {size:,}-conversation input", file=sys.stderr)
        build_100k(path, size)
    return path


def run_kiku(input_path: Path, out_dir: Path, extra: list[str], env_extra: dict[str, str] | None = None) -> dict:
    """``speed.run_kiku`` with the seed both engines share."""
    from speed import run_kiku as run_child

    return run_child(input_path, out_dir, ["--seed", "0", *extra], env_extra)


def base_labels(run: Path) -> dict[str, int]:
    table = pq.read_table(run / "cluster_labels.parquet")
    return dict(zip(table.column("conversation_id").to_pylist(), table.column("label").to_pylist()))


def compare(local: Path, other: Path) -> dict:
    """ARI of the base clusters and the largest embedding difference between two runs."""
    from sklearn.metrics import adjusted_rand_score

    a, b = base_labels(local), base_labels(other)
    ids = sorted(a)
    same_ids = sorted(b) == ids
    ari = float(adjusted_rand_score([a[i] for i in ids], [b.get(i, -2) for i in ids]))
    ea = pq.read_table(local / "embeddings.parquet", columns=["embedding"]).column(0).combine_chunks().flatten()
    eb = pq.read_table(other / "embeddings.parquet", columns=["embedding"]).column(0).combine_chunks().flatten()
    diff = float(np.abs(ea.to_numpy() - eb.to_numpy()).max()) if len(ea) == len(eb) else float("nan")
    return {"ari": ari, "same_ids": same_ids, "max_embedding_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--local-ray", action="store_true", help="also run --engine ray on a local Ray (no --address)")
    parser.add_argument("--no-cluster", action="store_true", help="skip the two-node cluster run")
    parser.add_argument("--out", default=str(RESULTS), help="the markdown file to write (default results/ray.md)")
    args = parser.parse_args()
    from ray_cluster import CLUSTER_ENV, RayCluster

    input_path = input_file(args.size)
    load_at_start = os.getloadavg()[0]
    results: dict[str, dict] = {}
    results["local"] = run_kiku(input_path, OUT / "ray-bench-local", [])
    results["local"]["load_after"] = os.getloadavg()[0]
    print("local", results["local"]["wall"], file=sys.stderr)
    if not args.no_cluster:
        started = time.perf_counter()
        with RayCluster.start(extra_nodes=1, cpus=1, env=dict(os.environ, PYTHONPATH=str(ROOT / "src"))) as cluster:
            startup = time.perf_counter() - started
            results["cluster"] = run_kiku(input_path, OUT / "ray-bench-cluster",
                                          ["--engine", "ray", "--address", cluster.address], CLUSTER_ENV)
            results["cluster"]["startup"] = startup
            results["cluster"]["load_after"] = os.getloadavg()[0]
        print("cluster", results["cluster"]["wall"], file=sys.stderr)
    if args.local_ray:
        results["local-ray"] = run_kiku(input_path, OUT / "ray-bench-local-ray", ["--engine", "ray"])
        results["local-ray"]["load_after"] = os.getloadavg()[0]
        print("local-ray", results["local-ray"]["wall"], file=sys.stderr)
    for name, result in results.items():
        if name != "local":
            result.update(compare(Path(results["local"]["out"]), Path(result["out"])))
    write_results(results, args.size, load_at_start, Path(args.out))


LABELS = {
    "local": "`--engine local` (default)",
    "cluster": "`--engine ray --address HEAD`: head + 1 node, 1 CPU each (separate `ray start` processes)",
    "local-ray": "`--engine ray` (no address): a local Ray of 2 CPUs started by the run",
}


def write_results(results: dict, size: int, load_at_start: float, out: Path = RESULTS) -> None:
    local = results["local"]
    loads = ", ".join(f"{name} {r['load_after']:.1f}" for name, r in results.items())
    lines = [
        "## Ray engine overhead (`kiku run --engine ray` vs `--engine local`)",
        "",
        f"Input: {local['counts']['conversations']:,} conversations (`benchmarks/speed.py`'s `build_100k`"
        f"{'' if size == 100_000 else f', first {size:,}'}: real text only). Machine: {os.cpu_count()} cores "
        f"shared by every process (the Ray nodes, the driver and the local engine alike), Python "
        f"{platform.python_version()}; measured {time.strftime('%Y-%m-%d')} by `python benchmarks/ray_overhead.py`; "
        f"1-minute load average at start {load_at_start:.1f}, after each run "
        f"{loads} (other sessions' jobs share "
        "the cores: compare within this table only). Runs one after the other, local first. Seconds per stage from each run's manifest; wall "
        "is the whole `kiku run` process (a cluster's start-up is not in it: a cluster outlives runs).",
        "",
        "| engine | " + " | ".join(STAGES) + " | wall (s) | wall / local | base ARI vs local | max embedding diff |",
        "|---|" + "---:|" * len(STAGES) + "---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        cells = " | ".join(f"{r['stages'].get(s, 0):.1f}" for s in STAGES)
        ratio = r["wall"] / local["wall"]
        ari = "-" if name == "local" else f"{r['ari']:.4f}"
        diff = "-" if name == "local" else f"{r['max_embedding_diff']:.1e}"
        lines.append(f"| {LABELS[name]} | {cells} | {r['wall']:.1f} | {ratio:.2f}x | {ari} | {diff} |")
    for name, r in results.items():
        if name == "local":
            continue
        ratio = r["wall"] / local["wall"]
        verdict = "within" if ratio <= 1.3 else "over"
        lines.append(f"\n{LABELS[name]}: {ratio:.2f}x the local engine's wall time ({verdict} the 1.3x target); "
                     f"describe {r['stages']['describe'] / max(local['stages']['describe'], 1e-9):.2f}x, "
                     f"embed {r['stages']['embed'] / max(local['stages']['embed'], 1e-9):.2f}x; same conversation ids: "
                     f"{r['same_ids']}; topics per level {r['counts']['clusters_by_level']} "
                     f"(local {local['counts']['clusters_by_level']}).")
        if "startup" in r:
            lines.append(f"Starting the two-node cluster (`ray start` twice) took {r['startup']:.1f} s, outside the run.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
