"""Signals that could pick the cut of choose_granularity's micro-cluster tree (issue 11 point 2).

choose_granularity merges k-means micro-clusters (about 12 points each) with complete linkage
and cuts at a fixed cosine distance (0.45). The sets disagree on the right cut (MT-Bench and
BANKING77 want <= 0.45, chatterbot ~0.8, BBC >= 0.85), so a rule that holds on all of them needs
a signal that follows the data. This script measures five candidates on the same vectors, side
by side, for cuts from 0.40 to 0.90:

- ``stability``: ARI between the cut of the whole sample and the cuts of four 80% subsamples
  (other k-means seeds), i.e. is the partition reproducible;
- ``PS``: prediction strength (Tibshirani & Walther 2005), size-weighted mean over test clusters
  of the share of co-clustered pairs that the training half's centroids also put together;
- ``half k``: clusters the same cut finds on a random half; structure that is real does not
  shrink with the rows, artefacts of the micro-cluster size do;
- ``inconsistent``: scipy's inconsistency criterion (a merge is refused when its height is t
  standard deviations above the merges below it, depth 2), a scale-free local rule;
- ``EVoC layers``: EVoC's own layers (PyPI ``evoc``) with noise points given to the nearest
  cluster and k-means refit from those centres, and the layer EVoC itself picks (persistence).

Reads the vectors that benchmarks/embedders.py caches (1,500-row seeded samples; 48 word pieces
for short sets, 256 for the long ones, as the quality suite). Run:

    python benchmarks/embedders.py --max-rows 1500 --lengths 48,256
    python benchmarks/granularity_signals.py --out benchmarks/results/granularity_signals.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labelled_sets import CACHE  # noqa: E402

HERE = Path(__file__).resolve().parent
SUITE_TOKENS = dict(banking77=48, wandb=48, chatterbot=48, mtbench=256, bbc=256, chitchat=256)
CUTS = (0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def micro_tree(vectors: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(micro label per row, complete-linkage tree over the micro centroids), as choose_granularity."""
    n = len(vectors)
    micro = int(min(400, max(n // 12, math.ceil(2 * math.sqrt(n))), len(np.unique(vectors, axis=0))))
    labels = KMeans(n_clusters=micro, random_state=seed, n_init=1, max_iter=50).fit(vectors).labels_
    used = np.unique(labels)
    means = unit(np.stack([vectors[labels == j].mean(0) for j in used]))
    return np.searchsorted(used, labels), linkage(means.astype(np.float64), method="complete", metric="cosine")


def refit(vectors: np.ndarray, groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """k-means over all rows started from the groups' unit centres (noise -1 goes to the nearest)."""
    ids = sorted(set(groups.tolist()) - {-1})
    if len(ids) <= 1:
        return np.zeros(len(vectors), dtype=np.int64)
    centres = unit(np.stack([vectors[groups == g].mean(0) for g in ids]))
    return KMeans(n_clusters=len(ids), init=centres, n_init=1, random_state=seed).fit_predict(vectors)


def prediction_strength(vectors: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    k = int(labels.max()) + 1
    if k <= 1:
        return 1.0
    centres = unit(np.stack([vectors[train][labels[train] == c].mean(0) if (labels[train] == c).any() else vectors[0] for c in range(k)]))
    predicted = np.argmax(vectors[test] @ centres.T, axis=1)
    values, weights = [], []
    for c in np.unique(labels[test]):
        inside = predicted[labels[test] == c]
        m = len(inside)
        if m >= 2:
            _, counts = np.unique(inside, return_counts=True)
            values.append(float((counts * (counts - 1)).sum()) / (m * (m - 1)))
            weights.append(m)
    return float(np.average(values, weights=weights)) if values else 1.0


def measure(name: str) -> list[str]:
    path = sorted(CACHE.glob(f"{name}-emb-t{SUITE_TOKENS[name]}-n*.npz"))[0]
    data = np.load(path)
    vectors, truth = data["E"].astype(np.float32), data["labels"]
    n = len(vectors)
    rng = np.random.default_rng(0)
    micro, tree = micro_tree(vectors, seed=0)
    subsamples = []
    for b in range(4):
        rows = np.sort(rng.choice(n, size=int(0.8 * n), replace=False))
        subsamples.append((rows, *micro_tree(vectors[rows], seed=b + 1)))
    half = np.sort(rng.permutation(n)[: n // 2])
    other = np.setdiff1d(np.arange(n), half)
    half_micro, half_tree = micro_tree(vectors[half], seed=7)
    lines = [f"#### {name}: {n} rows, {len(set(truth.tolist()))} labels", "",
             "| cut | k | NMI | ARI | stability | PS | half k |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for cut in CUTS:
        groups = fcluster(tree, t=cut, criterion="distance")[micro]
        labels = refit(vectors, groups)
        stability = np.mean([adjusted_rand_score(groups[rows], fcluster(t, t=cut, criterion="distance")[m]) for rows, m, t in subsamples])
        strength = prediction_strength(vectors, labels, half, other)
        half_k = len(set(fcluster(half_tree, t=cut, criterion="distance")[half_micro].tolist()))
        lines.append(
            f"| {cut:.2f} | {labels.max() + 1} | {normalized_mutual_info_score(truth, labels):.3f} | "
            f"{adjusted_rand_score(truth, labels):.3f} | {stability:.3f} | {strength:.3f} | {half_k} |"
        )
    inconsistent = refit(vectors, fcluster(tree, t=1.0, criterion="inconsistent", depth=2)[micro])
    lines.append("")
    lines.append(
        f"scipy `inconsistent` (t = 1.0, depth 2) over the same tree: {inconsistent.max() + 1} clusters, "
        f"NMI {normalized_mutual_info_score(truth, inconsistent):.3f} / ARI {adjusted_rand_score(truth, inconsistent):.3f}."
    )
    lines.append("")
    try:
        import evoc
    except ImportError:
        lines.append("EVoC not installed (`pip install evoc`): layers not measured.")
        return lines
    start = time.perf_counter()
    model = evoc.EVoC(random_state=0).fit(vectors)
    seconds = time.perf_counter() - start
    chosen = int(np.argmax(model.persistence_scores_)) if len(model.cluster_layers_) > 1 else 0
    cells = []
    for number, layer in enumerate(model.cluster_layers_):
        layer = np.asarray(layer)
        labels = refit(vectors, layer)
        mark = " (EVoC's pick)" if number == chosen else ""
        cells.append(
            f"layer {number}{mark}: {len(set(layer.tolist()) - {-1})} clusters, {np.mean(layer < 0):.0%} noise -> "
            f"NMI {normalized_mutual_info_score(truth, labels):.3f} / ARI {adjusted_rand_score(truth, labels):.3f}"
        )
    lines.append(f"EVoC ({seconds:.1f} s), noise to nearest + k-means refit: " + "; ".join(cells) + ".")
    lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="mtbench,banking77,wandb,bbc,chatterbot,chitchat")
    parser.add_argument("--out", default=str(HERE / "results" / "granularity_signals.md"))
    args = parser.parse_args()
    lines = ["## Signals for the granularity cut (issue 11 point 2)", "", __doc__.split("\n\n")[1].replace("\n", " "), ""]
    for name in args.sets.split(","):
        lines.extend(measure(name))
        print(f"measured {name}", flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
