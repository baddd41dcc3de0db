"""Compare topic shares between two runs, or between periods of one run.

For each topic: its count and share in A and in B, the change in share (B - A) with a 95%
interval (Newcombe's hybrid score interval, built from the two Wilson intervals: it stays
inside [-1, 1] and behaves for small counts), a two-proportion z-test, and the
Benjamini-Hochberg correction over all the topics compared, so that "growth" and "decline"
are flagged at a 5% false discovery rate however many topics there are. A topic with no
conversations in A is *new*, one with none in B *vanished*.

Runs are matched by topic id (``kiku assign`` keeps BASE_RUN's ids and names); both are read
through the store, so hand edits (``kiku edit``) are honoured.

Shapes:
    compare_counts({id: n_a}, N_a, {id: n_b}, N_b, names) -> [TopicChange] (one per topic)

Example:
    >>> rows = compare_counts({"t1": 50, "t2": 50}, 100, {"t1": 80, "t2": 20}, 100, {"t1": "Cards", "t2": "Fees"})
    >>> [(r.cluster_id, round(r.change, 2), r.direction) for r in rows]
    [('t1', 0.3, 'growth'), ('t2', -0.3, 'decline')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from kiku.errors import KikuError

Z95 = 1.959963984540054
Period = Literal["day", "week", "month"]


class TopicChange(BaseModel):
    """One topic's share in A and B and the change between them."""

    cluster_id: str
    name: str
    level: int = 0
    count_a: int
    count_b: int
    share_a: float
    share_b: float
    change: float
    low: float
    high: float
    p_value: float
    q_value: float
    direction: Literal["growth", "decline", ""] = ""
    status: Literal["new", "vanished", ""] = ""
    is_noise: bool = False


class Comparison(BaseModel):
    """Topic changes from ``label_a`` to ``label_b`` (``total_*`` conversations in each)."""

    label_a: str
    label_b: str
    total_a: int
    total_b: int
    level: int = 0
    rows: list[TopicChange] = Field(default_factory=list)


def wilson(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion.

    >>> [round(v, 3) for v in wilson(0, 10)]
    [0.0, 0.278]
    """
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(count_a: int, total_a: int, count_b: int, total_b: int) -> tuple[float, float]:
    """95% interval of ``p_b - p_a`` (Newcombe 1998, method 10).

    >>> low, high = difference_interval(50, 100, 80, 100)
    >>> round(low, 3), round(high, 3)
    (0.169, 0.417)
    """
    pa_, pb = count_a / total_a if total_a else 0.0, count_b / total_b if total_b else 0.0
    la, ua = wilson(count_a, total_a)
    lb, ub = wilson(count_b, total_b)
    d = pb - pa_
    return d - math.sqrt((pb - lb) ** 2 + (ua - pa_) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa_ - la) ** 2)


def two_proportion_p(count_a: int, total_a: int, count_b: int, total_b: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when undefined).

    >>> round(two_proportion_p(50, 100, 80, 100), 5)
    1e-05
    """
    if total_a <= 0 or total_b <= 0:
        return 1.0
    pooled = (count_a + count_b) / (total_a + total_b)
    variance = pooled * (1 - pooled) * (1 / total_a + 1 / total_b)
    if variance <= 0:
        return 1.0
    z = (count_b / total_b - count_a / total_a) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    >>> [round(q, 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def compare_counts(counts_a: Mapping[str, int], total_a: int, counts_b: Mapping[str, int], total_b: int,
                   names: Mapping[str, str], noise: Sequence[str] = (), levels: Mapping[str, int] | None = None,
                   alpha: float = 0.05) -> list[TopicChange]:
    """One :class:`TopicChange` per topic of either side, largest |change| first.

    Noise buckets (``noise``) are listed but never flagged nor counted in the correction.
    """
    ids = sorted(set(counts_a) | set(counts_b))
    raw = []
    for cid in ids:
        a, b = int(counts_a.get(cid, 0)), int(counts_b.get(cid, 0))
        low, high = difference_interval(a, total_a, b, total_b)
        raw.append((cid, a, b, low, high, two_proportion_p(a, total_a, b, total_b)))
    tested = [i for i, r in enumerate(raw) if r[0] not in noise]
    q_tested = benjamini_hochberg([raw[i][5] for i in tested])
    q = [1.0] * len(raw)
    for i, value in zip(tested, q_tested):
        q[i] = value
    rows = []
    for (cid, a, b, low, high, p), qv in zip(raw, q):
        share_a, share_b = a / total_a if total_a else 0.0, b / total_b if total_b else 0.0
        significant = qv < alpha and cid not in noise
        rows.append(TopicChange(
            cluster_id=cid, name=names.get(cid, cid), level=(levels or {}).get(cid, 0), count_a=a, count_b=b,
            share_a=share_a, share_b=share_b, change=share_b - share_a, low=low, high=high, p_value=p, q_value=qv,
            direction=("growth" if share_b > share_a else "decline") if significant else "",
            status="new" if a == 0 and b > 0 else "vanished" if b == 0 and a > 0 else "",
            is_noise=cid in noise,
        ))
    rows.sort(key=lambda r: (-abs(r.change), r.cluster_id))
    return rows


# --- reading runs ---------------------------------------------------------------------------------


def _open(run: str | Path) -> Any:
    from kiku.store import open_finished_run

    return open_finished_run(run, ("clusters", "assignments", "conversations"), hint="pass a folder `kiku run` or `kiku assign` wrote")


def _topics(store: Any, level: int) -> tuple[dict[str, str], dict[str, int], list[str]]:
    clusters = store.read_table("clusters", columns=["cluster_id", "level", "name", "is_noise"]).to_pylist()
    if level not in {int(c["level"]) for c in clusters}:
        top = max(int(c["level"]) for c in clusters)
        raise KikuError(f"{store.path} has levels 0 to {top}; choose --level within them")
    names = {str(c["cluster_id"]): str(c["name"]) for c in clusters}
    levels = {str(c["cluster_id"]): int(c["level"]) for c in clusters}
    noise = [str(c["cluster_id"]) for c in clusters if c["is_noise"]]
    return names, levels, noise


def _counts(store: Any, level: int) -> tuple[dict[str, int], int]:
    rows = store.connect().execute(
        "select cluster_id, count(*) from assignments where level = ? group by cluster_id", [level]).fetchall()
    counts = {str(cid): int(n) for cid, n in rows}
    return counts, sum(counts.values())


def compare_runs(run_a: str | Path, run_b: str | Path, level: int = 0, alpha: float = 0.05) -> Comparison:
    """Each topic's share in ``run_a`` and ``run_b`` (matched by topic id) and the change.

    >>> comparison = compare_runs("runs/week1", "runs/week2")               # doctest: +SKIP
    >>> [r.name for r in comparison.rows if r.direction == "growth"]        # doctest: +SKIP
    """
    a, b = _open(run_a), _open(run_b)
    names_a, levels_a, noise_a = _topics(a, level)
    names_b, levels_b, noise_b = _topics(b, level)
    counts_a, total_a = _counts(a, level)
    counts_b, total_b = _counts(b, level)
    shared = set(names_a) & set(names_b)
    if not shared:
        raise KikuError(f"{run_a} and {run_b} share no topic ids; compare a base run with a run `kiku assign` made from it")
    names = {**names_a, **names_b}
    rows = compare_counts(counts_a, total_a, counts_b, total_b, names, noise=[*noise_a, *noise_b],
                          levels={**levels_a, **levels_b}, alpha=alpha)
    return Comparison(label_a=str(run_a), label_b=str(run_b), total_a=total_a, total_b=total_b, level=level, rows=rows)


def compare_periods(run: str | Path, by: Period = "week", level: int = 0, alpha: float = 0.05) -> list[Comparison]:
    """Each period of one run against the one before it (``created_at`` truncated to ``by``)."""
    if by not in ("day", "week", "month"):
        raise KikuError(f"--by {by}: choose day, week or month")
    store = _open(run)
    names, levels, noise = _topics(store, level)
    rows = store.connect().execute(
        f"""select date_trunc('{by}', c.created_at) as period, a.cluster_id, count(*)
            from assignments a join conversations c using (conversation_id)
            where a.level = ? and c.created_at is not null group by 1, 2 order by 1""", [level]).fetchall()
    periods: dict[str, dict[str, int]] = {}
    for period, cid, n in rows:
        periods.setdefault(str(period)[:10], {})[str(cid)] = int(n)
    if len(periods) < 2:
        raise KikuError(f"{run}: conversations fall in {len(periods)} {by}(s) with a date; "
                        "--by needs at least two (do the conversations have created_at?)")
    labels = sorted(periods)
    out = []
    for before, after in zip(labels, labels[1:]):
        a, b = periods[before], periods[after]
        out.append(Comparison(
            label_a=before, label_b=after, total_a=sum(a.values()), total_b=sum(b.values()), level=level,
            rows=compare_counts(a, sum(a.values()), b, sum(b.values()), names, noise=noise, levels=levels, alpha=alpha),
        ))
    return out


def comparison_records(comparisons: Sequence[Comparison]) -> list[dict[str, Any]]:
    """Flat rows (one per topic and comparison) for CSV / JSON output."""
    return [{"a": c.label_a, "b": c.label_b, "total_a": c.total_a, "total_b": c.total_b, **row.model_dump()}
            for c in comparisons for row in c.rows]


def write_comparisons(comparisons: Sequence[Comparison], out_file: str | Path) -> int:
    """Write the comparisons to ``.csv`` or ``.json`` (by suffix); returns the number of rows."""
    import json

    import pandas as pd

    path = Path(out_file)
    records = comparison_records(comparisons)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        pd.DataFrame(records).to_csv(path, index=False)
    elif path.suffix.lower() == ".json":
        path.write_text(json.dumps([c.model_dump() for c in comparisons], indent=1), encoding="utf-8")
    else:
        raise KikuError(f"{path}: unknown output type {path.suffix or '(none)'}; use .csv or .json")
    return len(records)


# --- two topics of one run ------------------------------------------------------------------------


class TopicSide(BaseModel):
    """One topic of a two-topic comparison: its size and share of the run, with a Wilson 95% interval."""

    cluster_id: str
    name: str
    level: int = 0
    size: int
    share: float
    low: float
    high: float


class FacetDifference(BaseModel):
    """One facet value's share among topic A's and topic B's conversations (``difference`` = B - A)."""

    key: str
    label: str
    value: str
    count_a: int
    count_b: int
    share_a: float
    share_b: float
    difference: float


class Keyword(BaseModel):
    """A term and its c-TF-IDF weight in one topic (weights computed over the two topics only)."""

    term: str
    weight: float


class TopicPair(BaseModel):
    """Topic A against topic B: sizes and shares, facet differences, keyword weights."""

    total: int
    a: TopicSide
    b: TopicSide
    facets: list[FacetDifference] = Field(default_factory=list)
    keywords_a: list[Keyword] = Field(default_factory=list)
    keywords_b: list[Keyword] = Field(default_factory=list)


def _value_counts(facet: Mapping[str, Any], members: Sequence[int]) -> list[int]:
    """How many of ``members`` hold each value of one encoded facet (code -1: no value)."""
    codes, multi = facet["codes"], facet.get("kind") == "multi"
    tally = [0] * len(facet["values"])
    for i in members:
        for c in (codes[i] if multi else [codes[i]]):
            if c >= 0:
                tally[c] += 1
    return tally


def facet_differences(facets: Sequence[Mapping[str, Any]], members_a: Sequence[int], members_b: Sequence[int],
                      limit: int = 40) -> list[FacetDifference]:
    """Per facet value, its share in A's and B's members; largest |difference| first.

    ``facets`` are the explorer bundle's encoded facets (``kiku.web.data.encode_facet``: ``kind``
    ``"category"`` with one code per conversation, -1 missing, or ``"multi"`` with a list of
    codes). A facet with a single value over the whole run tells nothing and is left out.

    >>> f = {"key": "lang", "label": "Language", "kind": "category", "values": ["en", "de"], "codes": [0, 0, 1, 1]}
    >>> [(d.value, d.difference) for d in facet_differences([f], [0, 1], [2, 3])]
    [('de', 1.0), ('en', -1.0)]
    """
    out: list[FacetDifference] = []
    na, nb = len(members_a), len(members_b)
    for f in facets:
        values = list(f["values"])
        if len(values) < 2:
            continue
        ca, cb = _value_counts(f, members_a), _value_counts(f, members_b)
        for v, (x, y) in enumerate(zip(ca, cb)):
            if x == 0 and y == 0:
                continue
            sa, sb = x / na if na else 0.0, y / nb if nb else 0.0
            out.append(FacetDifference(key=str(f["key"]), label=str(f["label"]), value=str(values[v]),
                                       count_a=x, count_b=y, share_a=sa, share_b=sb, difference=sb - sa))
    out.sort(key=lambda d: (-abs(d.difference), d.key, d.value))
    return out[:limit]


def keyword_weights(texts_a: Sequence[str], texts_b: Sequence[str], top_n: int = 10) -> tuple[list[Keyword], list[Keyword]]:
    """The ``top_n`` words and two-word phrases of each side by c-TF-IDF (``kiku.naming.class_tfidf``)
    over a 2 x terms matrix (how many of the side's texts hold the term; phrases from
    ``kiku.naming.phrase_ngrams``): a term weighs more in A the more it is A's and not B's.

    >>> a, b = keyword_weights(["card arrived late", "card never arrived"], ["refund my fee", "fee charged twice"], 2)
    >>> [k.term for k in a], [k.term for k in b]
    (['arrived', 'card'], ['fee', 'charged'])
    """
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    from kiku.naming import class_tfidf, phrase_ngrams, stop_words

    stop = stop_words()
    texts = [t or "" for t in (*texts_a, *texts_b)]
    # how many conversations of each side hold each phrase (kiku's naming phrases: no stop word
    # at either end, never across a clause), as naming counts them for topic names
    vectorizer = CountVectorizer(analyzer=lambda text: phrase_ngrams(text, stop, max_words=2), binary=True)
    try:
        rows = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words or empty texts
        return [], []
    side = np.zeros((2, len(texts)))
    side[0, : len(texts_a)] = 1
    side[1, len(texts_a):] = 1
    counts = side @ rows.toarray()
    terms = vectorizer.get_feature_names_out()
    weights = class_tfidf(counts)

    def top(row: int) -> list[Keyword]:
        order = np.lexsort((terms, -weights[row]))
        return [Keyword(term=str(terms[j]), weight=float(weights[row, j])) for j in order[:top_n] if weights[row, j] > 0]

    return top(0), top(1)


def compare_topics(bundle: Mapping[str, Any], topic_a: str, topic_b: str, top_n: int = 10) -> TopicPair:
    """Topic ``topic_a`` against ``topic_b`` (cluster ids) of one run, from the explorer's bundle
    (``kiku.web.data.RunData.bundle()``: clusters, assign per level, facets, request texts).

    >>> pair = compare_topics(RunData("runs/week2").bundle(), "L0-001", "L0-002")   # doctest: +SKIP
    >>> pair.a.size, pair.facets[0].value, pair.keywords_a[0].term                    # doctest: +SKIP
    """
    clusters = list(bundle["clusters"])
    index = {str(c["id"]): i for i, c in enumerate(clusters)}
    for cid in (topic_a, topic_b):
        if cid not in index:
            raise KikuError(f"topic {cid!r} is not in this run; pick one of its topic ids (e.g. {clusters[0]['id'] if clusters else 'L0-000'})")
    total = int(bundle["n"])
    requests = list((bundle.get("text") or {}).get("request") or [""] * total)

    def members(cid: str) -> list[int]:
        i = index[cid]
        assign = bundle["assign"][str(clusters[i]["level"])]
        return [k for k, c in enumerate(assign) if c == i]

    def side(cid: str, rows: list[int]) -> TopicSide:
        c = clusters[index[cid]]
        low, high = wilson(len(rows), total)
        return TopicSide(cluster_id=cid, name=str(c.get("name") or cid), level=int(c.get("level") or 0), size=len(rows),
                         share=len(rows) / total if total else 0.0, low=low, high=high)

    rows_a, rows_b = members(topic_a), members(topic_b)
    kw_a, kw_b = keyword_weights([requests[i] for i in rows_a], [requests[i] for i in rows_b], top_n)
    return TopicPair(total=total, a=side(topic_a, rows_a), b=side(topic_b, rows_b),
                     facets=facet_differences(bundle.get("facets") or [], rows_a, rows_b), keywords_a=kw_a, keywords_b=kw_b)
