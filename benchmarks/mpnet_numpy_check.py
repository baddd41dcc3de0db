"""kiku's NumPy all-mpnet-base-v2 (``kiku.embed_mpnet``) against sentence-transformers on torch.

Embeds the 40 BANKING77 rows (short) and the 77 W&B queries with their matched document (long,
cut at 128 word pieces) from tests/data with both, on 1 and 2 threads (NumPy and torch passes alternating), and writes the agreement
(min cosine, max abs difference) and the speeds to the "NumPy encoder" section of
benchmarks/results/mpnet.md. The reference runs in its own venv (torch is not a kiku dependency):

    python3 -m venv /tmp/mpnet-ref && /tmp/mpnet-ref/bin/pip install torch==2.13.0 sentence-transformers
    pip install -e '.[mpnet]'
    MPNET_REF_PYTHON=/tmp/mpnet-ref/bin/python python benchmarks/mpnet_numpy_check.py

Both read the same unpacked model folder (``kiku.embed_mpnet.model_folder()``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from kiku.embed_mpnet import MPNetEmbedder, model_folder  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mpnet.md"
SECTION = "## NumPy encoder vs sentence-transformers (torch)"
MAX_TOKENS = 128
REPEATS = 2

# The reference worker: loads the model once, then answers "THREADS" lines with the seconds one
# encode of all texts took (and saves the vectors), so NumPy and torch passes can alternate.
REFERENCE = r"""
import json, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
folder, texts_path, out_path, max_tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = json.load(open(texts_path))
model = SentenceTransformer(folder, device="cpu"); model.max_seq_length = max_tokens
print(json.dumps({"torch": torch.__version__}), flush=True)
for line in sys.stdin:
    torch.set_num_threads(int(line))
    t0 = time.perf_counter(); vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    seconds = time.perf_counter() - t0
    np.save(out_path, vectors.astype(np.float32))
    print(json.dumps({"seconds": seconds}), flush=True)
"""


def texts() -> list[str]:
    """40 short BANKING77 requests and 77 W&B queries with their matched documentation (long)."""
    with open(ROOT / "tests" / "data" / "banking77-sample.csv", newline="") as handle:
        short = [row["text"] for row in csv.DictReader(handle)]
    with open(ROOT / "tests" / "data" / "wandb-labels-dev.jsonl") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return short + [f"{r['query']}\n{r['matching_document']}" for r in rows]


def main() -> None:
    reference_python = os.environ.get("MPNET_REF_PYTHON", "/tmp/mpnet-ref/bin/python")
    items = texts()
    folder = model_folder()
    embedders = {t: MPNetEmbedder(batch_size=32, max_tokens=MAX_TOKENS, threads=t) for t in (1, 2)}
    ours = np.zeros((0, 768), dtype=np.float32)
    best: dict[str, dict[int, float]] = {"numpy": {1: float("inf"), 2: float("inf")}, "torch": {1: float("inf"), 2: float("inf")}}
    with tempfile.TemporaryDirectory() as tmp:
        texts_path, out_path = Path(tmp) / "texts.json", Path(tmp) / "ref.npy"
        texts_path.write_text(json.dumps(items))
        worker = subprocess.Popen([reference_python, "-c", REFERENCE, str(folder), str(texts_path), str(out_path), str(MAX_TOKENS)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert worker.stdin is not None and worker.stdout is not None
        info = json.loads(worker.stdout.readline())
        for embedder in embedders.values():
            embedder.embed(items[:2])  # load the weights outside the timing
        for _ in range(REPEATS):  # alternate NumPy and torch passes so both see the same load from other processes
            for threads, embedder in embedders.items():
                t0 = time.perf_counter()
                ours = embedder.embed(items)
                best["numpy"][threads] = min(best["numpy"][threads], time.perf_counter() - t0)
                worker.stdin.write(f"{threads}\n")
                worker.stdin.flush()
                best["torch"][threads] = min(best["torch"][threads], json.loads(worker.stdout.readline())["seconds"])
        worker.stdin.close()
        worker.wait()
        reference = np.load(out_path)
    cosines = (ours * reference).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    truncated = sum(embedders[1].truncated(items))
    speeds = {name: {t: len(items) / seconds for t, seconds in runs.items()} for name, runs in best.items()}
    result = {"texts": len(items), "truncated": truncated, "min_cosine": float(cosines.min()),
              "max_abs_diff": float(np.abs(ours - reference).max()), "numpy": speeds["numpy"], "torch": speeds["torch"],
              "torch_version": info["torch"], "load": os.getloadavg()[0]}
    print(json.dumps(result))
    write(result)


def write(r: dict) -> None:
    rows = "\n".join(
        f"| {t} | {r['numpy'][t]:.1f} | {r['torch'][t]:.1f} | {r['numpy'][t] / r['torch'][t]:.2f} |" for t in (1, 2))
    ratio1, ratio2 = (r["numpy"][t] / r["torch"][t] for t in (1, 2))
    load = r.get("load", os.getloadavg()[0])
    section = f"""{SECTION}

_Produced by `benchmarks/mpnet_numpy_check.py` on {time.strftime('%Y-%m-%d')} (2-core machine shared with other sessions:
NumPy and torch passes alternate, best of {REPEATS} each, so both see the same load; the ratio holds, absolute
rates do not)._

kiku's `--embedder mpnet` runs the MPNet encoder in NumPy (`kiku/embed_mpnet.py`: safetensors weights, `tokenizers`,
no torch). On {r['texts']} real texts from tests/data (40 BANKING77 requests, 77 W&B queries with their matched document,
{r['truncated']} of them cut at {MAX_TOKENS} word pieces) against sentence-transformers on torch {r['torch_version']}
(`max_seq_length={MAX_TOKENS}`, normalised): **min cosine {r['min_cosine']:.8f}**, max abs difference per coordinate
{r['max_abs_diff']:.2e}.

| threads | NumPy texts/s | torch texts/s | NumPy / torch |
|---:|---:|---:|---:|
{rows}

Reading: the NumPy encoder is sentence-transformers' all-mpnet-base-v2 to float32 rounding (every text's cosine
≥ {r['min_cosine']:.8f}), so the quality numbers above hold for `--embedder mpnet`. It runs at {ratio1:.2f}× torch's speed
on one thread and {ratio2:.2f}× on two (load average {load:.0f} on {os.cpu_count()} cores during the run: under contention
OpenBLAS's worker threads lose more than MKL's, and a second thread can make either slower). That is the same range as torch,
without its ~2 GB install; mpnet stays an option for quality over speed, not the default.
"""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if SECTION in text:
        text = text[: text.index(SECTION)].rstrip() + "\n"
    RESULTS.write_text(text.rstrip() + "\n\n" + section)


if __name__ == "__main__":
    main()
