"""Name topics without an LLM: a short phrase many members share, chosen against the other topics.

For each draft (a group of conversations), ``KeyphraseNamer``:

1. redacts personal data (``kiku.privacy.redact``: e-mails, phones, cards, IPs, keys) from the
   members' texts, before anything else reads them;
2. mines phrases of 1-4 words from the members (``phrase_ngrams``): runs of plain words inside
   one clause, never starting or ending on a stop word; code tokens, ids, numbers, file names,
   URLs and placeholders break a run and are never part of a phrase; names of people written
   as such ("Dear Anna", "my name is ...", "Mr Smith") are left out (``person_names``);
3. scores them with BERTopic's class-based TF-IDF over the number of members holding each
   phrase, keeps corpus-wide words (the product's own name) out (``corpus_wide_terms``), and
   ranks the best candidates by ``score_phrases``: close to this topic's centroid, farther from
   the other topics' centroids, shared by many members, 2-4 words preferred;
4. names the topic with its best phrase ("Card arrival", "Top up by bank transfer"), unique
   across the drafts of one call (each topic takes its best phrase no better-scoring topic
   took), and keeps a few more keyphrases by MMR for the description;
5. calls a topic "Mixed: a, b, c" when it is incoherent (``coherence``: its members are hardly
   closer to their centroid than the whole corpus is to its own) or no phrase is shared by
   enough of its members, rather than naming it after one part;
6. names a topic whose members mostly only greet, thank, say goodbye, agree or decline after
   what they do ("Thanks and goodbyes", "Agreement", ``topic_pleasantries``): those words are stop
   words everywhere else, so such a topic would otherwise be named after its filler ("Perfect",
   "Mixed: day, helpful", "Mixed: yep, correct, absolutely");
7. picks the opening request of the member closest to the centroid (redacted) as the example.

A parent draft (from the hierarchy) is named from what its children share, against its sibling
parents: its candidates are the phrases of its children's names and keyphrases ("card" under
"Card arrival", "Activate my card" and "Card expiring"), each covering the share of the parent's
members whose child's name holds it, plus the c-TF-IDF phrases most children's members hold; it
is "Mixed: ..." only when its members are incoherent (relative coherence as above) or its
children share nothing (no phrase held by two of them), never two children's names glued.

Fidelity of the names to labelled data (``name_fidelity``) is measured by
benchmarks/names_fidelity.py and guarded by tests/test_quality.py.

Example:
    >>> namer = KeyphraseNamer(MiniLMEmbedder())              # doctest: +SKIP
    >>> namer.name_topics(drafts, corpus)[0].name             # doctest: +SKIP
    'Card arrival'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from kiku.privacy import redact
from kiku.protocols import Corpus, TopicDraft, TopicName
from kiku.records import Cluster
from kiku.vectors import evenly_spaced

MAX_DOCS_PER_TOPIC = 600
MAX_CHARS_PER_DOC = 1_500
DESCRIPTION_PHRASES = 3
MAX_REQUEST_CHARS = 160
MAX_PHRASE_WORDS = 4
MIXED_PREFIX = "Mixed: "

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

#: Words of sklearn's English stop list that do name topics ("top up", "operating system", "bill").
CONTENT_WORDS = frozenset(
    """
    amount bill bottom call cry describe detail empty fill find fire front full interest keep
    mill move name part put serious show side system take thick thin top
    """.split()
)

#: Particles that may end a phrase after a content word ("top up", "cash out", "log off").
PHRASE_END_PARTICLES = frozenset({"up", "out", "off", "back", "down"})


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """sklearn's English stop words plus chat filler, minus words that name topics (built once).

    >>> sw = stop_words(); ("the" in sw, "thanks" in sw, "top" in sw, "system" in sw)
    (True, True, False, False)
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset((ENGLISH_STOP_WORDS - CONTENT_WORDS) | CHAT_STOP_WORDS)


def class_idf(words_per_topic: np.ndarray, term_freq: np.ndarray) -> np.ndarray:
    """The c-TF-IDF term weight ``log(1 + A / f(t))`` (A = mean words per topic; no topics: A = 0).

    The one formula behind :func:`class_tfidf` (dense) and :func:`sparse_class_tfidf`.

    >>> np.round(class_idf(np.array([2.0, 2.0]), np.array([3.0, 1.0])), 3).tolist()
    [0.511, 1.099]
    """
    words = np.asarray(words_per_topic, dtype=np.float64)
    average = float(words.mean()) if words.size else 0.0
    return np.log(1.0 + average / np.clip(np.asarray(term_freq, dtype=np.float64), 1e-12, None))


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
    idf = class_idf(words_per_topic, term_freq) if matrix.size else class_idf(np.zeros(0), term_freq)
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
    idf = class_idf(words_per_topic, term_freq)
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


#: A word outside the English vocabulary held by at least this share of all members names the corpus.
CORPUS_NAME_SHARE = 0.15


#: With fewer topics than this, "found in 40% of the topics" says nothing (two of five): see everywhere_terms.
CORPUS_WIDE_MIN_TOPICS = 8


def everywhere_terms(terms: Sequence[str], counts: Any, members: int, share: float = CORPUS_NAME_SHARE) -> set[str]:
    """Single words found in every topic and held by at least ``share`` of all ``members`` ("said", "people").

    The few-topic counterpart of ``corpus_wide_terms``; ``counts`` is topics x terms.

    >>> sorted(everywhere_terms(["said", "film", "said film"], np.array([[9, 9, 1], [8, 0, 0]]), 40))
    ['said']
    """
    if members <= 0 or counts.shape[0] < 2:
        return set()
    present = np.asarray((counts > 0).sum(axis=0)).ravel() == counts.shape[0]
    held = np.asarray(counts.sum(axis=0)).ravel() / members
    return {str(t) for t, p, h in zip(terms, present, held) if p and " " not in str(t) and h >= share}


@lru_cache(maxsize=1)
def english_vocabulary() -> frozenset[str]:
    """Whole lowercase words of the MiniLM (BERT uncased) vocabulary shipped with kiku: ~20k English words.

    >>> vocabulary = english_vocabulary(); ("card" in vocabulary, "wandb" in vocabulary)
    (True, False)
    """
    import json
    from importlib import resources

    path = resources.files("kiku") / "assets" / "minilm" / "tokenizer.json"
    vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


def written_forms(word: str, text: str, limit: int = 300_000) -> Counter[str]:
    """How often each casing of ``word`` appears inside sentences of ``text`` (sentence starts not counted).

    >>> sorted(written_forms("wandb", "Use wandb. I like WandB and Wandb").items())
    [('WandB', 1), ('Wandb', 1), ('wandb', 1)]
    """
    forms: Counter[str] = Counter()
    chunk = text[:limit]
    for match in re.finditer(r"(?<!\w)" + re.escape(word) + r"(?!\w)", chunk, re.IGNORECASE):
        before = chunk[max(0, match.start() - 3) : match.start()].rstrip(" \t\"'(*-")
        if before and before[-1] not in ".!?:\n":
            forms[match.group(0)] += 1
    return forms


def corpus_names(terms: Sequence[str], counts: Any, members: int, text: str = "", share: float = CORPUS_NAME_SHARE) -> set[str]:
    """Words held by at least ``share`` of all ``members`` that are written as names: the product's own name.

    A frequent word is a name when ``text`` mostly writes it capitalised inside sentences
    ("Weights & Biases"; acronyms such as "API" are not names), or it is not in ``english_vocabulary`` and is written in several
    casings ("wandb", "WandB", "Wandb"). ``counts`` is topics x terms, how many members hold
    each term. However the topics fall (a clusterer may put every "wandb ..." question
    together), the corpus' own name never names a topic.

    >>> text = "use Weights & Biases or wandb, a sweep in WandB"
    >>> sorted(corpus_names(["wandb", "weights", "sweep"], np.array([[9, 9, 9], [8, 8, 2]]), 40, text))
    ['wandb', 'weights']
    """
    if members <= 0 or not text:
        return set()
    held = np.asarray(counts.sum(axis=0)).ravel() / members
    vocabulary = english_vocabulary()
    names = set()
    for word in (str(t) for t, h in zip(terms, held) if " " not in str(t) and h >= share):
        forms = written_forms(word, text)
        if not forms:
            continue
        top = forms.most_common(1)[0][0]
        titled = top[:1].isupper() and not top.isupper()  # "Weights", not an acronym ("API", "PIN")
        if titled or (word not in vocabulary and len(forms) >= 2):
            names.add(word)
    return names


#: Titles before a person's name: capitalised inside every sentence, yet never the corpus' own name.
HONORIFICS = frozenset("mr mrs ms miss dr prof sir madam dear".split())
#: Texts ``corpus_name_words`` reads (an even sample of a larger corpus).
CORPUS_NAME_SAMPLE = 5_000


def corpus_name_words(texts: Sequence[str], share: float = CORPUS_NAME_SHARE, limit: int = 5) -> list[str]:
    """The words of the corpus' own name ("wandb", "weights", "biases"), most held first.

    A word is one when at least ``share`` of the texts hold it and ``corpus_names`` finds it
    written as a name (capitalised inside sentences, or outside the English vocabulary in
    several casings). Stop words, contractions, one-letter words, titles (``HONORIFICS``:
    "Mr") and people's names (``person_names``: "Mr Smith") never are. At most ``limit`` words; an even sample of ``CORPUS_NAME_SAMPLE`` texts is read.

    >>> corpus_name_words(["Sweeps in wandb", "Tables in Weights & Biases", "log with WandB", "so Weights & Biases"])
    ['biases', 'wandb', 'weights']
    """
    if not texts:
        return []
    sample = [str(texts[int(i)])[:MAX_CHARS_PER_DOC] for i in evenly_spaced(len(texts), CORPUS_NAME_SAMPLE)]
    held: Counter[str] = Counter()
    for text in sample:
        held.update({w.lower() for run in word_runs(text) for w in run if len(w) > 1 and not _CONTRACTION.search(w)})
    common = stop_words() | HONORIFICS | person_names(sample)
    terms = sorted(t for t, n in held.items() if n >= share * len(sample) and t not in common)
    if not terms:
        return []
    counts = np.array([[held[t] for t in terms]], dtype=np.float64)
    names = corpus_names(terms, counts, len(sample), "\n".join(sample), share)
    return sorted(names, key=lambda t: (-held[t], t))[:limit]


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


def deduplicate_names(
    names: Sequence[str], alternatives: Sequence[Sequence[str]] | None = None, key: Callable[[str], str] = str.casefold
) -> list[str]:
    """Make names unique: a repeated name gets the topic's next distinctive keyphrase, then a number.

    ``alternatives[i]`` lists extra keyphrases of topic i (in preference order) that may be
    added in brackets to tell it apart. Every colliding topic is extended (a few rounds at
    most); what still collides gets " (2)", " (3)"... Names are compared by ``key`` (default:
    ignoring case; the LLM namer also ignores punctuation). The one home for unique names.

    >>> deduplicate_names(["Card fee", "Card fee", "Refund"], [["abroad"], ["atm"], []])
    ['Card fee (abroad)', 'Card fee (atm)', 'Refund']
    >>> deduplicate_names(["Refund", "Refund", "Refund"])
    ['Refund', 'Refund (2)', 'Refund (3)']
    """
    bases = list(names)
    alternatives = [list(a) for a in alternatives] if alternatives is not None else [[] for _ in names]
    extras: list[list[str]] = [[] for _ in bases]
    used_extra = [0] * len(bases)

    def render(i: int) -> str:
        return f"{bases[i]} ({', '.join(extras[i])})" if extras[i] else bases[i]

    result = [render(i) for i in range(len(bases))]
    for _ in range(4):  # extend colliding names with their next keyphrase, a few rounds at most
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(result):
            groups.setdefault(key(name), []).append(i)
        collisions = [g for g in groups.values() if len(g) > 1]
        if not collisions:
            return result
        changed = False
        for group in collisions:
            for i in group:
                options = alternatives[i] if i < len(alternatives) else []
                while used_extra[i] < len(options):
                    extra = options[used_extra[i]]
                    used_extra[i] += 1
                    if key(extra) not in key(result[i]):
                        extras[i].append(extra)
                        result[i] = render(i)
                        changed = True
                        break
        if not changed:
            break
    seen: dict[str, int] = {}
    final = []
    for name in result:
        folded = key(name)
        seen[folded] = seen.get(folded, 0) + 1
        final.append(name if seen[folded] == 1 else f"{name} ({seen[folded]})")
    # a suffixed name could itself collide with a real name; resolve by further numbering
    taken: set[str] = set()
    for i, name in enumerate(final):
        candidate, number = name, 2
        while key(candidate) in taken:
            candidate = f"{name} ({number})"
            number += 1
        final[i] = candidate
        taken.add(key(candidate))
    return final


def unique_sibling_names(clusters: Sequence[Cluster]) -> None:
    """Rename in place so that siblings (same level and parent) never share a name (:func:`deduplicate_names`).

    >>> from kiku.records import Cluster
    >>> family = [Cluster(id=str(i), level=0, name=n) for i, n in enumerate(["Refund", "refund", "Top-up"])]
    >>> unique_sibling_names(family); [c.name for c in family]
    ['Refund', 'refund (2)', 'Top-up']
    """
    families: dict[tuple[int, str | None], list[Cluster]] = {}
    for cluster in clusters:
        families.setdefault((cluster.level, cluster.parent_id), []).append(cluster)
    for family in families.values():
        for cluster, name in zip(family, deduplicate_names([c.name for c in family]), strict=True):
            cluster.name = name


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return (cut or text[: limit - 1]) + "…"


#: Characters of a topic's document scanned for the written forms of its keyphrases.
SURFACE_SCAN_CHARS = 300_000


def _mid_sentence_forms(phrases: Sequence[str], text: str) -> Counter[str]:
    """How often each written form of ``phrases`` appears in ``text`` away from a sentence or line start."""
    pattern = re.compile(
        r"(?<!\w)(" + "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in sorted(phrases, key=len, reverse=True)) + r")(?!\w)",
        re.IGNORECASE,
    )
    written: Counter[str] = Counter()
    for match in pattern.finditer(text):
        before = text[max(0, match.start() - 3) : match.start()].rstrip(" \t\"'(*-")
        if before and before[-1] not in ".!?:\n":  # not at a sentence or line start
            written[" ".join(match.group(1).split())] += 1
    return written


def _usual_form(phrase: str, written: Counter[str]) -> str | None:
    """The most frequent written form of ``phrase`` in ``written`` (its own spelling wins ties), None if unseen."""
    key = " ".join(phrase.lower().split())
    seen = [(n, form == phrase, form) for form, n in written.items() if form.lower() == key]
    return max(seen)[2] if seen else None


def surface_forms(phrases: Sequence[str], document: str, limit: int = SURFACE_SCAN_CHARS) -> dict[str, str]:
    """How each (lowercased) keyphrase is usually written in ``document``: "api" -> "API".

    Keyphrases are scored in lowercase; names read better in the users' own spelling ("AI",
    "C++", "React", "iPhone"). Occurrences at the start of a sentence or line are not counted
    (capitalised there by grammar, not by name). A phrase of several words found only there (a
    headline, an opening request) takes the usual form of those of its words usually written as
    acronyms or with inner capitals ("hp ink" -> "HP ink"); otherwise it stays as it is.

    >>> surface_forms(["api", "file", "react"], "File upload. Call the API. The API and React docs. the file")
    {'api': 'API', 'file': 'file', 'react': 'React'}
    >>> surface_forms(["hp ink cartridges", "frank herbert"], "HP ink cartridges cost more. On HP and its ink cartridges, by Frank")
    {'hp ink cartridges': 'HP ink cartridges', 'frank herbert': 'frank herbert'}
    """
    wanted = [p for p in dict.fromkeys(phrases) if p.strip()]
    if not wanted or not document:
        return {p: p for p in phrases}
    text = document[:limit]
    written = _mid_sentence_forms(wanted, text)
    forms = {p: _usual_form(p, written) for p in phrases}
    unseen = [p for p, form in forms.items() if form is None and len(p.split()) > 1]
    if unseen:
        word_written = _mid_sentence_forms(sorted({w for p in unseen for w in p.split()}), text)
        for phrase in unseen:
            # only acronyms and inner capitals ("HP", "iOS"): a capitalised first name beside a lowercase
            # surname ("Frank herbert") reads worse than the phrase as it is
            words = [_usual_form(w, word_written) or w for w in phrase.split()]
            forms[phrase] = " ".join(f if f not in (w, w.capitalize()) else w for f, w in zip(words, phrase.split()))
    return {p: form or p for p, form in forms.items()}


def capitalise(phrase: str) -> str:
    """Capitalise a phrase's first letter unless it has its own casing ("iPhone", "API").

    >>> capitalise("card arrival"), capitalise("iPhone battery"), capitalise("API keys")
    ('Card arrival', 'iPhone battery', 'API keys')
    """
    head = phrase.split(" ", 1)[0]
    return phrase[:1].upper() + phrase[1:] if head == head.lower() else phrase


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


# -- phrases: plain words only -------------------------------------------------------------------

#: A plain word: letters (inner ' or -), optionally a short version number ("GPT-4", "YOLOv5", "S3"),
#: or a letter with + or # ("C++", "C#").
_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*[A-Za-z](?:-?\d{1,2})?|[A-Za-z][+#]{0,2}|[A-Za-z]\d{1,2}")
_OPENING = "\"'“‘(*[`<«"
_CLOSING = "\"'”’)*]`>»"
_CLAUSE_END = ",.;:!?"
_CONTRACTION = re.compile(r"['’](?:t|re|ve|ll|d|m)$")
_POSSESSIVE = re.compile(r"['’]s$")
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CARD|IP|API_KEY)\]")


def is_plain_word(token: str) -> bool:
    """True for a word a person would say; False for code, ids, hex, numbers, paths, URLs.

    camelCase starting in lowercase ("getElementById", "numpyArray") and hex-like runs count as
    code; product casing ("iPhone", "LangChain", "YouTube", "GPT-4") is kept.

    >>> [is_plain_word(t) for t in ["refund", "iPhone", "LangChain", "GPT-4", "C++", "top-up"]]
    [True, True, True, True, True, True]
    >>> [is_plain_word(t) for t in ["df_train", "wandb.init", "getElementById", "3f9a2c7e", "1234", "main.py", "http://x.io"]]
    [False, False, False, False, False, False, False]
    """
    if len(token) > 30 or not _PLAIN_WORD.fullmatch(token):
        return False
    if re.match(r"[a-z]{2,}[A-Z]", token) or len(re.findall(r"[a-z][A-Z]", token)) >= 2:
        return False  # camelCase identifier
    if len(token) >= 8 and re.fullmatch(r"[0-9a-fA-F]+", token):
        return False
    return True


def word_runs(text: str) -> list[list[str]]:
    """Runs of plain words (as written) inside one clause: punctuation and code tokens end a run.

    >>> word_runs("How do I top up my card? Use wandb.init(project=x) then log, please")
    [['How', 'do', 'I', 'top', 'up', 'my', 'card'], ['Use'], ['then', 'log'], ['please']]
    """
    runs: list[list[str]] = []
    current: list[str] = []
    for raw in _PLACEHOLDER.sub(" | ", text).split():
        core = raw.lstrip(_OPENING)
        stripped = core.rstrip(_CLOSING + _CLAUSE_END)
        ends_clause = any(c in _CLAUSE_END + ")" for c in core[len(stripped):]) or raw[:1] in "(["
        if raw[:1] in "([" and current:  # an opening bracket starts a new clause
            runs.append(current)
            current = []
        stripped = _POSSESSIVE.sub("", stripped)
        if stripped and is_plain_word(stripped):
            current.append(stripped)
            if ends_clause and core[len(stripped):]:
                runs.append(current)
                current = []
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def phrase_ngrams(text: str, stop: frozenset[str], banned: frozenset[str] = frozenset(), max_words: int = MAX_PHRASE_WORDS) -> list[str]:
    """The distinct lowercase phrases of 1..max_words words in ``text`` that could name a topic.

    A phrase lies inside one run of plain words (``word_runs``), starts on a content word, ends
    on a content word or a particle ("top up"), holds at most one inner stop word and no
    ``banned`` word (person names), contraction or bare "be" ("LangChain be used" is a fragment).

    >>> sorted(phrase_ngrams("When will my new card arrive? Top up failed.", stop_words()))
    ['arrive', 'card', 'card arrive', 'failed', 'new', 'new card', 'new card arrive', 'top', 'top up', 'top up failed']
    """
    found: set[str] = set()
    for run in word_runs(text):
        words = [w.lower() for w in run]
        for i, first in enumerate(words):
            if first in stop or first in banned or len(first) == 1 or _CONTRACTION.search(first):
                continue
            inner_stops = 0
            for j in range(i, min(len(words), i + max_words)):
                word = words[j]
                if word in banned:
                    break
                if _CONTRACTION.search(word) or word == "be":  # "didn't", "I'm", "you've": never part of a name,
                    break  # nor a bare "be" that lost its modal ("LangChain be used")
                if j > i and (word in stop or len(word) == 1):
                    if word in PHRASE_END_PARTICLES and words[j - 1] not in stop:
                        found.add(" ".join(words[i : j + 1]))
                    inner_stops += 1
                    if inner_stops > 1:
                        break
                    continue
                found.add(" ".join(words[i : j + 1]))
    return sorted(found)


_PERSON_CUE = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam|Dear)\.?\s+|\b[Mm]y name is\s+|\b(?:Sincerely|Regards|Best|Cheers|Thanks),?\s*\n\s*)"
    r"([A-Z][a-z]{1,20})(?:\s+([A-Z][a-z]{1,20}))?"
)


def person_names(texts: Sequence[str]) -> frozenset[str]:
    """Lowercase names of people as the texts introduce them: after Mr/Ms/Dr/Dear, "my name is", a sign-off.

    Offline and without a name list, this catches how private people appear in support logs and
    letters; it does not recognise every name.

    >>> sorted(person_names(["Dear Anna Smith, my refund...", "My name is Tom and my card broke", "Regards,\\nJulia"]))
    ['anna', 'julia', 'smith', 'tom']
    """
    names: set[str] = set()
    for text in texts:
        for match in _PERSON_CUE.finditer(text):
            names.update(g.lower() for g in match.groups() if g)
    return frozenset(names)


def hide_names(text: str | None, names: frozenset[str]) -> str | None:
    """Replace the given (lowercase) person names in ``text`` with "[NAME]".

    >>> hide_names("Dear Anna Smith, my card", frozenset({"anna", "smith"}))
    'Dear [NAME] [NAME], my card'
    """
    if not text or not names:
        return text
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE)
    return pattern.sub("[NAME]", text)


#: Pleasantries (``topic_pleasantries``): what each kind's words are, in the order a name lists them.
PLEASANTRY_KINDS: dict[str, re.Pattern[str]] = {
    "Greetings": re.compile(r"\b(?:hello|hi|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening))\b(?!-)"),
    "Thanks": re.compile(r"\b(?:thanks?|thank you|thankyou|thanx|thnx|thx|cheers|grateful|much appreciated|appreciate it)\b"),
    "Goodbyes": re.compile(r"\b(?:bye|goodbye|good - bye|good-bye|farewell|see (?:you|ya)|good ?night|take care(?! of)|cya)\b"),
}
#: Bare replies, counted only in a text that holds no pleasantry ("No, that's all, thanks" closes a
#: chat; it does not decline anything), asks nothing (no "?": "is that right?") and, for
#: agreement, negates nothing ("absolutely not", "I don't think that's right").
REPLY_KINDS: dict[str, re.Pattern[str]] = {
    "Agreement": re.compile(r"\b(?:yes|yeah|yep|yup|sure|absolutely|definitely|certainly|exactly|indeed|affirmative|ok|okay"
                            r"|of course|sounds good|(?:correct|right)(?!\s+(?:it|this|that|the|my|me|now|away|here)\b))\b"),
    "Refusals": re.compile(r"\b(?:no|nope|nah|not really|not correct|not right|negative|never ?mind|no way|wrong|incorrect"
                           r"|(?:absolutely|definitely|certainly|of course) not)\b"),
}
_NEGATION = re.compile(r"\b(?:not|never|no)\b|n['’]t\b")
#: Courtesy that is not a subject: single words, and phrases removed before the words are counted.
COURTESY_WORDS = frozenset("alright appreciate assistance awesome brilliant cool excellent fantastic glad helped helpful helping kindly lovely nice perfect super welcome wonderful".split())
COURTESY_PHRASES = re.compile(
    r"\b(?:have an? (?:nice|good|great|wonderful|lovely) (?:day|evening|night|one|weekend|time)|(?:for|of) (?:all )?(?:your|the) (?:help|time|assistance)"
    r"|all (?:i|we) (?:need|needed)|all set|for today|for now)\b"
)
#: Words that make a pleasantry a request ("Thank you. May I have the address?").
REQUEST_WORDS = frozenset("what how why when where which who can could may might would need looking want tell give find book show explain".split())
#: A member is a pleasantry when it holds one and at most this many other words that are neither
#: stop words nor courtesy, and no request word ("No, that's all for today. Thanks, bye!": none;
#: "Thanks, my card never arrived": two, a report). Bare replies allow none (REPLY_MAX_CONTENT).
PLEASANTRY_MAX_CONTENT = 1
REPLY_MAX_CONTENT = 0
#: A topic is named by its pleasantries when at least this share of its members are pleasantries;
#: a kind is in the name when at least PLEASANTRY_KIND_SHARE of those members hold it.
PLEASANTRY_SHARE = 0.6
PLEASANTRY_KIND_SHARE = 0.35
#: What a description says the request of a member of each kind does.
KIND_VERBS = {"Greetings": "greets", "Thanks": "thanks", "Goodbyes": "says goodbye", "Agreement": "agrees", "Refusals": "declines"}


def pleasantry_kinds(text: str, stop: frozenset[str]) -> list[str]:
    """The kinds of pleasantry or bare reply (``PLEASANTRY_KINDS``, else ``REPLY_KINDS``) that
    ``text`` is made of, or [] when it says more than that.

    >>> sw = stop_words()
    >>> pleasantry_kinds("No, that's all for today. Thank you so much, goodbye!", sw)
    ['Thanks', 'Goodbyes']
    >>> pleasantry_kinds("Yes, that's right", sw), pleasantry_kinds("nope, not really", sw), pleasantry_kinds("absolutely not", sw)
    (['Agreement'], ['Refusals'], ['Refusals'])
    >>> [pleasantry_kinds(t, sw) for t in ("I'm not sure", "is that right?", "Thank you. May I have the address?", "hi-fi")]
    [[], [], [], []]
    """
    lowered = COURTESY_PHRASES.sub(" ", text.lower())
    kinds = [kind for kind, pattern in PLEASANTRY_KINDS.items() if pattern.search(lowered)]
    patterns, allowed = list(PLEASANTRY_KINDS.values()), PLEASANTRY_MAX_CONTENT
    if not kinds and "?" not in lowered:
        kinds = [kind for kind, pattern in REPLY_KINDS.items() if pattern.search(lowered)]
        if "Agreement" in kinds and _NEGATION.search(REPLY_KINDS["Refusals"].sub(" ", lowered)):
            kinds.remove("Agreement")  # "I don't think that's right": not agreement
        if "Refusals" in kinds and "Agreement" in kinds:
            kinds.remove("Agreement")  # "yes, that's not right"
        patterns, allowed = list(REPLY_KINDS.values()), REPLY_MAX_CONTENT
    if not kinds:
        return []
    rest = lowered
    for pattern in patterns:
        rest = pattern.sub(" ", rest)
    words = [w.strip("'’") for w in re.findall(r"[a-z][a-z'’]*", rest)]
    if REQUEST_WORDS.intersection(words):
        return []
    content = [w for w in words if len(w) > 1 and w not in COURTESY_WORDS and re.split("['’]", w)[0] not in stop]
    if content and "?" in rest:
        return []  # "thanks, weather?": a question
    return kinds if len(content) <= allowed else []


def topic_pleasantries(texts: Sequence[str], stop: frozenset[str] | None = None) -> list[str]:
    """The kinds (``PLEASANTRY_KINDS``, ``REPLY_KINDS``, in that order) a topic's members are
    made of when at least ``PLEASANTRY_SHARE`` of ``texts`` only greet, thank, say goodbye, agree
    or decline; else [].

    >>> topic_pleasantries(["Thank you, goodbye", "Thanks so much, bye!", "That's all, thanks.", "cheers"])
    ['Thanks', 'Goodbyes']
    >>> topic_pleasantries(["Thanks, my card never arrived", "card still not here", "hello", "hi, card?"])
    []
    """
    if not texts:
        return []
    stop = stop_words() if stop is None else stop
    polite = [kinds for kinds in (pleasantry_kinds(text, stop) for text in texts) if kinds]
    if len(polite) < PLEASANTRY_SHARE * len(texts):
        return []
    return [kind for kind in [*PLEASANTRY_KINDS, *REPLY_KINDS] if sum(kind in k for k in polite) >= PLEASANTRY_KIND_SHARE * len(polite)]


def pleasantry_name(kinds: Sequence[str]) -> str:
    """A topic's name from its pleasantry kinds (``topic_pleasantries``).

    >>> pleasantry_name(["Thanks", "Goodbyes"]), pleasantry_name(["Greetings", "Thanks", "Goodbyes"])
    ('Thanks and goodbyes', 'Greetings, thanks and goodbyes')
    """
    first, *others = kinds
    return first if not others else ", ".join([first, *(k.lower() for k in others[:-1])]) + f" and {others[-1].lower()}"


def pleasantry_description(kinds: Sequence[str]) -> str:
    """What the members of a pleasantry topic do: their opening requests, all the namer reads.

    >>> pleasantry_description(["Thanks", "Goodbyes"]), pleasantry_description(["Agreement"])
    ('Conversations whose request only thanks or says goodbye', 'Conversations whose request only agrees')
    """
    verbs = [KIND_VERBS[kind] for kind in kinds]
    listed = verbs[0] if len(verbs) == 1 else ", ".join(verbs[:-1]) + f" or {verbs[-1]}"
    return f"Conversations whose request only {listed}"


def coherence(vectors: np.ndarray) -> float:
    """Mean cosine of unit vectors to their own (unit) centroid: the length of their mean.

    1.0 when all members are the same, near 0 for unrelated directions.

    >>> round(coherence(np.array([[1.0, 0.0], [0.0, 1.0]])), 3), coherence(np.array([[0.6, 0.8], [0.6, 0.8]]))
    (0.707, 1.0)
    """
    if len(vectors) == 0:
        return 0.0
    return float(np.linalg.norm(np.asarray(vectors, dtype=np.float64).mean(axis=0)))


def relative_coherence(topic: float, corpus: float) -> float:
    """How much tighter a topic is than the corpus as a whole, on [.., 1]: (topic - corpus) / (1 - corpus).

    >>> round(relative_coherence(0.7, 0.4), 3), relative_coherence(0.4, 0.4)
    (0.5, 0.0)
    """
    return (topic - corpus) / max(1e-9, 1.0 - corpus)


#: Requests closest to a topic's centroid whose gists are name candidates.
GIST_REQUESTS = 8

#: Share of a child's members that must hold a phrase for the phrase to be present in that child.
CHILD_PRESENCE = 0.05

#: Topics smaller than this are never called "Mixed" (too few members to judge).
MIN_MIXED_SIZE = 4
#: Best phrase coverage taken as typical when a call has fewer than 3 topics to judge.
DEFAULT_TYPICAL_COVERAGE = 0.5
#: Below this share of members holding its best phrase, a topic is always "Mixed".
MIN_COVERAGE_FLOOR = 0.05
#: Relative coherence taken as typical when a call has too few topics to tell (one or two).
DEFAULT_TYPICAL_COHERENCE = 0.2


def typical_coherence(values: Sequence[float]) -> float:
    """The median relative coherence of a call's topics (``DEFAULT_TYPICAL_COHERENCE`` with fewer than 3).

    >>> typical_coherence([0.5, 0.6, 0.1]), typical_coherence([0.5])
    (0.5, 0.2)
    """
    if len(values) < 3:
        return DEFAULT_TYPICAL_COHERENCE
    return float(np.median(np.asarray(values, dtype=np.float64)))


@dataclass(frozen=True)
class PhraseWeights:
    """How ``score_phrases`` weighs what makes a phrase a good name (chosen over several labelled sets).

    own: cosine to the topic's centroid; contrast: that cosine minus the highest cosine to
    another topic's centroid; coverage: sqrt of the share of members holding the phrase;
    tfidf: c-TF-IDF normalised to the topic's best; multiword: bonus for 2-4 words; gist: bonus
    for the gist of one of the requests closest to the centroid (``request_gist``): a person's
    own words ("Change my PIN", "Exchange rate was wrong") rather than a keyword.
    """

    own: float = 1.0
    contrast: float = 3.0
    coverage: float = 0.3
    tfidf: float = 0.3
    multiword: float = 0.2
    gist: float = 0.4


#: A parent's name should be broad: what most children share counts most, length not at all.
PARENT_WEIGHTS = PhraseWeights(coverage=1.0, multiword=0.1, gist=0.0)


def score_phrases(
    phrase_vectors: np.ndarray,
    centroids: np.ndarray,
    topic: int,
    coverage: np.ndarray,
    tfidf: np.ndarray,
    words: np.ndarray,
    weights: PhraseWeights = PhraseWeights(),
    gist: np.ndarray | None = None,
) -> np.ndarray:
    """Score candidate phrases (m,) as names of topic ``topic`` among ``centroids`` (t, dim).

    ``phrase_vectors`` (m, dim) and ``centroids`` are unit vectors; ``coverage`` (m,) is the
    share of the topic's members holding each phrase, ``tfidf`` (m,) its c-TF-IDF weight,
    ``words`` (m,) its number of words, ``gist`` (m,) bool marks request gists. A phrase scores high when it is close to this topic,
    farther from every other topic, shared by many members and 2-4 words long.

    >>> vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> scores = score_phrases(vectors, vectors, 0, np.array([0.5, 0.5]), np.ones(2), np.array([2, 2]))
    >>> bool(scores[0] > scores[1])
    True
    """
    similarity = phrase_vectors @ centroids.T  # (m, t)
    own = similarity[:, topic]
    if centroids.shape[0] > 1:
        others = np.delete(similarity, topic, axis=1).max(axis=1)
    else:
        others = np.zeros_like(own)
    best = float(tfidf.max()) if len(tfidf) and tfidf.max() > 0 else 1.0
    multiword = ((words >= 2) & (words <= MAX_PHRASE_WORDS)).astype(np.float64)
    return (
        weights.own * own
        + weights.contrast * (own - others)
        + weights.coverage * np.sqrt(np.clip(coverage, 0.0, 1.0))
        + weights.tfidf * tfidf / best
        + weights.multiword * multiword
        + (weights.gist * np.asarray(gist, dtype=np.float64) if gist is not None else 0.0)
    )


class KeyphraseNamer:
    """Offline topic namer (protocols.TopicNamer): the phrase that best tells a topic from its siblings.

    Args:
        embedder: any protocols.Embedder (used to embed candidate phrases).
        top_n: keyphrases kept per topic (the name's phrase first).
        candidates: c-TF-IDF candidates per topic that are embedded and scored.
        diversity: MMR trade-off for the keyphrases after the name (0 = most relevant only).
        weights: how a candidate is scored as a name (``PhraseWeights``).
        parent_weights: the same for a parent (a draft with children): broader phrases that
            more of the children share (``PARENT_WEIGHTS``).
        mixed_below: a topic whose relative coherence (``relative_coherence`` of its members vs
            the whole corpus) is below this fraction of the call's typical one
            (``typical_coherence``) is named "Mixed: ...".
        min_coverage: ... as is a topic whose best-held candidate phrase is held by fewer of its
            members than this fraction of the call's median (and at least ``MIN_COVERAGE_FLOOR``;
            ``DEFAULT_TYPICAL_COVERAGE`` stands in for the median with fewer than 3 topics).

    ``name_topics(drafts, corpus) -> list[TopicName]`` in draft order; names are unique within
    the call, so pass all siblings (or a whole level) in one call. After a call,
    ``diagnostics_`` holds per draft its coherence, relative coherence and name coverage.

    Example:
        >>> namer = KeyphraseNamer(MiniLMEmbedder())                    # doctest: +SKIP
        >>> [t.name for t in namer.name_topics(drafts, corpus)]         # doctest: +SKIP
        ['Card arrival', 'Top up by bank transfer', 'Mixed: refund, exchange rate, PIN']
    """

    name = "phrases"

    def __init__(
        self,
        embedder: Any,
        top_n: int = 5,
        candidates: int = 40,
        diversity: float = 0.3,
        weights: PhraseWeights = PhraseWeights(),
        parent_weights: PhraseWeights = PARENT_WEIGHTS,
        mixed_below: float = 0.5,
        min_coverage: float = 0.4,
        gist_requests: int = GIST_REQUESTS,
    ) -> None:
        self.embedder = embedder
        self.top_n = top_n
        self.candidates = candidates
        self.diversity = diversity
        self.weights = weights
        self.parent_weights = parent_weights
        self.mixed_below = mixed_below
        self.min_coverage = min_coverage
        self.gist_requests = gist_requests
        self.diagnostics_: list[dict[str, float]] = []
        self._phrase_vectors: dict[str, np.ndarray] = {}
        self._banned: list[set[str]] = []
        self._gist_forms: dict[str, str] = {}
        self._row_matrix: Any = None
        self._corpus_names: set[str] = set()

    def fingerprint(self) -> str:
        """What shapes the names (for the run store's reuse check)."""
        return (
            f"{type(self).__qualname__}:{self.name}:{getattr(self.embedder, 'name', '')}:{self.top_n}:{self.candidates}:"
            f"{self.diversity}:{self.weights}:{self.parent_weights}:{self.mixed_below}:{self.min_coverage}:{self.gist_requests}"
        )

    # -- pieces ---------------------------------------------------------------------------
    @staticmethod
    def _member_sample(draft: TopicDraft, corpus: Corpus) -> np.ndarray:
        members = np.asarray(draft.member_index, dtype=np.int64)
        if len(members) <= MAX_DOCS_PER_TOPIC:
            return members
        similarity = corpus.embeddings[members] @ np.asarray(draft.centroid, dtype=np.float32)
        ranked = members[np.argsort(-similarity, kind="stable")]
        return ranked[evenly_spaced(len(ranked), MAX_DOCS_PER_TOPIC)]

    def _phrase_counts(self, samples: list[np.ndarray], texts: dict[int, str]) -> tuple[list[str], Any]:
        """(terms, topics x terms sparse matrix of how many sampled members hold each phrase)."""
        from scipy import sparse
        from sklearn.feature_extraction.text import CountVectorizer

        stop = stop_words()
        banned = person_names(list(texts.values()))
        rows = [int(i) for sample in samples for i in sample]
        if not rows:
            return [], sparse.csr_matrix((len(samples), 0))
        vectorizer = CountVectorizer(
            analyzer=lambda text: phrase_ngrams(text, stop, banned), binary=True, min_df=2 if len(rows) >= 200 else 1
        )
        try:
            members = vectorizer.fit_transform([texts[i] for i in rows])
        except ValueError:  # empty vocabulary: only stop words, code or empty texts
            return [], sparse.csr_matrix((len(samples), 0))
        topic_of_row = np.repeat(np.arange(len(samples)), [len(s) for s in samples])
        indicator = sparse.csr_matrix(
            (np.ones(len(rows)), (topic_of_row, np.arange(len(rows)))), shape=(len(samples), len(rows))
        )
        counts = (indicator @ members).tocsr().astype(np.float64)
        counts.sort_indices()
        self._row_matrix = members.tocsr()
        return [str(t) for t in vectorizer.get_feature_names_out()], counts

    def _candidates(self, terms: list[str], counts: Any, sizes: list[int], text: str = "") -> list[list[tuple[str, float, float]]]:
        """Per topic: (phrase, c-TF-IDF, coverage) of its best candidates, corpus-wide words left out."""
        self._banned = [set() for _ in sizes]
        self._corpus_names = set()
        if not terms:
            return [[] for _ in sizes]
        weights = sparse_class_tfidf(counts)
        common = sorted(corpus_wide_terms(terms, counts, min_topics=CORPUS_WIDE_MIN_TOPICS) | everywhere_terms(terms, counts, sum(sizes)))
        names_of_corpus = corpus_names(terms, counts, sum(sizes), text)
        self._corpus_names = names_of_corpus
        position = {t: j for j, t in enumerate(terms)}
        columns = np.array([position[w] for w in common], dtype=np.int64)
        common_counts = counts[:, columns].toarray() if len(columns) else np.zeros((len(sizes), 0))
        topic_words = np.clip(np.asarray(counts.sum(axis=1)).ravel(), 1, None)
        corpus_rate = common_counts.sum(axis=0) / max(float(counts.sum()), 1.0)
        # a corpus-wide word still names a topic where it is far more frequent than elsewhere
        lift = common_counts / topic_words[:, None] / np.clip(corpus_rate, 1e-12, None)[None, :]
        common_set = set(common)
        # with few topics no word can be that concentrated: ask for half the most a word can reach
        needed_lift = min(CHARACTERISTIC_LIFT, max(1.5, len(sizes) / 2))
        out = []
        for row, size in enumerate(sizes):
            banned = {w for w, value in zip(common, lift[row]) if value < needed_lift} | names_of_corpus
            self._banned[row] = banned
            start, stop = weights.indptr[row], weights.indptr[row + 1]
            cols, values = weights.indices[start:stop], weights.data[start:stop]
            held = dict(zip(counts.indices[counts.indptr[row] : counts.indptr[row + 1]], counts.data[counts.indptr[row] : counts.indptr[row + 1]]))
            support = 2 if size >= 6 else 1
            picked = []
            for k in np.argsort(-values, kind="stable"):
                term = terms[cols[k]]
                words = set(term.split())
                if values[k] <= 0 or held.get(cols[k], 0) < support or words & banned or words <= common_set:
                    continue  # rare here, a corpus-wide word not characteristic here, or nothing but corpus-wide words
                picked.append((term, float(values[k]), float(held[cols[k]]) / max(1, size)))
                if len(picked) == self.candidates:
                    break
            out.append(picked)
        return out

    def _shared_by_children(
        self,
        candidates: list[tuple[str, float, float]],
        draft: TopicDraft,
        sample: np.ndarray,
        offset: int,
        column: dict[str, int],
        position: dict[str, int],
    ) -> list[tuple[str, float, float]]:
        """A parent's candidates with coverage averaged over its children (each child counts once).

        A phrase present (in ``CHILD_PRESENCE`` of the members) in no more than half of the children
        covers nothing, so a parent is named after what its children share, or "Mixed: ..." when
        no phrase is shared enough.
        """
        if not candidates or self._row_matrix is None:
            return candidates
        child_of = {position[m]: c for c, child in enumerate(draft.children) for m in child.member_ids if m in position}
        labels = np.array([child_of.get(int(i), -1) for i in sample])
        columns = [column[p] for p, _, _ in candidates]
        held = self._row_matrix[offset : offset + len(sample)][:, columns].toarray() > 0
        shares = [held[labels == c].mean(axis=0) for c in range(len(draft.children)) if (labels == c).any()]
        if len(shares) < 2:
            return candidates
        stacked = np.stack(shares)
        mean = stacked.mean(axis=0)
        # a phrase found in half of the children or fewer is not what they share
        shared = (stacked >= CHILD_PRESENCE).mean(axis=0) > 0.5
        return [(p, w, float(m) if ok else 0.0) for (p, w, _), m, ok in zip(candidates, mean, shared)]

    def _children_candidates(self, draft: TopicDraft, banned: set[str], people: frozenset[str]) -> list[tuple[str, float, float]]:
        """A parent's candidates from its children's names and keyphrases, as (phrase, 0, share).

        share: the size-weighted share of the children whose name or keyphrases hold every word
        stem of the phrase, so "card" under "Card arrival", "Activate my card" and "Card
        expiring" covers all three; a phrase only one child holds covers nothing (0).
        """
        stop = stop_words()
        sizes = np.array([max(1, c.size) for c in draft.children], dtype=np.float64)
        held_by = [
            set().union(*(_words(p.lower()) for p in [c.name.removeprefix(MIXED_PREFIX), *c.keyphrases[:3]])) for c in draft.children
        ]
        phrases: dict[str, None] = {}
        for child in draft.children:
            for source in [child.name.removeprefix(MIXED_PREFIX), *child.keyphrases[:3]]:
                for phrase in phrase_ngrams(source, stop, frozenset(people), max_words=3):
                    if not set(phrase.split()) & (banned | people):
                        phrases.setdefault(phrase, None)
        out = []
        for phrase in phrases:
            holders = np.array([_words(phrase) <= h for h in held_by])
            # one child's phrase is that child's name, not what the children share
            share = float(sizes[holders].sum() / sizes.sum()) if holders.sum() >= 2 else 0.0
            out.append((phrase, 0.0, share))
        return out

    def _gist_candidates(
        self, draft: TopicDraft, corpus: Corpus, sample_texts: list[str], banned: set[str], people: frozenset[str]
    ) -> list[tuple[str, float, float]]:
        """Gists (``request_gist``) of the requests closest to the centroid, as (gist, 0, coverage) candidates.

        Coverage: the share of sampled members whose text holds every content word of the gist.
        """
        members = np.asarray(draft.member_index, dtype=np.int64)
        if len(members) == 0 or not corpus.requests:
            return []
        similarity = corpus.embeddings[members] @ np.asarray(draft.centroid, dtype=np.float32)
        central = members[np.argsort(-similarity, kind="stable")[: self.gist_requests]]
        stop = stop_words()
        word_sets = [set(re.findall(r"[a-z0-9+#'’\-]+", t.lower())) for t in sample_texts]
        out: list[tuple[str, float, float]] = []
        for index in central:
            written = request_gist(redact(str(corpus.requests[index]))) if index < len(corpus.requests) else ""
            gist = written.lower()
            words = gist.split()
            content = {w for w in words if w not in stop}
            if not content or set(words) & (banned | people) or any(g == gist for g, _, _ in out):
                continue
            held = sum(1 for ws in word_sets if content <= ws)
            out.append((gist, 0.0, held / max(1, len(sample_texts))))
            self._gist_forms.setdefault(gist, written)
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

    def _rank(
        self, candidates: list[tuple[str, float, float]], centroids: np.ndarray, topic: int, weights: PhraseWeights | None = None
    ) -> list[tuple[str, float, float]]:
        """Candidates as (phrase, score, coverage), best name first."""
        if not candidates:
            return []
        phrases = [p for p, _, _ in candidates]
        vectors = self._embed_phrases(phrases)
        if vectors.shape[1] != centroids.shape[1]:  # corpus embedded by another model: no similarity to use
            vectors, centroids = np.zeros((len(phrases), 1)), np.zeros((centroids.shape[0], 1))
        scores = score_phrases(
            vectors, centroids, topic,
            coverage=np.array([c for _, _, c in candidates]), tfidf=np.array([w for _, w, _ in candidates]),
            words=np.array([len(p.split()) for p in phrases]), weights=weights or self.weights,
            gist=np.array([p in self._gist_forms for p in phrases], dtype=bool),
        )
        order = np.argsort(-scores, kind="stable")
        return [(phrases[i], float(scores[i]), candidates[i][2]) for i in order]

    def _keyphrases(self, ranked: list[tuple[str, float, float]], first: str | None, diversity: float) -> list[str]:
        """The name's phrase, then diverse others by MMR over the ranking, no two sharing a word stem."""
        if not ranked:
            return []
        phrases = [p for p, _, _ in ranked]
        scores = np.array([s for _, s, _ in ranked], dtype=np.float64)
        relevance = (scores - scores.min()) / max(1e-9, float(scores.max() - scores.min()))
        order = mmr(relevance, self._embed_phrases(phrases), top_n=len(phrases), diversity=diversity)
        kept: list[str] = [first] if first else []
        for i in order:
            if len(kept) >= self.top_n:
                break
            if any(_words(phrases[i]) & _words(k) for k in kept):
                continue  # "cards" or "card payment" next to "card arrival" says little new
            kept.append(phrases[i])
        return kept

    @staticmethod
    def _corpus_coherence(corpus: Corpus, limit: int = 5_000) -> float:
        return coherence(np.asarray(corpus.embeddings)[evenly_spaced(len(corpus.embeddings), limit)])

    def _assign(self, rankings: list[list[tuple[str, float, float]]]) -> list[str | None]:
        """Each topic's name phrase: best-scoring topics choose first; a phrase (by word stems) is used once."""
        chosen: list[str | None] = [None] * len(rankings)
        taken: set[frozenset[str]] = set()
        order = sorted(range(len(rankings)), key=lambda t: -(rankings[t][0][1] if rankings[t] else -np.inf))
        for t in order:
            for phrase, _, _ in rankings[t]:
                key = frozenset(_words(phrase))
                if key not in taken:
                    chosen[t] = phrase
                    taken.add(key)
                    break
            if chosen[t] is None and rankings[t]:
                chosen[t] = rankings[t][0][0]
        return chosen

    # -- protocol -------------------------------------------------------------------------
    def name_topics(self, drafts: Sequence[TopicDraft], corpus: Corpus) -> list[TopicName]:
        """Name each draft: (drafts, corpus) -> [TopicName] in draft order, names unique in the call."""
        self.diagnostics_ = []
        if not drafts:
            return []
        samples = [self._member_sample(d, corpus) for d in drafts]
        # personal data is redacted before anything reads the texts
        texts = {int(i): redact(corpus.texts[i][:MAX_CHARS_PER_DOC]) for sample in samples for i in sample}
        documents = ["\n".join(texts[int(i)] for i in sample) for sample in samples]
        terms, counts = self._phrase_counts(samples, texts)
        candidate_lists = self._candidates(terms, counts, [len(s) for s in samples], "\n".join(documents))
        if any(len(d.children) >= 2 for d in drafts) and terms:
            position = {cid: i for i, cid in enumerate(corpus.ids)}
            column = {term: j for j, term in enumerate(terms)}
            offsets = np.cumsum([0] + [len(s) for s in samples])
            for t, draft in enumerate(drafts):
                if len(draft.children) >= 2:
                    candidate_lists[t] = self._shared_by_children(candidate_lists[t], draft, samples[t], int(offsets[t]), column, position)
        people = person_names(list(texts.values()))
        for t, draft in enumerate(drafts):
            if len(draft.children) >= 2:
                # a parent: what its children's names share counts, not what one member says
                shared = {p: c for p, _, c in self._children_candidates(draft, self._corpus_names, people)}
                candidate_lists[t] = [(p, w, max(c, shared.pop(p, 0.0))) for p, w, c in candidate_lists[t]]
                candidate_lists[t].extend((p, 0.0, c) for p, c in shared.items())
                continue
            known = {p for p, _, _ in candidate_lists[t]}
            gists = self._gist_candidates(draft, corpus, [texts[int(i)] for i in samples[t]], self._banned[t], people)
            candidate_lists[t].extend(g for g in gists if g[0] not in known)
        self._embed_phrases(sorted({p for c in candidate_lists for p, _, _ in c}))  # one batched call
        centroids = np.stack([np.asarray(d.centroid, dtype=np.float32) for d in drafts])
        rankings = [
            self._rank(c, centroids, t, self.parent_weights if len(drafts[t].children) >= 2 else self.weights)
            for t, c in enumerate(candidate_lists)
        ]
        chosen = self._assign(rankings)
        corpus_coherence = self._corpus_coherence(corpus)
        relative = [
            relative_coherence(coherence(np.asarray(corpus.embeddings)[s]), corpus_coherence) if len(s) else 0.0 for s in samples
        ]
        typical = typical_coherence([r for r, s in zip(relative, samples) if len(s) >= MIN_MIXED_SIZE])

        best_coverage = [max((c for _, _, c in ranked), default=0.0) for ranked in rankings]
        judged = [c for c, s in zip(best_coverage, samples) if len(s) >= MIN_MIXED_SIZE]
        typical_cover = float(np.median(judged)) if len(judged) >= 3 else DEFAULT_TYPICAL_COVERAGE
        least_cover = max(MIN_COVERAGE_FLOOR, self.min_coverage * typical_cover)

        results: list[TopicName] = []
        for t, draft in enumerate(drafts):
            ranked, phrase = rankings[t], chosen[t]
            covered = best_coverage[t]
            incoherent = relative[t] < self.mixed_below * typical
            # a parent: its children's names share nothing at all (no phrase held by two), else its best phrase
            floor = MIN_COVERAGE_FLOOR if len(draft.children) >= 2 else least_cover
            mixed = bool(ranked) and len(samples[t]) >= MIN_MIXED_SIZE and (incoherent or covered < floor)
            topic_coherence = relative[t]
            self.diagnostics_.append({"relative_coherence": topic_coherence, "typical": typical, "coverage": covered, "mixed": float(mixed)})
            keyphrases = self._keyphrases(ranked, None if mixed else phrase, diversity=0.7 if mixed else self.diversity)
            written = surface_forms(keyphrases, documents[t])
            keyphrases = [self._gist_forms.get(p, written[p]) if written[p] == p else written[p] for p in keyphrases]
            request = hide_names(_redacted(central_request(draft, corpus)), people)
            example = _clip(request, MAX_REQUEST_CHARS) if request else None
            polite = topic_pleasantries([texts[int(i)] for i in samples[t]])
            if polite:
                name = pleasantry_name(polite)
                keyphrases = [name.lower()]  # its filler ("perfect", "day") would come back in "Thanks (day)"
                description = pleasantry_description(polite)
            elif keyphrases and mixed:
                name = MIXED_PREFIX + ", ".join(keyphrases[:3])
                description = f"Conversations with little in common, about {_join(keyphrases[:DESCRIPTION_PHRASES])}"
            elif keyphrases:
                name = capitalise(keyphrases[0])
                description = f"Conversations about {_join(keyphrases[:DESCRIPTION_PHRASES])}"
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
            results.append(TopicName(name=name, description=description, keyphrases=keyphrases, representative_request=request))
        unique = deduplicate_names([r.name for r in results], [r.keyphrases[1:] for r in results])
        for result, name in zip(results, unique):
            result.name = name
        return results


#: Words a gist never starts with: question openers and filler ("how do I", "can you", "please").
_GIST_OPENERS = frozenset(
    "how what why when where which who whom whose can could would will should shall do does did is are was were "
    "am be i me my we our you your it its there here please hi hello hey help so and but or if just also "
    "anyone somebody someone tell explain show give need want like know get got have has had let lets".split()
)


#: A pronoun contracted with its verb ("I'd", "I'm", "we're", "it's"): an opener, unlike a negation ("can't").
_PRONOUN_CONTRACTION = re.compile(r"(?:i|you|we|they|he|she|it|that|there|here|what|who|let)['’](?:d|m|re|ve|ll|s)$", re.IGNORECASE)

#: Negations a gist keeps at its start ("not working", "no sound").
_NEGATIONS = frozenset("not no never cannot nothing nobody none".split())

#: "How" that a gist keeps: questions of quantity ("How long", "How much").
_HOW_QUANTITIES = frozenset("long much many often far soon old big".split())
#: Particles a gist may end on after these verbs ("turn on", "log in"), beside PHRASE_END_PARTICLES.
_VERB_PARTICLES: dict[str, tuple[str, ...]] = {
    verb: particles
    for verbs, particles in (
        ("turn turns turned turning switch switched power powered boot", ("on",)),
        ("log logged logging sign signed signing plug plugged check checked", ("in", "on")),
    )
    for verb in verbs.split()
}


def central_request(draft: TopicDraft, corpus: Corpus) -> str | None:
    """The opening request of the member closest to the topic centroid (members without one skipped).

    Without ``corpus.requests`` the member texts stand in; None when no member has any text.
    Not redacted: callers that show it redact it.
    """
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


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact(text)


def request_gist(request: str, max_words: int = 6) -> str:
    """A request reduced to its gist: the first clause's plain words without the question around them.

    A question of quantity keeps its "how" ("How long", "How much"): without it the rest reads
    as a fragment ("Long should my new card take"). A phrasal verb keeps its particle ("turn on").
    A passive whose modal went with the opener drops its "be" ("How can reports be shared" ->
    "reports shared", not "reports be shared").

    >>> request_gist("Why was I charged a fee for my card payment?")
    'charged a fee for my card'
    >>> request_gist("How do I top up by bank transfer? Thanks")
    'top up by bank transfer'
    >>> request_gist("How long should my new card take to arrive?")
    'How long should my new card take'
    >>> request_gist("My computer won't turn on")
    "computer won't turn on"
    >>> request_gist("wandb.init(project='x') fails")
    'fails'
    >>> request_gist("The ATM didn't. Help")
    'ATM'
    >>> request_gist("I'd like to attach some images to a run"), request_gist("Can't hear any sound")
    ('attach some images to a run', "Can't hear any sound")
    >>> request_gist("It's not working since the update")
    'not working since the update'
    >>> request_gist("How can LangChain be used with W&B?")
    'LangChain used'
    """
    stop = stop_words()
    for run in word_runs(request):
        words = list(run)
        while words and (
            words[0].lower() in _GIST_OPENERS or words[0].lower() in stop or len(words[0]) == 1 or _PRONOUN_CONTRACTION.match(words[0])
        ):  # "I'd like to", "I'm trying to" go with the opener; a negation ("Can't hear") stays
            if len(words) > 1 and words[0].lower() == "how" and words[1].lower() in _HOW_QUANTITIES:
                break
            if len(words) > 1 and words[0].lower() in _NEGATIONS:
                break  # "not working" is the opposite of "working"
            words.pop(0)
        quantity = bool(words) and words[0].lower() == "how"
        at = next((i for i, w in enumerate(words[:4]) if i >= 1 and w.lower() == "be"), 0)
        if not quantity and at and words[at - 1].lower() not in stop:
            # the modal before a passive went with the opener: "LangChain be used" reads as "LangChain used"
            # ("to be", "not be" keep theirs)
            words = words[:at] + words[at + 1 :]
        words = words[: max_words + (1 if quantity else 0)]
        while words and (words[-1].lower() in stop or len(words[-1]) == 1 or _CONTRACTION.search(words[-1])) and (
            words[-1].lower() not in PHRASE_END_PARTICLES
        ) and not (len(words) > 1 and words[-1].lower() in _VERB_PARTICLES.get(words[-2].lower(), ())):
            words.pop()  # "ATM didn't" says less than "ATM"
        if len(words) > 2 or (words and not quantity):
            return " ".join(words)
    return ""


def name_fidelity(
    names: Sequence[str],
    majority: Sequence[str],
    sizes: Sequence[int],
    label_names: dict[str, str],
    embed: Callable[[list[str]], np.ndarray],
    unscored: Collection[str] = (),
) -> float:
    """Share of points whose cluster's name points at the cluster's majority label.

    Each cluster name and each label's readable name ("card arrival") is embedded; a name is
    right when its most similar label name (cosine) is the cluster's majority label. Clusters
    are weighted by their sizes. ``names``, ``majority`` and ``sizes`` are aligned, one per
    cluster; ``embed`` maps texts to unit vectors (m, dim). ``unscored``: catch-all labels
    ("other") that no descriptive name can point at; clusters whose majority label is one are
    left out of the score (their names still compete as label names); NaN if nothing is left.

    >>> fake = {"card arrival": [1.0, 0.0], "top up": [0.0, 1.0], "Card · arrive": [0.9, 0.1], "Top-up": [0.2, 0.8]}
    >>> embed = lambda texts: np.array([fake[t] for t in texts])
    >>> name_fidelity(["Card · arrive", "Top-up"], ["card_arrival", "card_arrival"], [3, 1],
    ...               {"card_arrival": "card arrival", "top_up": "top up"}, embed)
    0.75
    """
    skip = set(unscored)
    keep = [i for i, m in enumerate(majority) if m not in skip]
    names, majority, sizes = [names[i] for i in keep], [majority[i] for i in keep], [sizes[i] for i in keep]
    if not names:
        return float("nan")
    labels = sorted(label_names)
    label_vectors = np.asarray(embed([label_names[x] for x in labels]), dtype=np.float64)
    name_vectors = np.asarray(embed(list(names)), dtype=np.float64)
    label_vectors /= np.linalg.norm(label_vectors, axis=1, keepdims=True)
    name_vectors /= np.linalg.norm(name_vectors, axis=1, keepdims=True)
    nearest = np.argmax(name_vectors @ label_vectors.T, axis=1)
    right = np.array([labels[j] == m for j, m in zip(nearest, majority)], dtype=np.float64)
    weights = np.asarray(sizes, dtype=np.float64)
    return float((right * weights).sum() / weights.sum())
