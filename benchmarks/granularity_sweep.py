"""Granularity candidates for choose_granularity (issue 11 point 2) on the 1,500-row vectors saved by embedders.py.

Rules for the complete-linkage cut over micro-centroids (P = 12): fixed tau; within = alpha x median
point-to-micro-centroid distance; nn = alpha x median nearest-neighbour centroid distance; quant = a
quantile of pairwise centroid distances. Run: python benchmarks/granularity_sweep.py bbc,chitchat,banking77,chatterbot,mtbench,wandb
"""
import glob
import math
import sys

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score as ari
from sklearn.metrics import normalized_mutual_info_score as nmi

SUITE_T = dict(banking77=48, wandb=48, chatterbot=48, mtbench=256, bbc=256, chitchat=256)
def unit(v): return v / np.linalg.norm(v, axis=1, keepdims=True)
def gran(E, rule, param, P=12, link="complete"):
    n = len(E); micro = int(min(400, max(n // P, math.ceil(2 * math.sqrt(n)))))
    m = KMeans(n_clusters=micro, random_state=0, n_init=1, max_iter=50).fit(E)
    lab = m.labels_; used = np.unique(lab)
    means = unit(np.stack([E[lab == j].mean(0) for j in used]))
    Z = linkage(means.astype(np.float64), method=link, metric="cosine")
    if rule == "fixed": tau = param
    elif rule == "within":  # alpha x median point-to-own-micro-centroid cosine distance
        d = 1 - np.sum(E * means[np.searchsorted(used, lab)], axis=1); tau = param * np.median(d)
    elif rule == "nn":  # alpha x median nearest-neighbour centroid distance
        D = 1 - means @ means.T; np.fill_diagonal(D, 9); tau = param * np.median(D.min(1))
    elif rule == "quant":
        D = 1 - means @ means.T; tau = np.quantile(D[np.triu_indices(len(D), 1)], param)
    g = fcluster(Z, t=tau, criterion="distance")
    pg = g[np.searchsorted(used, lab)]; order = sorted(set(g.tolist()))
    C = unit(np.stack([E[pg == x].mean(0) for x in order]))
    if len(order) == 1: return np.zeros(n, int), tau
    return KMeans(n_clusters=len(order), init=C, n_init=1, random_state=0).fit_predict(E), tau
cands = [("fixed", .45), ("fixed", .55), ("within", 1.0), ("within", 1.2), ("within", 1.4), ("within", 1.6), ("within",1.8), ("nn", 1.5), ("nn", 2.0), ("nn", 2.5), ("quant", .05), ("quant", .1)]
sets = sys.argv[1].split(",")
for name in sets:
    f = glob.glob(f"/work/bench-cache/{name}-emb-t{SUITE_T[name]}-n*.npz")[0]
    z = np.load(f); E, y = z["E"].astype(np.float32), z["labels"]
    for rule, p in cands:
        lab, tau = gran(E, rule, p)
        print(f"{name} {rule} {p}: tau {tau:.3f} k {lab.max()+1} NMI {nmi(y, lab):.3f} ARI {ari(y, lab):.3f}", flush=True)
