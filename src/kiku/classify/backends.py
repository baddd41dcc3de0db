"""Classifier backends: local (embeddings + linear model or prototypes) and LLM (few-shot prompt).

Both share one shape: build with a :class:`~kiku.classify.taxonomy.Taxonomy`, optionally
``fit(items)`` on labelled items, then ``predict(items) -> list[Prediction]``.

    >>> from kiku.classify import LocalClassifier, load_taxonomy, read_items   # doctest: +SKIP
    >>> clf = LocalClassifier(load_taxonomy("examples/taxonomy-wandb.yaml")).fit(read_items("gold.jsonl"))  # doctest: +SKIP
    >>> clf.predict(read_items("new.jsonl"))[0].label  # doctest: +SKIP
    'artifact'

``LocalClassifier`` embeds each item with the packaged MiniLM model (``text``, plus ``context``
embedded separately when items carry one) and then:

- **logistic** — a class-weighted logistic regression, ``C`` chosen by seeded inner
  cross-validation, when every label has at least ``min_examples`` labelled examples
  (taxonomy examples count);
- **prototypes** — cosine similarity to each label's prototype (its description plus its
  examples, minus a penalty near its negative examples) otherwise; with no examples at
  all this is zero-shot from the descriptions.

``LLMClassifier`` asks an LLM through kiku's provider layer (an async client with
``complete(messages, schema, stage) -> (parsed, usage)``) with a few-shot prompt built from the
taxonomy's examples, using structured output restricted to the label names.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, Field, create_model

from kiku.classify.data import Item
from kiku.classify.taxonomy import Taxonomy
from kiku.embed import CLASSIFY_MAX_TOKENS, CachedEmbedder, MiniLMEmbedder
from kiku.errors import KikuError
from kiku.protocols import Embedder
from kiku.vectors import l2_normalise

Mode = Literal["zero-shot", "prototypes", "logistic"]


class Prediction(BaseModel):
    """A backend's answer for one item: the top label, all chosen labels, a confidence in [0, 1]."""

    item_id: str
    label: str
    labels: list[str]
    confidence: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float] = Field(default_factory=dict)


class Classifier(Protocol):
    """What ``evaluate`` / ``apply`` need from a backend."""

    taxonomy: Taxonomy

    def fit(self, items: Sequence[Item]) -> Classifier: ...

    def predict(self, items: Sequence[Item], progress: Any = None) -> list[Prediction]: ...


@lru_cache(maxsize=1)
def default_embedder() -> CachedEmbedder:
    """kiku's packaged MiniLM at the classify token limit (:data:`~kiku.embed.CLASSIFY_MAX_TOKENS`),
    behind a per-process cache; loaded once per process.

    >>> default_embedder() is default_embedder()
    True
    """
    return CachedEmbedder(MiniLMEmbedder(max_tokens=CLASSIFY_MAX_TOKENS))


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    scaled = scores / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=1, keepdims=True)


class LocalClassifier:
    """Embedding-based classifier; see the module docstring for how it decides.

    Args:
        taxonomy: the labels.
        embedder: object with ``embed(list[str]) -> (n, dim)`` L2-normalised; default MiniLM.
        min_examples: labelled examples every label needs before a linear model is trained.
        use_taxonomy_examples: train on the taxonomy's examples as well as on ``fit`` items.
        c_grid: inverse regularisation strengths tried by inner cross-validation.
        temperature: softmax temperature turning prototype cosines into confidences.
        seed: seeds the inner cross-validation.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        embedder: Embedder | None = None,
        min_examples: int = 8,
        use_taxonomy_examples: bool = True,
        c_grid: Sequence[float] = (0.25, 1.0, 4.0, 16.0, 64.0),
        temperature: float = 0.05,
        seed: int = 0,
    ) -> None:
        self.taxonomy = taxonomy
        self._embedder = embedder
        self.min_examples = min_examples
        self.use_taxonomy_examples = use_taxonomy_examples
        self.c_grid = tuple(c_grid)
        self.temperature = temperature
        self.seed = seed
        self.mode: Mode = "zero-shot"
        self.chosen_c: float | None = None
        self._model: Any = None
        self._uses_context = False
        self._prototypes: np.ndarray | None = None
        self._negatives: dict[int, np.ndarray] = {}
        self._fitted = False

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder()
        return self._embedder

    # -- features -------------------------------------------------------------------------
    def _features(self, texts: list[str], contexts: list[str | None]) -> np.ndarray:
        text_vectors = self.embedder.embed(texts)
        if not self._uses_context:
            return text_vectors
        context_vectors = self.embedder.embed([c or t for t, c in zip(texts, contexts)])
        return np.hstack([text_vectors, context_vectors])

    def _training_pairs(self, items: Sequence[Item]) -> tuple[list[str], list[str | None], list[list[str]]]:
        texts: list[str] = []
        contexts: list[str | None] = []
        targets: list[list[str]] = []
        names = set(self.taxonomy.label_names)
        if self.use_taxonomy_examples:
            for text, label in self.taxonomy.positive_examples():
                texts.append(text)
                contexts.append(None)
                targets.append([label])
        for item in items:
            gold = [label for label in item.gold_labels if label in names]
            if not gold:
                continue
            texts.append(item.text)
            contexts.append(item.context)
            targets.append(gold)
        return texts, contexts, targets

    # -- fitting --------------------------------------------------------------------------
    def fit(self, items: Sequence[Item] = ()) -> LocalClassifier:
        """Learn from labelled ``items`` (their ``label``/``labels``) plus the taxonomy's examples.

        Items whose label is not in the taxonomy are ignored. Returns ``self``.
        """
        texts, contexts, targets = self._training_pairs(items)
        self._uses_context = any(c for c in contexts)
        counts = defaultdict(int)
        for target in targets:
            for label in target:
                counts[label] += 1
        enough = all(counts[name] >= self.min_examples for name in self.taxonomy.label_names)
        if texts and enough:
            self._fit_logistic(self._features(texts, contexts), targets)
        else:
            self._uses_context = False
            self._fit_prototypes(texts, targets)
        self._fitted = True
        return self

    def _fit_logistic(self, features: np.ndarray, targets: list[list[str]]) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold

        names = self.taxonomy.label_names
        if self.taxonomy.multi_label:
            from sklearn.multiclass import OneVsRestClassifier
            from sklearn.preprocessing import MultiLabelBinarizer

            matrix = MultiLabelBinarizer(classes=names).fit_transform(targets)
            model = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"))
            model.fit(features, matrix)
            self.chosen_c = 4.0
        else:
            labels = np.array([t[0] for t in targets])
            smallest = min(np.unique(labels, return_counts=True)[1])
            base = LogisticRegression(max_iter=3000, class_weight="balanced")
            if smallest >= 2 and len(self.c_grid) > 1:
                folds = StratifiedKFold(n_splits=min(3, smallest), shuffle=True, random_state=self.seed)
                search = GridSearchCV(base, {"C": list(self.c_grid)}, cv=folds, scoring="f1_macro")
                search.fit(features, labels)
                model = search.best_estimator_
                self.chosen_c = float(search.best_params_["C"])
            else:
                self.chosen_c = self.c_grid[len(self.c_grid) // 2]
                model = base.set_params(C=self.chosen_c).fit(features, labels)
        self._model = model
        self.mode = "logistic"

    def _fit_prototypes(self, texts: list[str], targets: list[list[str]]) -> None:
        by_label: dict[str, list[str]] = defaultdict(list)
        for text, target in zip(texts, targets):
            for label in target:
                by_label[label].append(text)
        descriptions = [f"{label.name.replace('_', ' ')}: {label.description}" for label in self.taxonomy.labels]
        description_vectors = self.embedder.embed(descriptions)
        prototypes = []
        for index, label in enumerate(self.taxonomy.labels):
            prototype = description_vectors[index]
            if by_label[label.name]:
                # the description is written to define the label; examples refine it (weight 1/3)
                example_centroid = l2_normalise(self.embedder.embed(by_label[label.name]).mean(axis=0))
                prototype = 2.0 * prototype + example_centroid
            prototypes.append(l2_normalise(prototype))
            if label.negative_examples:
                self._negatives[index] = self.embedder.embed(label.negative_examples)
        self._prototypes = np.array(prototypes, dtype=np.float32)
        self.mode = "prototypes" if any(by_label.values()) else "zero-shot"

    # -- prediction -----------------------------------------------------------------------
    def scores(self, items: Sequence[Item]) -> np.ndarray:
        """Per-label probabilities, shape (len(items), n_labels), in taxonomy label order."""
        if not self._fitted:
            self.fit()
        names = self.taxonomy.label_names
        if not items:
            return np.zeros((0, len(names)))
        if self.mode == "logistic":
            features = self._features([i.text for i in items], [i.context for i in items])
            probabilities = self._model.predict_proba(features)
            if self.taxonomy.multi_label:
                return np.asarray(probabilities)
            order = [list(self._model.classes_).index(n) if n in self._model.classes_ else None for n in names]
            return np.column_stack([probabilities[:, j] if j is not None else np.zeros(len(items)) for j in order])
        vectors = self.embedder.embed([i.text for i in items])
        cosines = vectors @ self._prototypes.T
        for index, negatives in self._negatives.items():
            nearest_negative = (vectors @ negatives.T).max(axis=1)
            cosines[:, index] -= 0.5 * np.maximum(0.0, nearest_negative - cosines[:, index])
        return _softmax(cosines, self.temperature)

    def predict(self, items: Sequence[Item], progress: Any = None) -> list[Prediction]:
        """Predict every item (in batches of 256, calling ``progress(n_done)`` after each)."""
        names = self.taxonomy.label_names
        predictions: list[Prediction] = []
        for start in range(0, len(items), 256):
            batch = list(items[start : start + 256])
            probabilities = self.scores(batch)
            for item, row in zip(batch, probabilities):
                best = int(np.argmax(row))
                if self.taxonomy.multi_label:
                    threshold = 0.5 if self.mode == "logistic" else 0.5 * float(row[best])
                    chosen = [names[j] for j in np.argsort(-row) if row[j] >= threshold] or [names[best]]
                else:
                    chosen = [names[best]]
                predictions.append(
                    Prediction(
                        item_id=item.id,
                        label=names[best],
                        labels=chosen,
                        confidence=float(np.clip(row[best], 0.0, 1.0)),
                        scores={n: round(float(v), 4) for n, v in zip(names, row)},
                    )
                )
            if progress is not None:
                progress(len(batch))
        return predictions


# ---------------------------------------------------------------------------------------------
# LLM backend
# ---------------------------------------------------------------------------------------------
class LLMClient(Protocol):
    """kiku's provider layer: ``await complete(messages, schema, stage) -> (parsed, usage)``."""

    async def complete(self, messages: list[dict[str, str]], schema: type[BaseModel], stage: str) -> tuple[BaseModel, Any]: ...


def answer_schema(taxonomy: Taxonomy) -> type[BaseModel]:
    """The structured answer: ``label`` (or ``labels``) restricted to the taxonomy, and a confidence."""
    choice = Literal[tuple(taxonomy.label_names)]  # type: ignore[valid-type]
    if taxonomy.multi_label:
        return create_model(
            "ClassifyAnswer",
            labels=(list[choice], Field(min_length=1, max_length=len(taxonomy.labels))),
            confidence=(float, 0.5),
        )
    # confidence is not bounded in the schema: a small model answering 90 should not cost retries;
    # _as_probability maps it into [0, 1]
    return create_model("ClassifyAnswer", label=(choice, ...), confidence=(float, 0.5))


def _as_probability(value: float) -> float:
    """A model's confidence as a probability: 0-1 kept, 1-100 read as percent, the rest clipped.

    >>> _as_probability(0.8), _as_probability(90), _as_probability(-3)
    (0.8, 0.9, 0.0)
    """
    if 1.0 < value <= 100.0:
        value /= 100.0
    return float(min(max(value, 0.0), 1.0))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LLMClassifier:
    """Few-shot LLM classifier through an async provider client.

    Args:
        taxonomy: labels, descriptions, examples and the system prompt.
        client: async client with ``complete(messages, schema, stage)`` (see :func:`make_llm_client`).
        few_shot: include examples (taxonomy examples and ``fit`` items) in the prompt.
        examples_per_label: most examples shown per label.
        concurrency: requests in flight at once.
        max_chars: item text (and context) is clipped to this many characters.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        client: LLMClient,
        few_shot: bool = True,
        examples_per_label: int = 3,
        concurrency: int = 4,
        max_chars: int = 700,
        seed: int = 0,
    ) -> None:
        self.taxonomy = taxonomy
        self.client = client
        self.few_shot = few_shot
        self.examples_per_label = examples_per_label
        self.concurrency = concurrency
        self.max_chars = max_chars
        self.seed = seed
        self.schema = answer_schema(taxonomy)
        self._examples: dict[str, list[str]] = {label.name: list(label.examples) for label in taxonomy.labels}
        for text, label in taxonomy.positive_examples()[sum(len(v) for v in self._examples.values()) :]:
            self._examples[label].append(text)
        self.failures = 0
        self.usage: list[Any] = []

    def fit(self, items: Sequence[Item] = ()) -> LLMClassifier:
        """Add labelled items as candidate few-shot examples (chosen seeded, per label)."""
        rng = random.Random(self.seed)
        pool: dict[str, list[str]] = defaultdict(list)
        for item in items:
            for label in item.gold_labels:
                if label in self._examples:
                    pool[label].append(item.text)
        for label, texts in pool.items():
            rng.shuffle(texts)
            self._examples[label].extend(texts)
        return self

    def system_prompt(self) -> str:
        """The system message: instructions, labels with descriptions, examples, output format."""
        lines = [self.taxonomy.system_prompt.strip(), "", "Labels:"]
        for label in self.taxonomy.labels:
            lines.append(f"- {label.name}: {label.description}")
        if self.few_shot:
            lines += ["", "Examples:"]
            for label in self.taxonomy.labels:
                for text in self._examples[label.name][: self.examples_per_label]:
                    lines.append(f"- {json.dumps(_clip(text, 160), ensure_ascii=False)} -> {label.name}")
                for text in label.negative_examples[:2]:
                    lines.append(f"- {json.dumps(_clip(text, 160), ensure_ascii=False)} -> not {label.name}")
        field = '"labels": [one or more label names]' if self.taxonomy.multi_label else '"label": one label name'
        lines += ["", f"Answer with JSON: {{{field}, \"confidence\": a number from 0 to 1}}."]
        return "\n".join(lines)

    def messages(self, item: Item) -> list[dict[str, str]]:
        """Chat messages for one item."""
        user = f"Request: {_clip(item.text, self.max_chars)}"
        if item.context:
            user += f"\nRelated document: {_clip(item.context, self.max_chars // 2)}"
        return [{"role": "system", "content": self.system_prompt()}, {"role": "user", "content": user}]

    async def _predict_one(self, item: Item, gate: asyncio.Semaphore) -> Prediction:
        names = self.taxonomy.label_names
        async with gate:
            try:
                parsed, usage = await self.client.complete(self.messages(item), self.schema, stage="classify")
                self.usage.append(usage)
            except Exception as error:  # noqa: BLE001 - one bad answer must not lose the batch
                if isinstance(error, KikuError) and "not installed" in str(error):
                    raise
                self.failures += 1
                if hasattr(self.client, "record_failure"):  # kiku.llm reports failures at the end of a run
                    self.client.record_failure("classify", item.id, error)
                fallback = names[-1]
                return Prediction(item_id=item.id, label=fallback, labels=[fallback], confidence=0.0, scores={})
        chosen = list(dict.fromkeys(parsed.labels)) if self.taxonomy.multi_label else [parsed.label]
        confidence = _as_probability(parsed.confidence)
        return Prediction(item_id=item.id, label=chosen[0], labels=chosen, confidence=confidence,
                          scores={name: confidence if name in chosen else 0.0 for name in names})

    async def apredict(self, items: Sequence[Item], progress: Any = None) -> list[Prediction]:
        """Async prediction, ``concurrency`` requests at a time, order preserved."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Item) -> Prediction:
            result = await self._predict_one(item, gate)
            if progress is not None:
                progress(1)
            return result

        return list(await asyncio.gather(*(one(item) for item in items)))

    def predict(self, items: Sequence[Item], progress: Any = None) -> list[Prediction]:
        """Predict every item; an answer that fails to parse becomes the last label at confidence 0
        and is counted in ``failures``."""
        from kiku.aio import run_sync

        return run_sync(self.apredict(items, progress))


# ---------------------------------------------------------------------------------------------
# client factory: kiku's provider layer
# ---------------------------------------------------------------------------------------------
def _normalise_spec(spec: str) -> str:
    """``local:NAME`` and bare ``.gguf`` paths in the provider layer's ``PROVIDER/MODEL`` form."""
    if spec.startswith("local:"):
        return "local/" + spec.removeprefix("local:")
    if spec.endswith(".gguf") and not spec.startswith("local/"):
        return "local/" + spec
    return spec


def make_llm_client(spec: str, **options: Any) -> LLMClient:
    """kiku's cached async LLM client for ``spec``: ``local``, ``local/<model>`` (or ``local:<model>``),
    a ``.gguf`` path, or any ``PROVIDER/MODEL`` (``openai/gpt-4o-mini``, ``ollama/llama3.1``...).

    ``options`` go to ``kiku.llm.LLMClient.from_spec`` (cache, concurrency, max_tokens...).
    """
    from kiku.llm.client import LLMClient as ProviderClient

    return ProviderClient.from_spec(_normalise_spec(spec.strip()), **options)
