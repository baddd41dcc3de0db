"""How to group base clusters into the top of the hierarchy: the default against other groupings.

On every labelled set with coarse groups (``labelled_sets.LOADERS`` whose ``coarse`` is set:
BANKING77's 10 themes, chatterbot's 4 groups, MT-Bench's 2 categories, MultiWOZ's 8 domains),
kiku's default base clusters (``KMeansClusterer(seed=0)`` on the quality suite's vectors; none of
these four sets has a corpus name for ``without_corpus_name`` to remove, so they are the product's)
are grouped into top topics by:

- **default**: ``kiku.hierarchy``'s size-weighted k-means of the base centroids to the default
  count (``level_sizes``: 10 for up to 150 base clusters), then ``split_oversized`` (no parent
  over 35% unless it is one topic); what ``AgglomerativeHierarchy`` builds;
- the same k-means without the split, and at the true coarse count;
- **Ward / average linkage** over the unit centroids, cut at the default count;
- **Louvain** (networkx, seed 0) on the base clusters' neighbour graph: an edge weight is the
  number of rows' 10 nearest neighbours that fall in the other cluster; resolution 0.1 and 0.2
  (the number of groups is the graph's, not the default count);
- references: flat k-means over the rows at the default count and at the true coarse count
  (the issue's target);
- the default and flat k-means at the true coarse count again over seeds 0-4 of the grouping
  (mean, NMI range): how much one seed decides (the base clusters stay those of seed 0).

Reported: the number of top groups, NMI against the coarse groups, the largest group's share.

Run:  python benchmarks/hierarchy_methods.py [--out benchmarks/results/hierarchy_methods.md]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kiku.cluster import KMeansClusterer  # noqa: E402
from kiku.hierarchy import kmeans_groups, level_sizes, split_oversized  # noqa: E402
from kiku.vectors import nearest_neighbours  # noqa: E402
from labelled_sets import LOADERS  # noqa: E402
from quality_suite import suite_vectors  # noqa: E402
from study import run_study  # noqa: E402

HERE = Path(__file__).resolve().parent

#: What the numbers say (written by hand after the run of 4 December 2026; rewrite it when they change).
READING = """
No grouping wins on every set. The default (size-weighted k-means of the centroids, then the 35%
split) beats flat k-means at the true coarse count on BANKING77 (0.580 against 0.571; Louvain at
resolution 0.2 reaches 0.583 with 19 groups) and on chatterbot (0.445 against 0.320), but not on
MultiWOZ (0.502 against 0.518) or MT-Bench (0.474 against 0.510). Louvain on the neighbour graph
is the best on MultiWOZ (0.629 at resolution 0.1, its largest group 32%) and fails on MT-Bench,
whose 13 questions share no neighbours (13 groups of one cluster each), and on chatterbot
(0.310-0.366); Ward matches flat k-means on MultiWOZ (0.518) and is the worst k-means-like grouping
on BANKING77 (0.444); average linkage is the best on chatterbot (0.541) by putting 48% of it in
one group, and 53-78% elsewhere; the best MT-Bench grouping (k-means at its 2 categories, 0.624)
is one group of 72%, which the 35% rule forbids. Internal scores did not pick the better grouping
per set either (measured by hand: the modularity of the partition on the neighbour graph and the
cosine silhouette over 3,000 rows each chose a worse one on at least one of the four sets), so the
default stays, and the misses are reported in the quality suite's target table.

One seed decides a lot, for the default and for the target alike. Over grouping seeds 0-4 the
default's mean is 0.535 (0.512-0.580) on BANKING77 against flat k-means' 0.538 (0.483-0.578), a
tie; 0.403 (0.265-0.478) on chatterbot against 0.316; 0.386 on MT-Bench against 0.537 (flat k-means
ranges 0.257-0.900 there: two groups of 13 questions); 0.490 on MultiWOZ against 0.522. Seed 0,
the one the quality suite reports, is the default's best seed on BANKING77 and among its best on
chatterbot: the seed-0 "yes" for BANKING77 in the target table is a tie on average.

Why MultiWOZ is hard for any grouping of base clusters: many of its turns do not say their domain
("What is the address?", "Can I get the phone number?" are asked of hotels, restaurants,
attractions and hospitals alike), so base clusters form by what is asked: 29% of its rows sit in
base clusters of which no domain holds 60% (BANKING77 10%, chatterbot 2%, MT-Bench none).
"""


#: Seeds of the grouping (and of flat k-means) for the rows that show how much one seed decides.
SEEDS = (0, 1, 2, 3, 4)


def mean_row(rows: list[dict]) -> dict:
    """The mean of per-seed rows, with the NMI range: {"groups", "nmi", "largest", "nmi_range"}."""
    nmis = [r["nmi"] for r in rows]
    return dict(groups=float(np.mean([r["groups"] for r in rows])), nmi=float(np.mean(nmis)),
                largest=float(np.mean([r["largest"] for r in rows])), nmi_range=[float(min(nmis)), float(max(nmis))])


def top_nmi(coarse: np.ndarray, labels: np.ndarray, group_of: np.ndarray) -> dict:
    top = group_of[labels]
    return dict(groups=int(len(set(group_of.tolist()))), nmi=float(normalized_mutual_info_score(coarse, top)),
                largest=float(np.bincount(top).max() / len(top)))


def as_array(groups: list[list[int]], m: int) -> np.ndarray:
    out = np.zeros(m, dtype=np.int64)
    for number, group in enumerate(groups):
        out[group] = number
    return out


def neighbour_graph(E: np.ndarray, labels: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """(m, m) symmetric counts of rows' nearest neighbours that fall in each other cluster."""
    m = int(labels.max()) + 1
    near, _ = nearest_neighbours(E, E, neighbours, exclude_self=True)
    weights = np.zeros((m, m))
    np.add.at(weights, (np.repeat(labels, neighbours), labels[near].ravel()), 1.0)
    return weights + weights.T


def louvain(resolution: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]:
    def group(E: np.ndarray, labels: np.ndarray, means: np.ndarray, count: int) -> np.ndarray:
        import networkx as nx

        graph = nx.from_numpy_array(neighbour_graph(E, labels))
        communities = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=0)
        return as_array([sorted(c) for c in communities], len(means))
    return group


def linkage_cut(method: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]:
    def group(E: np.ndarray, labels: np.ndarray, means: np.ndarray, count: int) -> np.ndarray:
        from scipy.cluster.hierarchy import fcluster, linkage

        unit = means / np.linalg.norm(means, axis=1, keepdims=True)
        tree = linkage(unit, method=method, metric="euclidean" if method == "ward" else "cosine")
        return fcluster(tree, t=count, criterion="maxclust") - 1
    return group


def measure(name: str) -> dict:
    from sklearn.cluster import KMeans

    data, E = suite_vectors(name, 5000)
    coarse = np.asarray(data.coarse)
    k_coarse = len(set(coarse.tolist()))
    labels = KMeansClusterer(seed=0).fit_predict(E)
    m = int(labels.max()) + 1
    weights = np.bincount(labels, minlength=m).astype(np.float64)
    means = np.stack([E[labels == k].mean(axis=0) for k in range(m)])
    count = (level_sizes(m) or [m])[-1]
    methods: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]] = {
        "default (size-weighted k-means, 35% split)": lambda E, labels, means, count: as_array(
            split_oversized(kmeans_groups(means, weights, count), means, weights, max_groups=10), m),
        "size-weighted k-means, no split": lambda E, labels, means, count: as_array(kmeans_groups(means, weights, count), m),
        "size-weighted k-means at the true coarse k": lambda E, labels, means, count: as_array(kmeans_groups(means, weights, k_coarse), m),
        "Ward over unit centroids": linkage_cut("ward"),
        "average linkage (cosine)": linkage_cut("average"),
        "Louvain, neighbour graph, resolution 0.1": louvain(0.1),
        "Louvain, neighbour graph, resolution 0.2": louvain(0.2),
    }
    rows = {method: top_nmi(coarse, labels, group(E, labels, means, count)) for method, group in methods.items()}
    for k, tag in ((count, "flat k-means over the rows at the default count"), (k_coarse, "flat k-means over the rows at the true coarse k")):
        flat = KMeans(n_clusters=k, random_state=0, n_init=3).fit_predict(E)
        rows[tag] = dict(groups=k, nmi=float(normalized_mutual_info_score(coarse, flat)), largest=float(np.bincount(flat).max() / len(flat)))
    seeded = [top_nmi(coarse, labels, as_array(split_oversized(kmeans_groups(means, weights, count, seed=seed), means, weights,
                                                                   seed=seed, max_groups=10), m)) for seed in SEEDS]
    rows["default, grouping seeds 0-4 (mean)"] = mean_row(seeded)
    rows["flat k-means over the rows at the true coarse k, seeds 0-4 (mean)"] = mean_row([
        dict(groups=k_coarse, nmi=float(normalized_mutual_info_score(coarse, flat)), largest=float(np.bincount(flat).max() / len(flat)))
        for flat in (KMeans(n_clusters=k_coarse, random_state=seed, n_init=3).fit_predict(E) for seed in SEEDS)])
    for method, row in rows.items():
        print(f"  {name} | {method}: {row['groups']} groups NMI {row['nmi']:.3f} largest {row['largest']:.0%}", flush=True)
    purity = np.array([np.unique(coarse[labels == k], return_counts=True)[1].max() / weights[k] for k in range(m)])
    mixed_rows = float(weights[purity < 0.6].sum() / len(labels))
    print(f"  {name}: {mixed_rows:.0%} of the rows in base clusters under 60% one coarse group", flush=True)
    return dict(set=name, base=m, coarse=k_coarse, default_count=count, methods=rows, mixed_rows=mixed_rows)


def write_markdown(results: list[dict], header: str, path: Path) -> None:
    methods = list(results[0]["methods"])
    lines = ["# Top of the hierarchy: grouping base clusters", "", header, "",
             (__doc__ or "").split("\n\n", 1)[1].split("Run:")[0].strip(), "",
             "| method | " + " | ".join(f"{r['set']} ({r['base']} base, {r['coarse']} coarse)" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for method in methods:
        cells = []
        for r in results:
            row = r["methods"][method]
            best = max(v["nmi"] for k, v in r["methods"].items() if not k.startswith("flat") and "nmi_range" not in v)
            nmi = f"**{row['nmi']:.3f}**" if row["nmi"] == best else f"{row['nmi']:.3f}"
            if "nmi_range" in row:
                nmi += f" ({row['nmi_range'][0]:.3f}-{row['nmi_range'][1]:.3f})"
            cells.append(f"{row['groups']:g} / {nmi} / {row['largest']:.0%}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: groups / NMI against the coarse groups / largest group's share; bold: the best grouping of base clusters on that set.",
              "", "Rows in base clusters of which no coarse group holds 60%: "
              + ", ".join(f"{r['set']} {r['mixed_rows']:.0%}" for r in results) + ".",
              "", "## Reading these numbers", "", READING.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    coarse_sets = ",".join(name for name in LOADERS if name in ("banking77", "chatterbot", "mtbench", "multiwoz"))
    run_study("hierarchy_methods.py", (__doc__ or "").splitlines()[0], coarse_sets, HERE / "results" / "hierarchy_methods.md",
              measure, write_markdown, "MiniLM int8 vectors of the quality suite, seed 0")


if __name__ == "__main__":
    main()
