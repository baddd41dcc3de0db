"""Name topics without an LLM: c-TF-IDF keyphrases, re-ranked by MMR, plus the most central request.

For each draft (a group of conversations), ``KeyphraseNamer``:

1. scores 1-2 word phrases with BERTopic's class-based TF-IDF over the texts of all drafts in the
   call (a phrase is distinctive when it is frequent in this topic and rare in the others):
   ``W(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A`` the mean number of words per topic
   and ``f(t)`` the frequency of ``t`` over all topics;
2. embeds the best candidates and keeps a diverse few with maximal marginal relevance (MMR)
   against the topic centroid (KeyBERT-style);
3. picks the opening request of the member closest to the centroid as the example.

The name is built from the top two keyphrases ("Card arrival · delivery estimate"), the
description is one sentence with the example. Names are unique across the drafts of one call
(``deduplicate_names``), so siblings never share a name.

Example:
    >>> namer = KeyphraseNamer(MiniLMEmbedder())              # doctest: +SKIP
    >>> namer.name_topics(drafts, corpus)[0].name             # doctest: +SKIP
    'Card arrival · delivery'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from kiku.protocols import Corpus, TopicDraft, TopicName

MAX_DOCS_PER_TOPIC = 600
MAX_CHARS_PER_DOC = 1_500
NAME_PHRASES = 2
DESCRIPTION_PHRASES = 3
MAX_REQUEST_CHARS = 160

#: Words that are common in any chat and say nothing about a topic (added to sklearn's English list).
CHAT_STOP_WORDS = frozenset(
    """
    able actually already also anybody anyone anything ask asked asking bit can cannot come could
    did didn does doesn doing don dont getting going gonna good got great guys happen happened hello
    help hey hi ie im ive just know let like ll look looking lot make maybe mean need needed needs
    ok okay please possible pretty question really right said say says see seems sure tell thank
    thanks thing things think trying try ve want wanted wanting way wondering yes yeah
    """.split()
)


def class_tfidf(counts: Any) -> np.ndarray:
    """BERTopic's c-TF-IDF of a (topics x terms) count matrix -> dense (topics x terms) float64.

    ``W(t, c) = tf(t, c) / words(c) * log(1 + A / f(t))``; A = mean words per topic,
    f(t) = count of t over all topics.

    >>> np.round(class_tfidf(np.array([[2, 0], [1, 1]])), 3).tolist()
    [[0.511, 0.0], [0.255, 0.549]]
    """
    matrix = np.asarray(counts.todense() if hasattr(counts, "todense") else counts, dtype=np.float64)
    words_per_topic = matrix.sum(axis=1, keepdims=True)
    term_freq = matrix.sum(axis=0)
    average = float(words_per_topic.mean()) if matrix.size else 0.0
    idf = np.log(1.0 + average / np.clip(term_freq, 1e-12, None))
    tf = matrix / np.clip(words_per_topic, 1e-12, None)
    return tf * idf[None, :]


def mmr(
    relevance: np.ndarray, candidate_vectors: np.ndarray, top_n: int, diversity: float = 0.5
) -> list[int]:
    """Maximal marginal relevance: indices of ``top_n`` candidates, relevant but not redundant.

    ``relevance`` (m,) scores each candidate; ``candidate_vectors`` (m, dim) are unit vectors.
    Each step picks argmax ``(1 - diversity) * relevance - diversity * max sim to picked``.

    >>> vectors = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    >>> mmr(np.array([0.9, 0.89, 0.5]), vectors, top_n=2, diversity=0.6)
    [0, 2]
    """
    m = len(relevance)
    if m == 0 or top_n <= 0:
        return []
    similarity = candidate_vectors @ candidate_vectors.T
    picked = [int(np.argmax(relevance))]
    while len(picked) < min(top_n, m):
        rest = [i for i in range(m) if i not in picked]
        redundancy = similarity[np.ix_(rest, picked)].max(axis=1)
        scores = (1 - diversity) * relevance[rest] - diversity * redundancy
        picked.append(rest[int(np.argmax(scores))])
    return picked


#: A corpus-wide word may still name a topic where it is this many times more frequent than overall.
CHARACTERISTIC_LIFT = 3.3


def sparse_class_tfidf(counts: Any) -> Any:
    """c-TF-IDF of a sparse (topics x terms) count matrix, kept sparse (same formula as class_tfidf).

    >>> from scipy import sparse
    >>> np.round(sparse_class_tfidf(sparse.csr_matrix(np.array([[2, 0], [1, 1]]))).toarray(), 3).tolist()
    [[0.511, 0.0], [0.255, 0.549]]
    """
    from scipy import sparse

    counts = sparse.csr_matrix(counts, dtype=np.float64)
    words_per_topic = np.asarray(counts.sum(axis=1)).ravel()
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    average = float(words_per_topic.mean()) if counts.shape[0] else 0.0
    idf = np.log(1.0 + average / np.clip(term_freq, 1e-12, None))
    weighted = sparse.diags(1.0 / np.clip(words_per_topic, 1e-12, None)) @ counts @ sparse.diags(idf)
    weighted = weighted.tocsr()
    weighted.sort_indices()
    return weighted


def corpus_wide_terms(terms: Sequence[str], counts: Any, max_topic_share: float = 0.4, min_topics: int = 4) -> set[str]:
    """Words found in at least ``max_topic_share`` of the topics: they name the corpus, not a topic.

    In a product's own logs the product name ("wandb", "weights biases") is in nearly every
    topic; c-TF-IDF alone still ranks it high where it is frequent. Such words, and phrases
    containing them, are kept out of names. With fewer than ``min_topics`` topics nothing is
    removed. ``counts`` is the (topics x terms) count matrix, dense or sparse.

    >>> counts = np.array([[3, 1, 1], [2, 0, 0], [5, 0, 0], [1, 0, 0], [0, 0, 0]])
    >>> sorted(corpus_wide_terms(["wandb", "sweep", "wandb sweep"], counts))
    ['wandb']
    """
    if counts.shape[0] < min_topics:
        return set()
    share = np.asarray((counts > 0).sum(axis=0)).ravel() / counts.shape[0]
    return {str(t) for t, s in zip(terms, share) if " " not in str(t) and s >= max_topic_share}


def _stem(word: str) -> str:
    """A crude stem so that "cards"/"card" and "withdrawal"/"withdraw" count as one word.

    >>> [_stem(w) for w in ["cards", "withdrawal", "withdraw", "currencies", "currency", "charged", "charge"]]
    ['card', 'withdr', 'withdr', 'curren', 'curren', 'charg', 'charg']
    """
    word = word.lower()
    for suffix in ("ings", "ing", "als", "al", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word[:6]


def _words(phrase: str) -> set[str]:
    return {_stem(w) for w in phrase.split()}


def deduplicate_names(names: Sequence[str], alternatives: Sequence[Sequence[str]] | None = None) -> list[str]:
    """Make names unique: a repeated name gets the topic's next distinctive keyphrase, then a number.

    ``alternatives[i]`` lists extra keyphrases of topic i (in preference order) that may be
    appended to tell it apart. The first topic with a name keeps it unchanged... unless a later
    name collides with it too, in which case every colliding topic is extended.
    Comparison ignores case.

    >>> deduplicate_names(["Card · fee", "Card · fee", "Refund"], [["abroad"], ["atm"], []])
    ['Card · fee · abroad', 'Card · fee · atm', 'Refund']
    >>> deduplicate_names(["Refund", "Refund", "Refund"])
    ['Refund', 'Refund (2)', 'Refund (3)']
    """
    result = list(names)
    alternatives = [list(a) for a in alternatives] if alternatives is not None else [[] for _ in names]
    used_extra = [0] * len(result)
    for _ in range(4):  # extend colliding names with their next keyphrase, a few rounds at most
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(result):
            groups.setdefault(name.lower(), []).append(i)
        collisions = [g for g in groups.values() if len(g) > 1]
        if not collisions:
            return result
        changed = False
        for group in collisions:
            for i in group:
                extras = alternatives[i] if i < len(alternatives) else []
                while used_extra[i] < len(extras):
                    extra = extras[used_extra[i]]
                    used_extra[i] += 1
                    if extra.lower() not in result[i].lower():
                        result[i] = f"{result[i]} · {extra}"
                        changed = True
                        break
        if not changed:
            break
    seen: dict[str, int] = {}
    final = []
    for name in result:
        key = name.lower()
        seen[key] = seen.get(key, 0) + 1
        final.append(name if seen[key] == 1 else f"{name} ({seen[key]})")
    # a suffixed name could itself collide with a real name; resolve by further numbering
    taken: set[str] = set()
    for i, name in enumerate(final):
        candidate, number = name, 2
        while candidate.lower() in taken:
            candidate = f"{name} ({number})"
            number += 1
        final[i] = candidate
        taken.add(candidate.lower())
    return final


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut or text[: limit - 1]) + "…"


#: Characters of a topic's document scanned for the written forms of its keyphrases.
SURFACE_SCAN_CHARS = 300_000


def surface_forms(phrases: Sequence[str], document: str, limit: int = SURFACE_SCAN_CHARS) -> dict[str, str]:
    """How each (lowercased) keyphrase is usually written in ``document``: "api" -> "API".

    Keyphrases are scored in lowercase; names read better in the users' own spelling ("AI",
    "C++", "React", "iPhone"). Occurrences at the start of a sentence or line are not counted
    (capitalised there by grammar, not by name); a phrase with no other occurrence stays as is.

    >>> surface_forms(["api", "file", "react"], "File upload. Call the API. The API and React docs. the file")
    {'api': 'API', 'file': 'file', 'react': 'React'}
    """
    wanted = [p for p in dict.fromkeys(phrases) if p.strip()]
    if not wanted or not document:
        return {p: p for p in phrases}
    text = document[:limit]
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in sorted(wanted, key=len, reverse=True)) + r")(?!\w)",
        re.IGNORECASE,
    )
    written: Counter[str] = Counter()
    for match in pattern.finditer(text):
        before = text[max(0, match.start() - 3) : match.start()].rstrip(" \t\"'(*-")
        if before and before[-1] not in ".!?:\n":  # not at a sentence or line start
            written[" ".join(match.group(1).split())] += 1
    forms: dict[str, str] = {}
    for phrase in phrases:
        key = " ".join(phrase.lower().split())
        seen = [(n, form == phrase, form) for form, n in written.items() if form.lower() == key]
        forms[phrase] = max(seen)[2] if seen else phrase
    return forms


def _title(phrases: Sequence[str]) -> str:
    """Join name phrases with " · ", capitalising the first unless it has its own casing ("iPhone").

    >>> _title(["card arrival", "delivery"]), _title(["iPhone", "battery"]), _title(["API", "JSON"])
    ('Card arrival · delivery', 'iPhone · battery', 'API · JSON')
    """
    if not phrases:
        return ""
    head = phrases[0]
    first = head[:1].upper() + head[1:] if head == head.lower() else head
    return " · ".join([first, *phrases[1:]])


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


class KeyphraseNamer:
    """Offline topic namer (protocols.TopicNamer): c-TF-IDF + MMR keyphrases and a central request.

    Args:
        embedder: any protocols.Embedder (used to embed candidate phrases).
        top_n: keyphrases kept per topic.
        candidates: c-TF-IDF candidates per topic that MMR chooses from.
        diversity: MMR trade-off (0 = most relevant only, 1 = most diverse).

    ``name_topics(drafts, corpus) -> list[TopicName]`` in draft order; names are unique within
    the call, so pass all siblings (or a whole level) in one call.
    """

    name = "keyphrases"

    def __init__(self, embedder: Any, top_n: int = 5, candidates: int = 12, diversity: float = 0.3) -> None:
        self.embedder = embedder
        self.top_n = top_n
        self.candidates = candidates
        self.diversity = diversity
        self._phrase_vectors: dict[str, np.ndarray] = {}

    # -- pieces ---------------------------------------------------------------------------
    def _member_sample(self, draft: TopicDraft, corpus: Corpus) -> np.ndarray:
        members = np.asarray(draft.member_index, dtype=np.int64)
        if len(members) <= MAX_DOCS_PER_TOPIC:
            return members
        similarity = corpus.embeddings[members] @ np.asarray(draft.centroid, dtype=np.float32)
        ranked = members[np.argsort(-similarity, kind="stable")]
        picks = np.unique(np.linspace(0, len(ranked) - 1, MAX_DOCS_PER_TOPIC).astype(np.int64))
        return ranked[picks]

    def _topic_documents(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[str]:
        documents = []
        for draft in drafts:
            parts = [corpus.texts[i][:MAX_CHARS_PER_DOC] for i in self._member_sample(draft, corpus)]
            documents.append("\n".join(p for p in parts if p))
        return documents

    def _candidates(self, documents: list[str]) -> list[list[tuple[str, float]]]:
        from sklearn.feature_extraction.text import CountVectorizer

        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        vectorizer = CountVectorizer(
            stop_words=sorted(ENGLISH_STOP_WORDS | CHAT_STOP_WORDS),
            ngram_range=(1, 2),
            token_pattern=r"(?u)\b[^\W\d_][\w\-\+\#\.]*[\w\+\#]|\b[^\W\d_]{2,}\b",
            lowercase=True,
        )
        try:
            counts = vectorizer.fit_transform(documents)
        except ValueError:  # empty vocabulary: only stop words, numbers or empty texts
            return [[] for _ in documents]
        terms = vectorizer.get_feature_names_out()
        # Stay sparse: topics x (uni+bigram vocabulary) is hundreds of thousands of columns on
        # large inputs, and dense copies of it cost gigabytes.
        counts = counts.tocsr().astype(np.float64)
        counts.sort_indices()
        weights = sparse_class_tfidf(counts)
        common = corpus_wide_terms(terms, counts)
        column = {w: vectorizer.vocabulary_[w] for w in common}
        topic_words = np.clip(np.asarray(counts.sum(axis=1)).ravel(), 1, None)
        corpus_rate = {w: float(counts[:, j].sum()) / max(float(counts.sum()), 1.0) for w, j in column.items()}
        out = []
        for row in range(len(documents)):
            # a corpus-wide word still names a topic where it is far more frequent than elsewhere
            banned = {
                w for w, j in column.items()
                if counts[row, j] / topic_words[row] / max(corpus_rate[w], 1e-12) < CHARACTERISTIC_LIFT
            }
            start, stop = weights.indptr[row], weights.indptr[row + 1]
            cols, values = weights.indices[start:stop], weights.data[start:stop]
            row_counts = dict(zip(counts.indices[counts.indptr[row]:counts.indptr[row + 1]],
                                  counts.data[counts.indptr[row]:counts.indptr[row + 1]]))
            order = np.argsort(-values, kind="stable")  # ties: lower column first, as in the dense form
            picked = []
            for k in order:
                term = str(terms[cols[k]])
                if values[k] <= 0 or set(term.split()) & banned:
                    continue
                # a bigram seen once is noise; keep it only if it repeats
                if " " in term and row_counts.get(cols[k], 0) <= 1:
                    continue
                picked.append((term, float(values[k])))
                if len(picked) == self.candidates:
                    break
            out.append(picked)
        return out

    def _embed_phrases(self, phrases: Sequence[str]) -> np.ndarray:
        missing = sorted({p for p in phrases if p not in self._phrase_vectors})
        if missing:
            vectors = np.asarray(self.embedder.embed(missing), dtype=np.float32)
            for phrase, vector in zip(missing, vectors):
                self._phrase_vectors[phrase] = vector
        dim = int(getattr(self.embedder, "dim", 0)) or 1
        if not phrases:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([self._phrase_vectors[p] for p in phrases])

    def _pick_keyphrases(self, candidates: list[tuple[str, float]], centroid: np.ndarray) -> list[str]:
        if not candidates:
            return []
        phrases = [p for p, _ in candidates]
        vectors = self._embed_phrases(phrases)
        centroid = np.asarray(centroid, dtype=np.float32)
        norm = float(np.linalg.norm(centroid))
        if norm > 0 and vectors.shape[1] == centroid.shape[0]:
            similarity = vectors @ (centroid / norm)
        else:  # corpus embedded by another model than the namer's: rank by c-TF-IDF alone
            similarity = np.zeros(len(phrases), dtype=np.float32)
        weights = np.array([w for _, w in candidates], dtype=np.float64)
        weights = weights / weights.max() if weights.max() > 0 else weights
        relevance = 0.5 * similarity + 0.5 * weights
        order = mmr(relevance, vectors, top_n=len(phrases), diversity=self.diversity)
        kept: list[str] = []
        for i in order:
            words = _words(phrases[i])
            if any(words & _words(k) for k in kept):
                continue  # "cards" or "card payment" next to "card arrival" says little new
            kept.append(phrases[i])
            if len(kept) == self.top_n:
                break
        return kept

    @staticmethod
    def _central_request(draft: TopicDraft, corpus: Corpus) -> str | None:
        members = np.asarray(draft.member_index, dtype=np.int64)
        if len(members) == 0:
            return None
        requests = corpus.requests if corpus.requests else corpus.texts
        with_request = np.array([i for i in members if i < len(requests) and str(requests[i]).strip()], dtype=np.int64)
        if len(with_request) == 0:
            return None
        centroid = np.asarray(draft.centroid, dtype=np.float32)
        similarity = corpus.embeddings[with_request] @ centroid
        best = int(with_request[int(np.argmax(similarity))])
        return str(requests[best])

    # -- protocol -------------------------------------------------------------------------
    def name_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        """Name each draft: (drafts, corpus) -> [TopicName] in draft order, names unique in the call."""
        if not drafts:
            return []
        documents = self._topic_documents(drafts, corpus)
        candidate_lists = self._candidates(documents)
        for draft, candidates in zip(drafts, candidate_lists):
            known = {p for p, _ in candidates}
            top_weight = max((w for _, w in candidates), default=1.0)
            for child in draft.children:  # a parent may reuse its children's keyphrases
                for phrase in (p.lower() for p in child.keyphrases[:2]):
                    if phrase not in known:
                        candidates.append((phrase, 0.5 * top_weight))
                        known.add(phrase)
        all_phrases = sorted({p for candidates in candidate_lists for p, _ in candidates})
        self._embed_phrases(all_phrases)  # one batched call for every topic

        results: list[TopicName] = []
        for draft, candidates, document in zip(drafts, candidate_lists, documents):
            keyphrases = self._pick_keyphrases(candidates, draft.centroid)
            written = surface_forms(keyphrases, document)
            keyphrases = [written[p] for p in keyphrases]
            request = self._central_request(draft, corpus)
            example = _clip(request, MAX_REQUEST_CHARS) if request else None
            if keyphrases:
                name = _title(keyphrases[:NAME_PHRASES])
                about = _join(keyphrases[:DESCRIPTION_PHRASES])
                description = f"Conversations about {about}"
            elif example:
                name = _clip(example, 48)
                description = "Conversations like this one"
            else:
                name = "Empty conversations"
                description = "Conversations with no text to describe"
            if example and keyphrases:
                description += f', such as "{example}".'
            elif example:
                description += f': "{example}".'
            else:
                description += "."
            results.append(
                TopicName(name=name, description=description, keyphrases=keyphrases, representative_request=request)
            )
        unique = deduplicate_names([r.name for r in results], [r.keyphrases[NAME_PHRASES:] for r in results])
        for result, name in zip(results, unique):
            result.name = name
        return results
