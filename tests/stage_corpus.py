"""A small hand-written corpus in clear themes, embedded with the real model, for stage tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from kiku.protocols import Corpus

THEMES: dict[str, list[str]] = {
    "password": [
        "How do I reset my password?",
        "I forgot my password and cannot log in",
        "The password reset email never arrives",
        "Can I change my password from the mobile app?",
        "My password reset link has expired",
        "Password requirements are too strict, what characters are allowed?",
    ],
    "refund": [
        "I want a refund for my last order",
        "How long does a refund take to reach my bank?",
        "My refund was rejected, why?",
        "Can I get a refund on a discounted item?",
        "Refund status still says pending after two weeks",
        "Please refund the duplicate charge on my order",
    ],
    "python": [
        "How do I sort a list of dictionaries in Python?",
        "Python list comprehension with an if condition",
        "Why does my Python script raise a KeyError on the dictionary?",
        "Reading a CSV file into a Python list of dictionaries",
        "Python dictionary comprehension example",
        "How to merge two dictionaries in Python",
    ],
    "recipe": [
        "Give me a recipe for banana bread",
        "How long should I bake banana bread in the oven?",
        "Vegan banana bread recipe without eggs",
        "Can I freeze banana bread after baking?",
        "My banana bread is too dry, what went wrong in the recipe?",
        "Banana bread recipe with chocolate chips",
    ],
    "weather": [
        "Will it rain in London tomorrow?",
        "What is the weather forecast for the weekend in Paris?",
        "Is it going to snow in Berlin this week?",
        "Weather forecast for Tokyo on Monday",
        "How hot will it be in Madrid tomorrow afternoon?",
        "Will there be a storm in New York tonight, what does the forecast say?",
    ],
}


@lru_cache(maxsize=1)
def theme_corpus() -> tuple[Corpus, np.ndarray]:
    """(corpus, theme labels (n,)) with real MiniLM embeddings; ids are 't000', 't001', ..."""
    from kiku.embed import MiniLMEmbedder

    texts = [t for items in THEMES.values() for t in items]
    labels = np.repeat(np.arange(len(THEMES)), [len(v) for v in THEMES.values()])
    embeddings = MiniLMEmbedder().embed(texts)
    ids = [f"t{i:03d}" for i in range(len(texts))]
    return Corpus(ids=ids, texts=texts, requests=texts, embeddings=embeddings), labels


@lru_cache(maxsize=1)
def shared_embedder():  # noqa: ANN201
    from kiku.embed import MiniLMEmbedder

    return MiniLMEmbedder()
