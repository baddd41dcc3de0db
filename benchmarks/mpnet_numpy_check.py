"""kiku's NumPy all-mpnet-base-v2 (``kiku.embed_mpnet``) against sentence-transformers on torch.

Embeds the 40 BANKING77 rows (short) and the 77 W&B queries with their matched document (long,
cut at 128 word pieces) from tests/data with both, on 1 and 2 threads, and writes the agreement
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
REPEATS = 3

REFERENCE = r"""
import json, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
folder, texts_path, out_path, max_tokens, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
texts = json.load(open(texts_path))
model = SentenceTransformer(folder, device="cpu"); model.max_seq_length = max_tokens
speeds = {}
for threads in (1, 2):
    torch.set_num_threads(threads)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter(); vectors = model.encode(texts, batch_size=32, normalize_embeddings=True); best = min(best, time.perf_counter() - t0)
    speeds[threads] = len(texts) / best
np.save(out_path, vectors.astype(np.float32))
print(json.dumps({"speeds": speeds, "torch": torch.__version__}))
"""


def texts() -> list[str]:
    """40 short BANKING77 requests and 77 W&B queries with their matched documentation (long)."""
    with open(ROOT / "tests" / "data" / "banking77-sample.csv", newline="") as handle:
        short = [row["text"] for row in csv.DictReader(handle)]
    with open(ROOT / "tests" / "data" / "wandb-labels-dev.jsonl") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return short + [f"{r['query']}\n{r['matching_document']}" for r in rows]


def numpy_speeds(items: list[str]) -> tuple[np.ndarray, dict[int, float]]:
    speeds: dict[int, float] = {}
    vectors = np.zeros((0, 768), dtype=np.float32)
    for threads in (1, 2):
        embedder = MPNetEmbedder(batch_size=32, max_tokens=MAX_TOKENS, threads=threads)
        embedder.embed(items[:2])  # load the weights outside the timing
        best = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            vectors = embedder.embed(items)
            best = min(best, time.perf_counter() - t0)
        speeds[threads] = len(items) / best
    return vectors, speeds


def main() -> None:
    reference_python = os.environ.get("MPNET_REF_PYTHON", "/tmp/mpnet-ref/bin/python")
    items = texts()
    folder = model_folder()
    ours, our_speeds = numpy_speeds(items)
    with tempfile.TemporaryDirectory() as tmp:
        texts_path, out_path = Path(tmp) / "texts.json", Path(tmp) / "ref.npy"
        texts_path.write_text(json.dumps(items))
        done = subprocess.run([reference_python, "-c", REFERENCE, str(folder), str(texts_path), str(out_path), str(MAX_TOKENS),
                               str(REPEATS)], check=True, capture_output=True, text=True)
        info = json.loads(done.stdout.strip().splitlines()[-1])
        reference = np.load(out_path)
    cosines = (ours * reference).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    torch_speeds = {int(k): float(v) for k, v in info["speeds"].items()}
    truncated = sum(MPNetEmbedder(max_tokens=MAX_TOKENS).truncated(items))
    result = {"texts": len(items), "truncated": truncated, "min_cosine": float(cosines.min()),
              "max_abs_diff": float(np.abs(ours - reference).max()), "numpy": our_speeds, "torch": torch_speeds,
              "torch_version": info["torch"]}
    print(json.dumps(result))
    write(result)


def write(r: dict) -> None:
    rows = "\n".join(
        f"| {t} | {r['numpy'][t]:.1f} | {r['torch'][t]:.1f} | {r['numpy'][t] / r['torch'][t]:.2f} |" for t in (1, 2))
    section = f"""{SECTION}

_Produced by `benchmarks/mpnet_numpy_check.py` on {time.strftime('%Y-%m-%d')} (2-core machine shared with other sessions:
best of {REPEATS} runs each; the ratio holds better than the absolute rates)._

kiku's `--embedder mpnet` runs the MPNet encoder in NumPy (`kiku/embed_mpnet.py`: safetensors weights, `tokenizers`,
no torch). On {r['texts']} real texts from tests/data (40 BANKING77 requests, 77 W&B queries with their matched document,
{r['truncated']} of them cut at {MAX_TOKENS} word pieces) against sentence-transformers on torch {r['torch_version']}
(`max_seq_length={MAX_TOKENS}`, normalised): **min cosine {r['min_cosine']:.6f}**, max abs difference per coordinate
{r['max_abs_diff']:.2e}.

| threads | NumPy texts/s | torch texts/s | NumPy / torch |
|---:|---:|---:|---:|
{rows}
"""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    if SECTION in text:
        text = text[: text.index(SECTION)].rstrip() + "\n"
    RESULTS.write_text(text.rstrip() + "\n\n" + section)


if __name__ == "__main__":
    main()
