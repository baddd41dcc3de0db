"""Tests of the offline namer on real embeddings, and of its pure helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kiku.naming import KeyphraseNamer, class_tfidf, deduplicate_names, mmr
from kiku.protocols import Corpus, TopicDraft, TopicNamer
from kiku.records import Cluster
from stage_corpus import THEMES, shared_embedder, theme_corpus

THEME_WORDS = {
    "password": ("password",),
    "refund": ("refund",),
    "python": ("python", "dictionar", "list"),
    "recipe": ("banana", "bread", "recipe"),
    "weather": ("weather", "forecast", "rain"),
}


def assert_a_phrase_not_a_keyword_pair(name: str) -> None:
    """A name is one short phrase: no "keyword · keyword", at most 6 words and 60 characters."""
    assert "·" not in name, name
    assert len(name) <= 60, name
    assert len(name.removeprefix("Mixed: ").split()) <= 6 or name.startswith("Mixed: "), name


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
        assert_a_phrase_not_a_keyword_pair(topic.name)
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
    shown = {w for phrase in first.keyphrases for w in phrase.lower().split()}
    assert shown & {"python", "banana", "bread", "dictionaries", "recipe"}


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
    assert deduplicate_names(["Card fee", "card FEE"], [["abroad"], ["atm"]]) == ["Card fee (abroad)", "card FEE (atm)"]
    assert deduplicate_names(["X", "X", "X"], [["y"], ["y"], ["z"]]) == ["X (y)", "X (y) (2)", "X (z)"]
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


# --- names a person can act on (issue 11): phrases, no code, no PII, honest "Mixed" -------------

CODE_TOKEN = r"[_(){}\[\]=/\\<>]|\w\.\w|\b[0-9a-f]{8,}\b|\d{3,}|\b[a-z]{2,}[A-Z]"


def named(texts_by_theme: dict[str, list[str]]) -> tuple[list, Corpus, list[TopicDraft]]:
    """Name the given themes (one draft each) on real embeddings."""
    embedder = shared_embedder()
    texts = [t for items in texts_by_theme.values() for t in items]
    labels = np.repeat(np.arange(len(texts_by_theme)), [len(v) for v in texts_by_theme.values()])
    corpus = Corpus(ids=[f"c{i}" for i in range(len(texts))], texts=texts, requests=texts, embeddings=embedder.embed(texts))
    drafts = [
        TopicDraft(key=key, member_index=np.flatnonzero(labels == k), centroid=unit(corpus.embeddings[labels == k].mean(axis=0)))
        for k, key in enumerate(texts_by_theme)
    ]
    return KeyphraseNamer(embedder).name_topics(drafts, corpus), corpus, drafts


def appended(theme: str, suffix: str) -> dict[str, list[str]]:
    """THEMES with ``suffix`` appended to every text of one theme."""
    return {**THEMES, theme: [f"{text} {suffix}" for text in THEMES[theme]]}


def test_names_hold_no_code_tokens_ids_paths_or_urls() -> None:
    """Code pasted into requests (identifiers, calls, hashes, file names, URLs) never becomes a name."""
    import re

    code_heavy = appended("python", "df_train = pd.read_csv('data/train_v2.csv'); model.fit(X_train) see https://example.com/a?id=3f9a2c7e41")
    names, _, _ = named(code_heavy)
    for topic in names:
        assert_a_phrase_not_a_keyword_pair(topic.name)
        assert not re.search(CODE_TOKEN, topic.name), topic.name
        for phrase in topic.keyphrases:
            assert not re.search(CODE_TOKEN, phrase), (topic.name, phrase)
    python = names[list(code_heavy).index("python")]
    assert any(w in python.name.lower() for w in THEME_WORDS["python"]), python.name


def test_personal_data_is_redacted_before_naming() -> None:
    """E-mails, phone numbers and people introduced by name never reach names, keyphrases or examples."""
    leaky = appended("refund", "Dear Annabel Krzyzanowski, mail me at annabel.k@example.com or call +44 20 7946 0958.")
    names, _, _ = named(leaky)
    refund = names[list(leaky).index("refund")]
    assert "refund" in refund.name.lower(), refund.name
    for topic in names:
        shown = " ".join([topic.name, topic.description, topic.representative_request or "", *topic.keyphrases]).lower()
        for secret in ("annabel", "krzyzanowski", "example.com", "@", "7946", "0958"):
            assert secret not in shown, (secret, shown)
    assert "[EMAIL]" in (refund.representative_request or "") and "[PHONE]" in (refund.representative_request or "")


def test_an_incoherent_cluster_is_named_mixed_not_after_one_part() -> None:
    """A cluster holding a bit of every theme says so ("Mixed: ..."); the coherent ones do not."""
    corpus, labels = theme_corpus()
    drafts = theme_drafts(corpus, labels)
    jumble = np.array([np.flatnonzero(labels == k)[j] for k in range(len(THEMES)) for j in range(2)])
    drafts.append(TopicDraft(key="jumble", member_index=jumble, centroid=unit(corpus.embeddings[jumble].mean(axis=0))))
    names = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    assert names[-1].name.startswith("Mixed: "), names[-1].name
    assert names[-1].description.startswith("Conversations with little in common")
    assert not [n.name for n in names[:-1] if n.name.startswith("Mixed")]


def test_a_parent_of_unrelated_children_is_not_named_after_one_child() -> None:
    """A parent over "python" and "weather" shares no phrase: "Mixed: ...", never one child's name or "A · B"."""
    corpus, labels = theme_corpus()
    themes = list(THEMES)
    child_names = {"python": "List of dictionaries", "weather": "Weather forecast"}
    parts = {k: np.flatnonzero(labels == themes.index(k)) for k in ("python", "weather", "password", "refund")}
    def child(key: str) -> Cluster:
        return Cluster(id=key, level=0, name=child_names.get(key, key), member_ids=[corpus.ids[i] for i in parts[key]])
    unrelated = np.concatenate([parts["python"], parts["weather"]])
    related = np.concatenate([parts["password"], parts["refund"]])
    drafts = [
        TopicDraft(key="L1-000", member_index=unrelated, centroid=unit(corpus.embeddings[unrelated].mean(axis=0)), children=[child("python"), child("weather")]),
        TopicDraft(key="L1-001", member_index=related, centroid=unit(corpus.embeddings[related].mean(axis=0)), children=[child("password"), child("refund")]),
    ]
    names = KeyphraseNamer(shared_embedder()).name_topics(drafts, corpus)
    assert "·" not in names[0].name
    assert names[0].name.startswith("Mixed: "), names[0].name


def test_a_product_name_concentrated_in_one_cluster_still_names_nothing() -> None:
    """The clusterer may put every "acmebot ..." question together: the product's name still stays out."""
    product = dict(THEMES)
    product["refund"] = [t.replace("refund", "Acmebot refund") for t in THEMES["refund"]]
    product["password"] = [f"{t} in acmebot" if i % 2 else f"{t} in AcmeBot" for i, t in enumerate(THEMES["password"])]
    names, _, _ = named(product)
    assert not [n.name for n in names if "acmebot" in n.name.lower()]


def test_central_request_skips_members_without_a_request() -> None:
    from kiku.naming import central_request
    from kiku.protocols import Corpus, TopicDraft

    embeddings = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=np.float32)
    corpus = Corpus(ids=["a", "b", "c"], texts=["ta", "tb", "tc"], requests=["", "second", "third"], embeddings=embeddings)
    draft = TopicDraft(key="t", member_index=np.array([0, 1, 2]), centroid=np.array([1.0, 0.0], dtype=np.float32))
    assert central_request(draft, corpus) == "second"  # "a" is closest but has no request
    no_requests = Corpus(ids=["a", "b", "c"], texts=["ta", "tb", "tc"], requests=[], embeddings=embeddings)
    assert central_request(draft, no_requests) == "ta"
    assert central_request(TopicDraft(key="e", member_index=np.array([], dtype=np.int64), centroid=draft.centroid), corpus) is None


def test_corpus_name_words_find_the_product_not_topics_or_titles() -> None:
    from kiku.naming import corpus_name_words

    example = Path(__file__).resolve().parents[1] / "examples" / "wandb-queries.jsonl"
    queries = [json.loads(line)["messages"][0]["content"] for line in example.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sorted(corpus_name_words(queries)) == ["biases", "wandb", "weights"]
    # frequent topic words are not a name, nor a title, a stop word or a contraction
    texts = [f"Mr Smith said my card {i} is late. I'm sure it's my card" for i in range(40)] + ["a refund"] * 10
    assert corpus_name_words(texts) == []
    assert corpus_name_words([]) == []


def multiwoz_turns() -> dict[str, list[str]]:
    """tests/data/multiwoz-turns.jsonl (MultiWOZ via ConvLab-3, see NOTICE): 40 user turns of each of six acts."""
    rows = [json.loads(line) for line in (Path(__file__).parent / "data" / "multiwoz-turns.jsonl").read_text(encoding="utf-8").splitlines()]
    by_act: dict[str, list[str]] = {}
    for row in rows:
        by_act.setdefault(row["act"], []).append(row["text"])
    return by_act


def test_topics_that_only_thank_or_say_goodbye_are_named_for_it() -> None:
    """Real MultiWOZ turns: the thank-you and goodbye turns are named "Thanks" / "... goodbyes", not
    after their filler ("Perfect", "Mixed: day, helpful"); greetings followed by a request, and the
    requests themselves, keep a name from what they ask."""
    by_act = multiwoz_turns()
    names, _, _ = named(by_act)
    name_of = {act: topic.name for act, topic in zip(by_act, names)}
    assert name_of["general-thank"].startswith("Thanks"), name_of
    assert "goodbyes" in name_of["general-bye"].lower(), name_of
    polite = ("Thanks", "Greetings", "Goodbyes")
    for act in ("general-greet", "Hotel-Inform", "Train-Request", "Restaurant-Request"):
        assert not name_of[act].startswith(polite) and "goodbyes" not in name_of[act].lower(), name_of
    thanks = names[list(by_act).index("general-thank")]
    assert thanks.description.startswith("Conversations whose request only thanks")
    assert thanks.keyphrases == [thanks.name.lower()]  # no filler ("perfect", "day") to come back in a sibling's name


def test_bare_yes_and_no_replies_are_named_agreement_and_refusals() -> None:
    """Short replies are all stop words: named for what they do, not "Mixed: yep, correct, absolutely"."""
    replies = {
        **THEMES,
        "yes": ["yes", "yes please", "that is correct", "sure", "yeah", "yep", "yes that's right", "correct", "absolutely yes", "yes, do it"],
        "no": ["no", "nope", "no thanks", "not really", "no that's wrong", "no way", "nah", "that is not correct", "no, don't", "negative"],
    }
    names, _, _ = named(replies)
    name_of = {key: topic.name for key, topic in zip(replies, names)}
    assert name_of["yes"] == "Agreement", name_of
    assert name_of["no"].startswith("Refusals"), name_of
    assert not [key for key in THEMES if name_of[key].startswith(("Agreement", "Refusals", "Thanks", "Greetings"))], name_of


def test_pleasantry_kinds_keep_requests_questions_and_negations_out() -> None:
    """Pure logic: what counts as only thanking, greeting, agreeing... and what is a request."""
    from kiku.naming import pleasantry_kinds, stop_words

    stop = stop_words()
    polite = {
        "Thank you so much, have a nice day!": ["Thanks"], "No, that's all I need. Thanks, bye.": ["Thanks", "Goodbyes"],
        "hello there": ["Greetings"], "yes please": ["Agreement"], "of course not": ["Refusals"], "nope": ["Refusals"],
    }
    for text, kinds in polite.items():
        assert pleasantry_kinds(text, stop) == kinds, text
    requests = [
        "Hi, my card was charged twice", "Thank you. May I have the address?", "Hello! Can you help me write a cover letter?",
        "Thank you!\nNow write me a poem about the sea", "thanks, weather?", "Yes I want to cancel my subscription",
        "is that right?", "are you sure?", "I don't think that's right", "I'm not sure", "correct it", "right now",
        "Correct the grammar in this sentence", "take care of my cat", "no sound from my laptop", "hi-fi speakers",
    ]
    for text in requests:
        assert pleasantry_kinds(text, stop) == [], text
