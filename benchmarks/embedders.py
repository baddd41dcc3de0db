"""What is embedded (issue 11 point 5): MiniLM int8 at 48 / 128 / 256 word pieces on the six labelled sets.

Per set (seeded sample of at most ``--max-rows`` rows) and input length: share of texts truncated,
embedding speed (texts/s, all lengths embedded one after another in this one process, so the
ratios compare), kiku's default clustering (``KMeansClusterer()``) NMI / ARI / clusters at the
base level, and k-means at the true number of labels NMI (embedding quality without the
granularity choice). Vectors are saved to the bench cache (``<set>-emb-t<T>-n<rows>.npz``) so
that granularity sweeps can reuse them.

    PYTHONPATH=src python benchmarks/embedders.py --max-rows 1500
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kiku.cluster import KMeansClusterer  # noqa: E402
from kiku.embed import MiniLMEmbedder  # noqa: E402
from labelled_sets import CACHE, LOADERS  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(LOADERS))
    parser.add_argument("--lengths", default="48,128,256")
    parser.add_argument("--max-rows", type=int, default=1500)
    parser.add_argument("--out", default=str(HERE / "results" / "embedders.md"))
    args = parser.parse_args()
    lengths = [int(x) for x in args.lengths.split(",")]
    load_start = os.getloadavg()[0]
    rows = []
    for name in args.sets.split(","):
        data = LOADERS[name]()
        if len(data) > args.max_rows:
            data = data.subset(np.sort(np.random.default_rng(0).choice(len(data), size=args.max_rows, replace=False)))
        truth = data.labels
        k_true = len(set(truth.tolist()))
        for t in lengths:
            embedder = MiniLMEmbedder(max_tokens=t)
            embedder.embed(["warm up"])
            start = time.perf_counter()
            E, flags = embedder.embed_with_info(data.texts)
            seconds = time.perf_counter() - start
            np.savez(CACHE / f"{name}-emb-t{t}-n{len(data)}.npz", E=E, labels=truth.astype(str))
            auto = KMeansClusterer(seed=0).fit_predict(E)
            exact = KMeansClusterer(n_clusters=k_true, seed=0).fit_predict(E)
            row = dict(set=name, rows=len(data), labels=k_true, t=t, truncated=float(np.mean(flags)),
                       speed=len(data) / seconds, k=int(auto.max() + 1),
                       nmi=normalized_mutual_info_score(truth, auto), ari=adjusted_rand_score(truth, auto),
                       true_nmi=normalized_mutual_info_score(truth, exact))
            rows.append(row)
            print(row, flush=True)
    base = {r["set"]: r["speed"] for r in rows if r["t"] == lengths[0]}
    lines = [
        "# What is embedded: MiniLM int8 input length",
        "",
        f"Produced by `benchmarks/embedders.py --max-rows {args.max_rows}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"2 shared cores, 1-minute load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at the end "
        "(speeds are upper-bound times; compare the ratios within a set). Seeded sample per set. "
        "kiku default = `KMeansClusterer()` (automatic granularity) on these vectors.",
        "",
        "| set | rows | labels | max tokens | truncated | texts/s | speed vs 48 | kiku k | kiku NMI | kiku ARI | k-means true k NMI |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['set']} | {r['rows']} | {r['labels']} | {r['t']} | {r['truncated']:.0%} | {r['speed']:.0f} | "
                     f"{r['speed'] / base[r['set']]:.2f} | {r['k']} | {r['nmi']:.3f} | {r['ari']:.3f} | {r['true_nmi']:.3f} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
