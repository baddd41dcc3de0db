"""Cut choose_granularity's micro-cluster tree per branch instead of at one distance (issue 11 point 2).

``kiku.cluster.choose_granularity`` merges k-means micro-clusters (about 12 rows each, on a
4,000-row sample) with complete linkage and cuts the whole tree at one cosine distance
(``MERGE_DISTANCE`` = 0.45). The sets disagree on the right global cut (BBC News wants 0.85-0.90,
BANKING77 and MT-Bench <= 0.45, see results/granularity_signals.md), so this script measures
rules that decide per branch, on the same tree, side by side with today's cut:

- ``eom``: HDBSCAN's excess of mass over the tree. Micro-clusters are weighted points, lambda =
  1 / merge height, a split counts only when both sides hold at least one micro-cluster's worth
  of rows (12, or the mean micro-cluster on small inputs; smaller sides "fall out" of the
  cluster), a micro-cluster leaves at lambda = 1 / (2 x its spread); the clusters whose
  stability beats that of their selected descendants are kept.
- ``noise-relative (alpha)``: a branch is merged up to alpha times the noise of its own rows
  (the mean distance of a row to its micro-cluster's centroid, averaged over the branch): every
  subtree whose merges all stay below that stays whole. Long, noisy documents get a loose cut,
  tight intents a fine one.
- ``noise-relative, floor 0.45 (alpha)``: the same, but a branch is never cut finer than today's
  one cut (merged up to max(0.45, alpha x its noise)).
- ``separated (theta)``: today's cut, then a node above it is still merged when its two children
  are not separated relative to their own spread (centroid distance < theta x mean spread of the
  two, spread = mean cosine distance of their rows to their centroid), for every node below it.

Each variant replaces ``choose_granularity`` inside ``KMeansClusterer`` (same sample, same
micro-clusters, same refit of k-means over all rows from the chosen centres), so only the cut
differs. The vectors, rows and seed are those of benchmarks/quality_suite.py (``suite_vectors``);
the peers' numbers are read from its saved run (results/quality_suite.json). Every variant is also
run at seeds 1-4 (another sample order, micro-cluster k-means and refit): half the range today's
default spans over seeds 0-4 is the noise a variant's difference is judged against.

Run (after the data packages of labelled_sets.py; the vectors are cached by the suite):

    PYTHONPATH=src python benchmarks/granularity_branches.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kiku import cluster  # noqa: E402
from kiku.cluster import (  # noqa: E402
    KMeansClusterer,
    granularity_sample,
    group_centres,
    island_groups,  # noqa: E402
    micro_cluster_tree,
)
from kiku.cluster import MicroTree as BranchTree  # noqa: E402
from quality_suite import suite_vectors  # noqa: E402

HERE = Path(__file__).resolve().parent
SETS = ("banking77", "wandb", "mtbench", "bbc", "chatterbot", "chitchat")
PEERS = ("Kura (k-means, k = n/10)", "BERTopic (UMAP 5-d + HDBSCAN 10)", "EVoC")
SEEDS = (0, 1, 2, 3, 4)
#: Variants that are not a rule over the tree but kiku's own clusterer: the plain cut, and the default.
CUT = "cut"
DEFAULT = "default"
Rule = Callable[[BranchTree], np.ndarray] | str


def excess_of_mass(t: BranchTree) -> np.ndarray:
    """HDBSCAN's excess-of-mass selection over the micro tree: group per micro-cluster (m,).

    A micro-cluster that falls out of every selected cluster joins the nearest selected one."""
    min_rows = min(float(cluster.POINTS_PER_MICRO_CLUSTER), t.rows[: t.m].mean())
    lam = lambda d: 1.0 / max(d, 1e-3)  # noqa: E731
    clusters: list[dict] = []

    def condense(node: int, birth: float) -> int:
        cid = len(clusters)
        clusters.append(dict(node=node, stability=0.0, children=[]))
        stack = [node]
        while stack:
            x = stack.pop()
            if x < t.m:
                clusters[cid]["stability"] += t.rows[x] * (lam(2 * t.spread[x]) - birth)
                continue
            here = lam(t.height[x])
            big = [c for c in t.kids[x] if t.rows[c] >= min_rows]
            if len(big) == 2:
                clusters[cid]["stability"] += t.rows[x] * (here - birth)
                clusters[cid]["children"] += [condense(c, here) for c in big]
                continue
            for c in t.kids[x]:
                if t.rows[c] >= min_rows:
                    stack.append(c)
                else:
                    clusters[cid]["stability"] += t.rows[c] * (here - birth)
        return cid

    top = condense(t.root, lam(t.height[t.root]))

    def select(cid: int) -> tuple[float, list[int]]:
        c = clusters[cid]
        if not c["children"]:
            return c["stability"], [cid]
        below = [select(k) for k in c["children"]]
        total = sum(s for s, _ in below)
        if cid != top and c["stability"] >= total:
            return c["stability"], [cid]
        return total, [i for _, ids in below for i in ids]

    groups = np.full(t.m, -1)
    for number, cid in enumerate(select(top)[1]):
        groups[t.leaves(clusters[cid]["node"])] = number
    lost = np.flatnonzero(groups < 0)
    if len(lost) and (groups >= 0).any():
        kept = np.unique(groups[groups >= 0])
        centres = np.stack([t.centre[: t.m][groups == g].mean(axis=0) for g in kept])
        groups[lost] = kept[np.argmax(t.centre[lost] @ centres.T, axis=1)]
    return groups if (groups >= 0).any() else np.zeros(t.m, dtype=int)


def noise_relative(alpha: float) -> Callable[[BranchTree], np.ndarray]:
    """Rule: keep whole every largest subtree whose merges all stay within alpha x the noise of their
    rows (mean spread of a row's micro-cluster), so each branch gets its own cut."""
    return lambda t: t.maximal(lambda x: t.height[x] <= alpha * t.noise[x])


def noise_relative_floored(alpha: float, floor: float = cluster.MERGE_DISTANCE) -> Callable[[BranchTree], np.ndarray]:
    """Rule: noise-relative, but never cut finer than today's one cut: a subtree stays whole while its
    merges stay within max(floor, alpha x the noise of their rows)."""
    return lambda t: t.maximal(lambda x: t.height[x] <= max(floor, alpha * t.noise[x]))


def separated(theta: float, floor: float = cluster.MERGE_DISTANCE) -> Callable[[BranchTree], np.ndarray]:
    """Rule: today's cut at ``floor``, plus every merge above it whose two children's centroids are
    closer than theta x their mean spread, for whole subtrees."""

    def rule(t: BranchTree) -> np.ndarray:
        def whole(x: int) -> bool:
            a, b = t.kids[x]
            return t.height[x] <= floor or 1.0 - float(t.centre[a] @ t.centre[b]) < theta * (t.spread[a] + t.spread[b]) / 2

        return t.maximal(whole)

    return rule


VARIANTS: dict[str, Callable[[BranchTree], np.ndarray] | str] = {
    "one cut at 0.45 (the default until 3 December)": CUT,
    "default: the cut, then island branches merged": DEFAULT,
    "eom (HDBSCAN excess of mass)": excess_of_mass,
    "noise-relative (alpha 3.0)": noise_relative(3.0),
    "noise-relative (alpha 3.5)": noise_relative(3.5),
    "noise-relative (alpha 4.0)": noise_relative(4.0),
    "noise-relative, floor 0.45 (alpha 3.5)": noise_relative_floored(3.5),
    "separated (theta 1.0)": separated(1.0),
    "separated (theta 1.2)": separated(1.2),
}

#: What the numbers say (written by hand after the run of 2026-12-03; rewrite it when they change).
READING = """
## Reading these numbers (written by hand, 3 December 2026)

**`choose_granularity` now keeps the one cut at 0.45 and then merges island branches** (the second
row, `kiku.cluster.island_groups`): the cut's groups that lie in one branch of the micro-cluster tree
whose merges stay within 3.5 x the noise of its rows are merged when the branch is an island. Take
each row's 10 nearest sample neighbours that leave its group: the share of them that also leaves the
branch must be at most 0.45 x what chance would give (the share of the other rows that lie outside
the branch), and at least 25% of the neighbours must leave the group (groups that already stand apart
stay apart). Samples under 200 rows keep the cut. Over five seeds it moves BBC News from 88 to 28
clusters, NMI 0.499 -> 0.624 and ARI 0.141 -> 0.415 (AMI 0.484 -> 0.619; see the tables above for seed
0, still short of EVoC's 0.685 / 0.606), leaves BANKING77, chatterbot, MT-Bench and W&B where they were
(W&B's 77 rows are under the 200-row minimum), and costs chitchat 0.02 NMI (AMI -0.004, ARI unchanged).
Three well-separated blobs stay three at 600 and 6,000 rows.

Since 4 December 2026 the least leak is 15%, not 25% (chosen over nine samples and seeds per set,
results/granularity_stability.md: BBC News NMI +0.034, ARI +0.077, the other sets within 0.002); the
tables above were measured with 25%.

Why islands: BBC's and chitchat's micro-clusters are equally noisy (median spread 0.276 vs 0.277), so
no rule that reads the tree's distances alone can tell them apart (the noise-relative rules below
merge both). What differs is where the rows' nearest neighbours go. Inside a BBC section the fine
groups leak into each other (each row keeps only 56-74% of its neighbours in its fine group) but the
section keeps 88-98% of them: of what leaves a fine group, 8-34% leaves the section. A chitchat branch
of the same looseness keeps 55-84%, and 50-90% of what leaves a fine group leaves the branch too.
BANKING77's and chatterbot's branches above the cut are rarely loose enough to be tried at all.

Why against chance: the first form of the test (at most 35% leave the branch, not scaled by chance)
merged ShareGPT (3,000 conversations embedded at 256 pieces) into one cluster, and 1,200 uniform rows
on a 64-d sphere too: where the noise is large, the whole tree is within 3.5 x the noise, and the
whole sample, which no neighbour can leave, passed. Scaled by chance it is never an island; ShareGPT
keeps 197 clusters (the cut: 199, largest 2.5%), the uniform rows keep the cut's 100.

Sweep (five-seed means, k / NMI / ARI, chitchat AMI), run while choosing it:

| rule | BBC News | chitchat | note |
|---|---|---|---|
| against chance, leak 0.45 (**default**) | 28 / 0.624 / 0.415 | 96 / 0.333 / 0.088, AMI 0.239 | BANKING77, chatterbot, MT-Bench unchanged; ShareGPT 197 clusters |
| against chance, leak 0.35 | 52 / 0.557 / 0.286 | 121 / 0.353 / 0.087 | |
| against chance, leak 0.40 | 36 / 0.600 / 0.368 | 121 / 0.353 / 0.087 | |
| against chance, leak 0.50 | 26 / 0.627 / 0.424 | 93 / 0.329 / 0.087, AMI 0.238 | |
| first form: leak 0.35, least leak 0.25 | 33 / 0.613 / 0.392 | 100 / 0.335 / 0.086, AMI 0.239 | ShareGPT at 256 pieces: 1 cluster |
| first form, no least leak | 29 / 0.631 / 0.444 | 100 / 0.335 / 0.086 | merges sub-topics that stand apart (synthetic sections with tight rows: 6 -> 2) |
| first form, alpha 3.75 | 19 / 0.715 / 0.626 | 74 / 0.308 / 0.082, AMI 0.230 | beats EVoC on BBC, but alpha 3.6 gives 0.639 and 4.0 0.671: luck, not a setting |
| first form, alpha 4.0, least leak 0.25 | 7 / 0.671 / 0.601 | 61 / 0.295 / 0.083, AMI 0.226 | two sections merge; W&B at alpha 4: 0.394 / 0.118 |
| first form, alpha 4.0, two islands side by side kept apart | 9 / 0.782 / 0.751 | 61 / 0.295 / 0.083, AMI 0.226 | |
| first form, alpha 5.0, the same | 9 / 0.796 / 0.775 | 60 / 0.295 / 0.083, AMI 0.226 | W&B at alpha 5 with the same check: 0.35 / 0.12 (-0.08 NMI) |

The default is the setting that moves BBC without costing any other set more than chitchat's 0.02 NMI;
a looser branch (alpha >= 4) with a check that keeps two islands apart closes BBC (0.78-0.80 NMI) but
costs chitchat 0.06 NMI and W&B up to 0.08, and its BBC result swings with alpha.

The other rules, measured before:

- **noise-relative (alpha 3.5)** is the only plain rule that closes BBC News against the peers (12
  clusters, 0.737 / 0.659 over five seeds), but it collapses chitchat from 121 to 28 clusters (NMI
  0.353 -> 0.200, AMI 0.243 -> 0.161, below every peer), and it splits three clean Gaussian blobs of
  6,000 rows into 35 clusters: inside a tight blob the micro-clusters' noise is tiny, so alpha x
  noise cuts the blob's own noise. With today's cut as a floor (`noise-relative, floor 0.45`) the blobs
  stay whole and BBC still gains, but chitchat collapses the same way.
- **eom** (HDBSCAN excess of mass) is the best rule on BANKING77 (+0.018 NMI / +0.032 ARI) and by AMI
  at least the one cut on five sets, but it leaves BBC where it is and splits the three blobs of
  6,000 rows into 120 clusters (lambda = 1 / merge distance rewards splits of a blob's own noise).
- **separated** moves BBC a little (+0.03 to +0.05 NMI) and costs BANKING77 0.008-0.015 NMI and 0.03-0.05 ARI.
- W&B (77 rows) is the noisiest set: the one cut alone spans NMI 0.418-0.459 and ARI 0.126-0.229
  over seeds 0-4, so single-seed differences there mean little; the five-seed means are the guide.

Chitchat: its 34 prompts are not regions of the MiniLM space (k-means at k = 34 scores 0.258), so its
NMI rises with k alone (Kura's 0.407 is k = 300). By AMI, which corrects for that, the best peer is
BERTopic's 0.249 against kiku's 0.244 at seed 0; Kura's k = 300 scores 0.187.
"""

_TREES: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}


def _tree(sample: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """micro_cluster_tree, computed once per sample and seed (every variant reads the same tree)."""
    key = (hashlib.sha256(np.ascontiguousarray(sample).tobytes()).hexdigest(), seed)
    if key not in _TREES:
        _TREES[key] = micro_cluster_tree(sample, seed)
    return _TREES[key]


def granularity_by(rule: Callable[[BranchTree], np.ndarray]) -> Callable[..., tuple[int, np.ndarray]]:
    """A stand-in for choose_granularity (same signature) that cuts its tree with ``rule``."""

    def choose(embeddings: np.ndarray, merge_distance: float = cluster.MERGE_DISTANCE, sample_size: int = cluster.GRANULARITY_SAMPLE,
               seed: int = 0, k_max: int = cluster.K_MAX, merge_islands: bool = True) -> tuple[int, np.ndarray]:
        sample = granularity_sample(np.asarray(embeddings, dtype=np.float32), sample_size, seed)
        micro_labels, means, tree = _tree(sample, seed)
        if tree is None:
            return 1, means
        groups = rule(BranchTree.build(sample, micro_labels, tree))
        return group_centres(sample, groups[micro_labels])

    return choose


def fit_labels(E: np.ndarray, rule: Rule, seed: int = 0, **kwargs: Any) -> np.ndarray:
    """KMeansClusterer(seed) labels over E: ``CUT`` the one cut at 0.45 (``merge_islands=False``),
    ``DEFAULT`` kiku's default (the cut, then island branches), else ``rule`` as its granularity."""
    if rule == CUT:
        return KMeansClusterer(seed=seed, merge_islands=False, **kwargs).fit_predict(E)
    if rule == DEFAULT:
        return KMeansClusterer(seed=seed, **kwargs).fit_predict(E)
    assert callable(rule)
    with mock.patch.object(cluster, "choose_granularity", granularity_by(rule)):
        return KMeansClusterer(seed=seed, **kwargs).fit_predict(E)


def run_variant(E: np.ndarray, truth: np.ndarray, rule: Rule, seed: int = 0) -> dict:
    """One variant over E at ``seed``: k, NMI, ARI, AMI, seconds."""
    start = time.perf_counter()
    labels = fit_labels(E, rule, seed)
    return dict(k=int(labels.max()) + 1, nmi=float(normalized_mutual_info_score(truth, labels)),
                ari=float(adjusted_rand_score(truth, labels)), ami=float(adjusted_mutual_info_score(truth, labels)),
                seconds=time.perf_counter() - start)


def blob_clusters(rule: Rule) -> dict[int, int]:
    """Clusters a variant finds in three well-separated Gaussian blobs (16-d, spread 0.05, sizes
    3:2:1, tests/test_cluster.py's ``blobs``) at 600 and 6,000 rows: the answer is 3 at both sizes."""
    out = {}
    for total in (600, 6000):
        rng = np.random.default_rng(0)
        sizes = (total // 2, total // 3, total // 6)
        centres = rng.normal(size=(3, 16))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        points = np.concatenate([c + rng.normal(0, 0.05, (s, 16)) for c, s in zip(centres, sizes)])
        points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
        out[total] = int(fit_labels(points, rule, 0, minibatch_threshold=100_000).max()) + 1
    return out


def rule_seconds(E: np.ndarray, rule: Rule) -> float:
    """Seconds of the granularity step alone (tree already built): the cost a rule adds to the cut."""
    sample = granularity_sample(E, cluster.GRANULARITY_SAMPLE, 0)
    micro_labels, _, tree = _tree(sample, 0)
    if tree is None or rule == CUT:
        return 0.0
    start = time.perf_counter()
    built = BranchTree.build(sample, micro_labels, tree)
    groups = island_groups(built, sample, micro_labels) if rule == DEFAULT else rule(built)  # type: ignore[operator]
    group_centres(sample, groups[micro_labels])
    return time.perf_counter() - start


def measure(name: str, max_rows: int) -> dict:
    """Every variant on one set at every seed of ``SEEDS``: {variant: [row per seed]} (row: run_variant's)."""
    data, E = suite_vectors(name, max_rows)
    truth = np.asarray(data.labels)
    out: dict = dict(set=name, rows=len(E), labels=len(set(truth.tolist())), variants={})
    for variant, rule in VARIANTS.items():
        rows = [run_variant(E, truth, rule, seed) for seed in SEEDS]
        rows[0]["rule_seconds"] = rule_seconds(E, rule)
        out["variants"][variant] = rows
        first = rows[0]
        print(f"  {name} | {variant}: seed 0 k={first['k']} NMI {first['nmi']:.3f} ARI {first['ari']:.3f}; "
              f"mean NMI {np.mean([r['nmi'] for r in rows]):.3f} ARI {np.mean([r['ari'] for r in rows]):.3f}", flush=True)
    return out


def summary(rows: list[dict]) -> dict:
    """Mean k, NMI, ARI over seeds and half the seed range of NMI and ARI (the noise)."""
    out = {key: float(np.mean([r.get(key, float("nan")) for r in rows])) for key in ("k", "nmi", "ari", "ami")}
    for key in ("nmi", "ari"):
        out[f"{key}_noise"] = (max(r[key] for r in rows) - min(r[key] for r in rows)) / 2
    return out


def peers(saved: Path) -> dict[str, dict]:
    """Per set: the best peer default's NMI / ARI and k-means at the true k, from the suite's saved run."""
    results = json.loads(saved.read_text(encoding="utf-8"))["results"]
    out = {}
    for r in results:
        methods = r["methods"]
        true = next(m for name, m in methods.items() if name.startswith("k-means at the true"))
        out[r["set"]] = dict(
            peers={p.split(" ")[0]: (methods[p]["clusters"], methods[p]["nmi"], methods[p]["ari"]) for p in PEERS if p in methods},
            true=(true["clusters"], true["nmi"], true["ari"]),
            ami={p.split(" ")[0]: methods[p].get("ami", float("nan")) for p in PEERS if p in methods},
            true_ami=true.get("ami", float("nan")),
        )
    return out


def verdict(row: dict, ref: dict) -> str:
    """Issue 11's target on one set: NMI and ARI >= the best peer's, NMI >= k-means at the true k - 0.01."""
    best_nmi = max(v[1] for v in ref["peers"].values())
    best_ari = max(v[2] for v in ref["peers"].values())
    ok_peer = row["nmi"] >= best_nmi and row["ari"] >= best_ari
    ok_true = row["nmi"] >= ref["true"][1] - 0.01
    return "yes" if ok_peer and ok_true else "**no**"


def _paragraphs(text: str) -> list[str]:
    """Docstring text -> markdown lines: wrapped lines joined, each "- " item on a line of its own."""
    out: list[str] = []
    for block in text.split("\n\n"):
        items: list[str] = []
        for line in block.splitlines():
            if line.startswith("- ") or not items:
                items.append(line.strip())
            else:
                items[-1] += " " + line.strip()
        out += [*items, ""]
    return out


def write_markdown(results: list[dict], reference: dict, path: Path, header: str, blobs: dict | None = None) -> None:
    lines = ["# Per-branch cuts of the granularity tree (issue 11 point 2)", "", header, "",
             *_paragraphs(__doc__.split("\n\n", 1)[1].split("\n\nRun")[0]), ""]
    names = [r["set"] for r in results]
    today = next(name for name, rule in VARIANTS.items() if rule == CUT)
    for title, pick in (("seed 0 (the quality suite's run)", lambda rows: rows[0]),
                        (f"mean over seeds {SEEDS[0]}-{SEEDS[-1]}", summary)):
        lines += [f"## k / NMI / ARI per set and variant, {title}", "",
                  "Target (issue 11): NMI and ARI >= the best peer default (Kura, BERTopic, EVoC) and NMI within 0.01 of "
                  "k-means at the true k. **Bold**: the variant meets the target on that set.", "",
                  "| variant | " + " | ".join(f"{n} ({r['labels']})" for n, r in zip(names, results)) + " | sets on target |",
                  "|---|" + "---|" * len(names) + "---:|"]
        for variant in VARIANTS:
            cells, hits = [], 0
            for r in results:
                row = pick(r["variants"][variant])
                cell = f"{row['k']:.0f} / {row['nmi']:.3f} / {row['ari']:.3f}"
                if verdict(row, reference[r["set"]]) == "yes":
                    cell, hits = f"**{cell}**", hits + 1
                cells.append(cell)
            lines.append(f"| {variant} | " + " | ".join(cells) + f" | {hits} / {len(results)} |")
        for peer in ("Kura", "BERTopic", "EVoC"):
            lines.append(f"| *{peer} (quality_suite, seed 0)* | " + " | ".join(
                "{} / {:.3f} / {:.3f}".format(*reference[n]["peers"][peer]) for n in names) + " | |")
        lines.append("| *k-means at the true k (quality_suite, seed 0)* | " + " | ".join(
            "{} / {:.3f} / {:.3f}".format(*reference[n]["true"]) for n in names) + " | |")
        lines.append("")
    lines += [f"## Against the one cut: difference of the means over seeds {SEEDS[0]}-{SEEDS[-1]}, NMI / ARI", "",
              "Noise: half the range the one cut spans over those seeds. **Bold**: worse than the one cut by more than that.", "",
              "| variant | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for variant in list(VARIANTS)[1:]:
        cells = []
        for r in results:
            base, row = summary(r["variants"][today]), summary(r["variants"][variant])
            parts = []
            for key in ("nmi", "ari"):
                diff = row[key] - base[key]
                parts.append(f"**{diff:+.3f}**" if diff < -base[f"{key}_noise"] else f"{diff:+.3f}")
            cells.append(" / ".join(parts))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines.append("| *noise of the one cut* | " + " | ".join(
        f"±{summary(r['variants'][today])['nmi_noise']:.3f} / ±{summary(r['variants'][today])['ari_noise']:.3f}" for r in results) + " |")
    if all("ami" in rows[0] for r in results for rows in r["variants"].values()):
        lines += ["", f"## AMI per set and variant, mean over seeds {SEEDS[0]}-{SEEDS[-1]}", "",
                  "AMI (NMI corrected for chance; noise counted as one more label) does not rise with the number of "
                  "clusters on its own, as NMI does. **Bold**: at least the best peer's AMI (seed 0, quality_suite).", "",
                  "| variant | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for variant in VARIANTS:
            cells = []
            for r in results:
                value, best = summary(r["variants"][variant])["ami"], max(reference[r["set"]]["ami"].values())
                cells.append(f"**{value:.3f}**" if value >= best else f"{value:.3f}")
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        for peer in ("Kura", "BERTopic", "EVoC"):
            lines.append(f"| *{peer} (quality_suite, seed 0)* | " + " | ".join(
                f"{reference[n]['ami'][peer]:.3f}" for n in names) + " |")
        lines.append("| *k-means at the true k (quality_suite, seed 0)* | " + " | ".join(
            f"{reference[n]['true_ami']:.3f}" for n in names) + " |")
    if blobs:
        lines += ["", "## Three separate Gaussian blobs (the answer is 3 at both sizes)", "",
                  "16-d, spread 0.05, sizes 3:2:1 (tests/test_cluster.py's `blobs`); clusters found at 600 and at 6,000 rows. "
                  "At 6,000 rows the 4,000-row sample gives about 330 micro-clusters of 12 rows, so each blob has a deep "
                  "tree of its own noise below the cut.", "",
                  "| variant | 600 rows | 6,000 rows |", "|---|---:|---:|"]
        for variant, counts in blobs.items():
            lines.append(f"| {variant} | {counts['600']} | {counts['6000']} |")
    slowest = max(rows[0].get("rule_seconds", 0.0) for r in results for rows in r["variants"].values())
    lines += ["", f"Cost of a rule over the built tree (4,000-row sample, at most 400 micro-clusters): at most {slowest:.2f} s "
              "on any set; the tree and the refit are the same as today's.", ""]
    lines += [READING.strip(), ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--max-rows", type=int, default=5000, help="seeded sample per set, as the quality suite (0: full sets)")
    parser.add_argument("--suite", default=str(HERE / "results" / "quality_suite.json"), help="saved quality suite run (peers)")
    parser.add_argument("--out", default=str(HERE / "results" / "granularity_branches.md"))
    parser.add_argument("--from-json", default="", help="only rewrite the markdown from a saved .json of a run")
    args = parser.parse_args()
    out = Path(args.out)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        write_markdown(saved["results"], peers(Path(args.suite)), out, saved["header"], saved.get("blobs"))
        return
    load = os.getloadavg()[0]
    results = []
    for name in args.sets.split(","):
        print(f"== {name}", flush=True)
        results.append(measure(name, args.max_rows))
    header = (f"Produced by `benchmarks/granularity_branches.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"{os.cpu_count()} cores shared with other jobs (1-minute load {load:.1f} at start). Same MiniLM int8 vectors and "
              f"rows as the quality suite (at most {args.max_rows:,} per set, seed 0); peers' rows from its run of "
              f"{json.loads(Path(args.suite).read_text())['header']['date']}.")
    blobs = {variant: {str(k): v for k, v in blob_clusters(rule).items()} for variant, rule in VARIANTS.items()}
    write_markdown(results, peers(Path(args.suite)), out, header, blobs)
    out.with_suffix(".json").write_text(json.dumps(dict(header=header, results=results, blobs=blobs), indent=1), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
