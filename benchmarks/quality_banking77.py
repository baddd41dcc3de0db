"""Clustering quality of kiku's offline stages on BANKING77, against Kura's and BERTopic's defaults.

BANKING77: 13,083 customer-support queries (train + test) labelled with 77 intents. All methods
cluster the SAME MiniLM embeddings (kiku's int8 ONNX embedder), so only the clustering differs.

Compared (NMI and ARI against the 77 intents):
  (a) kiku default: KMeansClusterer() with the automatic k (choose_granularity; before issue 11, round(sqrt(n)))
  (b) Kura's default: sklearn KMeans with k = ceil(n / 10) (KmeansClusteringModel, clusters_per_group=10)
  (c) BERTopic's default: UMAP (5 dims, 15 neighbours, min_dist 0, cosine) + HDBSCAN(min_cluster_size=10);
      HDBSCAN noise counted as one extra label (its share is reported)
  (d) kiku with --clusters 77 (the true number of intents)
Then kiku's default hierarchy (KeyphraseNamer + AgglomerativeHierarchy) is built on (a) and its top
level is scored against a coarse grouping of the intents written out below (COARSE).

Extra sections: embedding speed on ~30-word texts, and 2-D projection time for 17k and 100k points.

Run:  PYTHONPATH=src python benchmarks/quality_banking77.py [--skip-projection] [--out benchmarks/results/quality.md]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from kiku.cluster import HDBSCANClusterer, KMeansClusterer, centroids
from kiku.embed import MiniLMEmbedder
from kiku.hierarchy import AgglomerativeHierarchy
from kiku.naming import KeyphraseNamer
from kiku.project import project_embeddings
from kiku.protocols import Corpus, TopicDraft
from kiku.records import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labelled_sets import BANKING77_COARSE  # noqa: E402

DATA = Path(os.environ.get("KIKU_BANKING77", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77")))

#: The coarse grouping of the 77 intents into 10 themes (one home: labelled_sets.py).
COARSE = BANKING77_COARSE


def scores(truth: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    return float(normalized_mutual_info_score(truth, labels)), float(adjusted_rand_score(truth, labels))


def load() -> pd.DataFrame:
    frame = pd.concat([pd.read_csv(DATA / "train.csv"), pd.read_csv(DATA / "test.csv")], ignore_index=True)
    intents = set(frame["category"])
    mapped = {i for items in COARSE.values() for i in items}
    assert mapped == intents, f"COARSE must map every intent: missing {intents - mapped}, unknown {mapped - intents}"
    return frame


def cluster_table(E: np.ndarray, truth: np.ndarray) -> tuple[list[dict], np.ndarray]:
    rows = []
    n = len(E)

    start = time.perf_counter()
    kiku = KMeansClusterer(seed=0)
    kiku_labels = kiku.fit_predict(E)
    rows.append(dict(method=f"(a) kiku default: k-means, k chosen from the data = {kiku.n_clusters_}", labels=kiku_labels, seconds=time.perf_counter() - start))

    from sklearn.cluster import KMeans

    start = time.perf_counter()
    k_kura = math.ceil(n / 10)
    kura_labels = KMeans(n_clusters=k_kura, random_state=0).fit_predict(E)
    rows.append(dict(method=f"(b) Kura default: KMeans, k = ceil(n/10) = {k_kura}", labels=kura_labels, seconds=time.perf_counter() - start))

    start = time.perf_counter()
    bertopic_labels = HDBSCANClusterer(min_cluster_size=10, reduce_dims=5, seed=0).fit_predict(E)
    rows.append(dict(method="(c) BERTopic default: UMAP 5-d + HDBSCAN(min_cluster_size=10), noise = 1 label", labels=bertopic_labels, seconds=time.perf_counter() - start))

    start = time.perf_counter()
    k77 = KMeansClusterer(n_clusters=77, seed=0).fit_predict(E)
    rows.append(dict(method="(d) kiku --clusters 77", labels=k77, seconds=time.perf_counter() - start))

    for row in rows:
        labels = row["labels"]
        row["nmi"], row["ari"] = scores(truth, labels)
        row["clusters"] = int(len(set(labels[labels >= 0].tolist())))
        row["noise"] = float((labels < 0).mean())
    return rows, kiku_labels


def hierarchy_table(frame: pd.DataFrame, E: np.ndarray, base_labels: np.ndarray, embedder: MiniLMEmbedder) -> tuple[list[dict], list[Cluster], float]:
    texts = frame["text"].tolist()
    ids = [f"b77-{i}" for i in range(len(texts))]
    corpus = Corpus(ids=ids, texts=texts, requests=texts, embeddings=E)
    start = time.perf_counter()
    namer = KeyphraseNamer(embedder)
    means = centroids(E, base_labels)
    drafts = [TopicDraft(key=f"c{k:03d}", member_index=np.flatnonzero(base_labels == k), centroid=means[k]) for k in sorted(means)]
    names = namer.name_topics(drafts, corpus)
    base = [
        Cluster(id=d.key, level=0, name=t.name, description=t.description, keyphrases=t.keyphrases,
                representative_request=t.representative_request, member_ids=[ids[i] for i in d.member_index])
        for d, t in zip(drafts, names)
    ]
    tree = AgglomerativeHierarchy(namer, seed=0).build(base, corpus)
    seconds = time.perf_counter() - start
    other_trees = [
        (f"kiku hierarchy (method='kmeans', seed {seed})", AgglomerativeHierarchy(namer, seed=seed).build(base, corpus))
        for seed in (1, 2)
    ]
    other_trees.append(("kiku hierarchy with method='ward'", AgglomerativeHierarchy(namer, method="ward").build(base, corpus)))

    coarse_of = {intent: group for group, items in COARSE.items() for intent in items}
    coarse = frame["category"].map(coarse_of).to_numpy()
    position = {cid: i for i, cid in enumerate(ids)}

    def top_labels(clusters: list[Cluster]) -> tuple[np.ndarray, int, int]:
        level = max(c.level for c in clusters)
        labels = np.full(len(ids), -1)
        tops = [c for c in clusters if c.level == level]
        for number, cluster in enumerate(tops):
            labels[[position[m] for m in cluster.member_ids]] = number
        return labels, len(tops), level

    from sklearn.cluster import KMeans

    rows = []
    for label, clusters in [("kiku default hierarchy (method='kmeans', seed 0)", tree), *other_trees]:
        labels, count, level = top_labels(clusters)
        nmi, ari = scores(coarse, labels)
        rows.append(dict(method=f"{label}: top level ({count} topics, level {level})", nmi=nmi, ari=ari))
    direct = KMeans(n_clusters=len(COARSE), random_state=0, n_init=3).fit_predict(E)
    nmi, ari = scores(coarse, direct)
    rows.append(dict(method=f"reference: flat k-means on all points, k = {len(COARSE)} (the number of coarse groups, not known to kiku)", nmi=nmi, ari=ari))
    return rows, tree, seconds


def embed_speed(frame: pd.DataFrame) -> list[dict]:
    rng = random.Random(0)
    sentences = frame["text"].tolist()
    texts = []
    while len(texts) < 1000:  # ~30-word texts: join short queries
        parts = []
        while sum(len(p.split()) for p in parts) < 28:
            parts.append(rng.choice(sentences))
        texts.append(" ".join(parts))
    words = float(np.mean([len(t.split()) for t in texts]))
    rows = []
    embedder = MiniLMEmbedder()
    start = time.perf_counter()
    embedder.embed(texts[:8])
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    embedder.embed(texts)
    sorted_rate = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(texts), embedder.batch_size):  # one batch per call: input order, no sorting
        embedder.embed(texts[i : i + embedder.batch_size])
    unsorted_rate = len(texts) / (time.perf_counter() - start)
    rows.append(dict(what=f"1,000 texts of {words:.0f} words, length-sorted batches of {embedder.batch_size}", rate=sorted_rate))
    rows.append(dict(what=f"same texts, input-order batches of {embedder.batch_size}", rate=unsorted_rate))
    short = sentences[:2000]
    start = time.perf_counter()
    embedder.embed(short)
    rows.append(dict(what=f"2,000 BANKING77 queries ({np.mean([len(t.split()) for t in short]):.0f} words)", rate=len(short) / (time.perf_counter() - start)))
    rows.append(dict(what="first call (session load + 8 texts), seconds", rate=load_seconds))
    return rows


def projection_times(E: np.ndarray) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for n in (17_000, 100_000):
        index = rng.integers(0, len(E), size=n)
        data = E[index] + rng.normal(0, 0.02, (n, E.shape[1])).astype(np.float32)  # jittered copies
        data /= np.linalg.norm(data, axis=1, keepdims=True)
        start = time.perf_counter()
        coords = project_embeddings(data, seed=0)
        rows.append(dict(n=n, seconds=time.perf_counter() - start, finite=bool(np.isfinite(coords).all())))
        print(f"projection n={n}: {rows[-1]['seconds']:.0f}s", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/quality.md")
    parser.add_argument("--skip-projection", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="only measure embedding speed and print the table")
    parser.add_argument("--embeddings-cache", default="", help="optional .npy path to reuse embeddings between runs")
    args = parser.parse_args()
    load_avg = os.getloadavg()[0]

    frame = load()
    if args.speed_only:
        print(f"load average {load_avg:.1f}")
        for r in embed_speed(frame):
            print(f"| {r['what']} | {r['rate']:.1f} |")
        return
    truth = frame["category"].to_numpy()
    embedder = MiniLMEmbedder()
    start = time.perf_counter()
    if args.embeddings_cache and Path(args.embeddings_cache).exists():
        E = np.load(args.embeddings_cache)
        embed_seconds = float("nan")
    else:
        E = embedder.embed(frame["text"].tolist())
        embed_seconds = time.perf_counter() - start
        if args.embeddings_cache:
            np.save(args.embeddings_cache, E)
    print(f"embedded {len(E)} texts in {embed_seconds:.0f}s", flush=True)

    rows, kiku_labels = cluster_table(E, truth)
    for r in rows:
        print(f"{r['method']}: NMI {r['nmi']:.4f} ARI {r['ari']:.4f} {r['seconds']:.0f}s", flush=True)
    hier_rows, tree, hier_seconds = hierarchy_table(frame, E, kiku_labels, embedder)
    for r in hier_rows:
        print(f"{r['method']}: NMI {r['nmi']:.4f} ARI {r['ari']:.4f}", flush=True)
    speed = embed_speed(frame)
    projection = [] if args.skip_projection else projection_times(E)

    best_baseline = max(rows[1:3], key=lambda r: r["nmi"])
    lines = [
        "# Offline stage quality and speed (BANKING77)",
        "",
        f"Produced by `benchmarks/quality_banking77.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU; "
        f"1-minute load average at start {load_avg:.1f} (other jobs on the same cores make the times upper bounds).",
        "",
        f"Data: BANKING77 train + test, {len(E):,} queries, 77 intents. Embedded once with "
        f"`MiniLMEmbedder` (int8 all-MiniLM-L6-v2) in {embed_seconds:.0f} s ({len(E) / embed_seconds:.0f} texts/s); "
        "every method below clusters the same vectors.",
        "",
        "## Base clusters vs the 77 intents",
        "",
        "| method | clusters | NMI | ARI | noise share | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {r['clusters']} | {r['nmi']:.4f} | {r['ari']:.4f} | {r['noise']:.1%} | {r['seconds']:.1f} |")
    kiku_row = rows[0]
    lines += [
        "",
        f"kiku's default beats the best baseline ({best_baseline['method'].split(':')[0]}) on NMI by "
        f"{kiku_row['nmi'] - best_baseline['nmi']:+.4f} and on ARI by {kiku_row['ari'] - best_baseline['ari']:+.4f}.",
        "",
        "How the automatic k is chosen, measured on six labelled sets: benchmarks/quality_suite.py "
        "(benchmarks/results/quality_suite.md).",
        "",
        "## Top of kiku's hierarchy vs a coarse grouping of the intents",
        "",
        f"The 77 intents grouped into {len(COARSE)} themes (mapping written out in `COARSE` in the benchmark). "
        f"kiku's default hierarchy over the (a) clusters: naming + tree built in {hier_seconds:.1f} s.",
        "",
        "| grouping | NMI vs coarse | ARI vs coarse |",
        "|---|---:|---:|",
    ]
    for r in hier_rows:
        lines.append(f"| {r['method']} | {r['nmi']:.4f} | {r['ari']:.4f} |")
    top_level = max(c.level for c in tree)
    lines += ["", "Top-level topics kiku named (offline, no LLM):", ""]
    for c in sorted((c for c in tree if c.level == top_level), key=lambda c: -c.size):
        lines.append(f"- **{c.name}** ({c.size:,}): {c.description}")
    counts = [sum(1 for c in tree if c.level == level) for level in range(top_level + 1)]
    lines += ["", f"Clusters per level (0 = base): {counts}.", ""]
    lines += ["## Embedding speed (MiniLMEmbedder, 2 cores)", "", "| input | texts/s |", "|---|---:|"]
    for r in speed:
        lines.append(f"| {r['what']} | {r['rate']:.1f} |")
    if projection:
        lines += [
            "",
            "## 2-D projection time (`project_embeddings`, seeded UMAP, cosine)",
            "",
            "Points are jittered copies of the BANKING77 vectors. Above 20,000 points UMAP is fitted on a seeded sample of "
            "20,000 and the rest is transformed in batches of 20,000. Times include numba compilation on first use.",
            "",
            "| points | seconds |",
            "|---:|---:|",
        ]
        for r in projection:
            lines.append(f"| {r['n']:,} | {r['seconds']:.0f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
