"""Classifiers from topics: define a taxonomy, weak-label, review, evaluate, apply, watch drift.

    >>> from kiku.classify import LocalClassifier, load_taxonomy, read_items   # doctest: +SKIP
    >>> clf = LocalClassifier(load_taxonomy("examples/taxonomy-wandb.yaml")).fit(read_items("gold.jsonl"))  # doctest: +SKIP
    >>> [p.label for p in clf.predict(read_items("queries.jsonl"))][:2]  # doctest: +SKIP
    ['artifact', 'other']
"""

from kiku.classify.apply import apply_classifier, label_distribution
from kiku.classify.backends import LLMClassifier, LocalClassifier, Prediction, make_llm_client
from kiku.classify.bootstrap import taxonomy_from_run
from kiku.classify.data import Item, read_items
from kiku.classify.drift import DriftReport, detect_drift
from kiku.classify.evaluate import EvalResult, evaluate, split_items
from kiku.classify.review import ReviewSession, fold_decisions
from kiku.classify.taxonomy import Label, Taxonomy, load_taxonomy, parse_taxonomy

__all__ = [
    "DriftReport", "EvalResult", "Item", "LLMClassifier", "Label", "LocalClassifier", "Prediction", "ReviewSession",
    "Taxonomy", "apply_classifier", "create_review_app", "detect_drift", "evaluate", "fold_decisions",
    "label_distribution", "load_taxonomy", "make_llm_client", "parse_taxonomy", "read_items", "split_items",
    "taxonomy_from_run",
]


def __getattr__(name: str) -> object:
    # The review page is served by the web layer (kiku.web.review); imported on first use so
    # that ``import kiku.classify`` does not load the web server.
    if name == "create_review_app":
        from kiku.web.review import create_review_app

        return create_review_app
    raise AttributeError(f"module 'kiku.classify' has no attribute {name!r}")
