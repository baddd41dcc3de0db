"""Tests of the offline namer on real embeddings, and of its pure helpers."""

from __future__ import annotations

import numpy as np
import pytest
from stage_corpus import THEMES, shared_embedder, theme_corpus

from kiku.naming import KeyphraseNamer, class_tfidf, deduplicate_names, mmr
from kiku.protocols import Corpus, TopicDraft, TopicNamer
from kiku.records import Cluster

THEME_WORDS = {
    "password": ("password",),
    "refund": ("refund",),
    "python": ("python", "dictionar", "list"),
    "recipe": ("banana", "bread", "recipe"),
    "weather": ("weather", "forecast", "rain"),
}


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def theme_drafts(corpus: Corpus, labels: np.ndarray) -> list[TopicDraft]:
    return [
        TopicDraft(key=theme, member_index=np.flatnonzero(labels == k), centroid=unit(corpus.embeddings[labels == k].mean(axis=0)))
        for k, theme in enumerate(THEMES)
    ]


def test_names_say_what_each_theme_is_about() -> None:
    corpus, labels = theme_corpus()
    namer = KeyphraseNamer(shared_embedder())
    assert isinstance(namer, TopicNamer)
    drafts = theme_drafts(corpus, labels)
    names = namer.name_topics(drafts, corpus)
    assert len(names) == len(drafts)
    assert len({n.name.lower() for n in names}) == len(names)
    for draft, topic in zip(drafts, names):
        lowered = topic.name.lower()
        assert any(word in lowered for word in THEME_WORDS[draft.key]), (draft.key, topic.name)
        assert 1 <= len(topic.keyphrases) <= 5
        assert " · " in topic.name or len(topic.keyphrases) == 1
        assert len(topic.name) <= 60
        # the example is the opening request of the member closest to the centroid
        similarity = corpus.embeddings[draft.member_index] @ draft.centroid
        expected = corpus.requests[int(draft.member_index[int(np.argmax(similarity))])]
        assert topic.representative_request == expected
        assert topic.description.startswith("Conversations about ")
        assert expected[:40] in topic.description
        # keyphrases come from this topic's own words
        member_text = " ".join(corpus.texts[i] for i in draft.member_index).lower()
        assert all(all(w.lower() in member_text for w in phrase.split()) for phrase in topic.keyphrases)


def test_keyphrases_are_distinctive_not_shared_words() -> None:
    corpus, labels = theme_corpus()
    names = KeyphraseNamer(shared_embedder()).name_topics(theme_drafts(corpus, labels), corpus)
    firsts = [n.keyphrases[0] for n in names]
    assert len(set(firsts)) == len(firsts)


def test_siblings_with_identical_content_get_different_names() -> None:
    corpus, labels = theme_corpus()
    members = np.flatnonzero(labels == 0)
    centroid = unit(corpus.embeddings[members].mean(axis=0))
    drafts = [TopicDraft(key="a", member_index=members, centroid=centroid), TopicDraft(key="b", member_index=members, centroid=centroid)]
    names = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    assert names[0].name != names[1].name
    assert names[0].name.lower().startswith(names[1].name.lower()[:8])


def test_parent_draft_uses_children_and_all_members() -> None:
    corpus, labels = theme_corpus()
    members = np.flatnonzero((labels == 2) | (labels == 3))
    children = [
        Cluster(id="b0", level=0, name="Python dictionaries", keyphrases=["python", "dictionaries"]),
        Cluster(id="b1", level=0, name="Banana bread", keyphrases=["banana bread", "recipe"]),
    ]
    parent = TopicDraft(key="L1-000", member_index=members, centroid=unit(corpus.embeddings[members].mean(axis=0)), children=children)
    other_members = np.flatnonzero(labels == 4)
    other = TopicDraft(key="L1-001", member_index=other_members, centroid=unit(corpus.embeddings[other_members].mean(axis=0)))
    first, second = KeyphraseNamer(shared_embedder()).name_topics([parent, other], corpus)
    assert first.name != second.name
    assert first.representative_request in [corpus.requests[i] for i in members]
    assert set(first.keyphrases) & {"python", "banana bread", "banana", "bread", "dictionaries", "recipe"}


def test_tiny_empty_and_stopword_only_topics() -> None:
    vectors = np.eye(4, 8, dtype=np.float32)
    corpus = Corpus(ids=list("abcd"), texts=["", "the and of", "Kubernetes pod crash", ""], requests=["", "the and of", "Kubernetes pod crash", ""], embeddings=vectors)
    drafts = [
        TopicDraft(key="empty", member_index=np.array([0, 3]), centroid=vectors[0]),
        TopicDraft(key="stop", member_index=np.array([1]), centroid=vectors[1]),
        TopicDraft(key="one", member_index=np.array([2]), centroid=vectors[2]),
        TopicDraft(key="none", member_index=np.array([], dtype=np.int64), centroid=vectors[3]),
    ]
    names = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    assert {"kubernetes", "pod", "crash"} & set(names[2].name.lower().replace("·", " ").split())
    assert names[0].name == "Empty conversations" and names[0].representative_request is None
    assert names[1].representative_request == "the and of"
    assert len({n.name for n in names}) == 4
    all_empty = Corpus(ids=["a"], texts=[""], requests=[""], embeddings=vectors[:1])
    only = KeyphraseNamer(shared_embedder()).name_topics([TopicDraft(key="x", member_index=np.array([0]), centroid=vectors[0])], all_empty)
    assert only[0].name == "Empty conversations"
    assert KeyphraseNamer(shared_embedder()).name_topics([], all_empty) == []


def test_deduplicate_names() -> None:
    assert deduplicate_names(["A", "B"]) == ["A", "B"]
    assert deduplicate_names(["Card · fee", "card · FEE"], [["abroad"], ["atm"]]) == ["Card · fee · abroad", "card · FEE · atm"]
    assert deduplicate_names(["X", "X", "X"], [["y"], ["y"], ["z"]]) == ["X · y", "X · y (2)", "X · z"]
    result = deduplicate_names(["A", "A", "A (2)"])
    assert len({r.lower() for r in result}) == 3 and result[0] == "A"


def test_class_tfidf_matches_bertopic_formula() -> None:
    counts = np.array([[3, 1, 0], [0, 1, 4]])
    weights = class_tfidf(counts)
    average = counts.sum(axis=1).mean()
    expected = counts / counts.sum(axis=1, keepdims=True) * np.log(1 + average / counts.sum(axis=0))
    np.testing.assert_allclose(weights, expected)
    assert weights[0, 0] > weights[0, 1]  # a word in both topics is less distinctive


def test_mmr_prefers_diverse_candidates() -> None:
    vectors = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0]])
    assert mmr(np.array([1.0, 0.99, 0.6]), vectors, top_n=2, diversity=0.0) == [0, 1]
    assert mmr(np.array([1.0, 0.99, 0.6]), vectors, top_n=2, diversity=0.7) == [0, 2]
    assert mmr(np.array([]), np.zeros((0, 2)), top_n=3) == []


@pytest.mark.parametrize("top_n", [1, 3])
def test_top_n_is_respected(top_n: int) -> None:
    corpus, labels = theme_corpus()
    names = KeyphraseNamer(shared_embedder(), top_n=top_n).name_topics(theme_drafts(corpus, labels), corpus)
    assert all(1 <= len(n.keyphrases) <= top_n for n in names)


def test_the_corpus_wide_product_name_stays_out_of_topic_names() -> None:
    """In a product's own logs its name is in every topic: it must not name the topics."""
    corpus, labels = theme_corpus()
    branded = [f"Acmebot question: {text}" for text in corpus.texts]
    embedder = shared_embedder()
    branded_corpus = Corpus(ids=corpus.ids, texts=branded, requests=branded, embeddings=embedder.embed(branded))
    names = KeyphraseNamer(embedder).name_topics(theme_drafts(branded_corpus, labels), branded_corpus)
    assert not [n.name for n in names if "acmebot" in n.name.lower()]
    for name, theme in zip(names, THEMES):
        assert any(word in name.name.lower() for word in THEME_WORDS[theme]), (theme, name.name)


def test_names_keep_the_users_spelling_of_acronyms_and_products() -> None:
    """Keyphrases are scored in lowercase but shown as users write them ("API", "JSON", "iPhone")."""
    corpus, labels = theme_corpus()
    texts = list(corpus.texts)
    python_rows = np.flatnonzero(labels == list(THEMES).index("python"))
    for i in python_rows:
        texts[i] = f"{texts[i]} How does the JSON API return it?"
    embedder = shared_embedder()
    spelled = Corpus(ids=corpus.ids, texts=texts, requests=texts, embeddings=embedder.embed(texts))
    names = KeyphraseNamer(embedder).name_topics(theme_drafts(spelled, labels), spelled)
    python_topic = names[list(THEMES).index("python")]
    shown = {w for phrase in python_topic.keyphrases for w in phrase.split()}
    assert shown & {"JSON", "API"}, python_topic.keyphrases
    assert not shown & {"json", "api", "Json", "Api"}, python_topic.keyphrases


def test_surface_forms_ignore_sentence_starts() -> None:
    from kiku.naming import surface_forms

    document = "Password reset failed. Password again?\nPassword is wrong. my password and the password field"
    assert surface_forms(["password"], document) == {"password": "password"}
    assert surface_forms(["c++", "ios"], "I use C++ on iOS. c++ templates and C++ lambdas on iOS") == {"c++": "C++", "ios": "iOS"}
    assert surface_forms(["never seen"], "nothing here") == {"never seen": "never seen"}
