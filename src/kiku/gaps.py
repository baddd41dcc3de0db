"""Gap types: is a request a **capability** gap, an **inventory** gap, or neither?

A capability gap is something the product cannot do ("I can't send emails through the AI"); an
inventory gap is content the product should hold but lacks or cannot find ("why can't it find
my signed contracts?"). kiku sorts each conversation with kiku's classifier backends
(:mod:`kiku.classify`) and a taxonomy shipped as package data (``kiku/assets/gap-taxonomy.yaml``:
labels with descriptions and examples; copy and edit it, pass it as ``taxonomy``):

- offline (default): :class:`kiku.classify.LocalClassifier` on the packaged embedding model,
  from the taxonomy's descriptions and examples (``prototypes`` mode);
- ``llm="local"`` or any ``PROVIDER/MODEL``: :class:`kiku.classify.LLMClassifier` with the same
  taxonomy as its few-shot prompt.

The result is the run's ``gaps.parquet`` (``conversation_id, gap_type, confidence, backend``),
written through :meth:`kiku.store.RunStore.write_derived`; ``kiku report`` shows each topic's
mix and can keep one gap type. Accuracy on hand-labelled W&B queries: ``benchmarks/gaps.py``.

Example:
    >>> from kiku.gaps import gap_taxonomy
    >>> gap_taxonomy().label_names
    ['capability', 'inventory', 'other']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from kiku.classify.data import Item
from kiku.classify.taxonomy import Taxonomy, load_taxonomy
from kiku.errors import KikuError
from kiku.store import GAP_SCHEMA, RunStore, open_finished_run, read_frame

#: The built-in taxonomy (package data).
GAP_TAXONOMY = Path(__file__).resolve().parent / "assets" / "gap-taxonomy.yaml"
GAP_COMMAND = "kiku gaps RUN"


class GapSummary(BaseModel):
    """What ``classify_gaps`` did: the backend, the taxonomy and the count of each gap type."""

    backend: str
    taxonomy: str
    taxonomy_version: str
    labels: list[str]
    counts: dict[str, int]
    failures: int = 0

    def line(self) -> str:
        """One line for a terminal.

        >>> GapSummary(backend="local:prototypes", taxonomy="gap-types", taxonomy_version="1",
        ...            labels=["a", "b"], counts={"a": 3, "b": 1}).line()
        'gap types (gap-types v1, local:prototypes): a 3 (75%), b 1 (25%)'
        """
        total = sum(self.counts.values()) or 1
        parts = ", ".join(f"{label} {self.counts.get(label, 0)} ({100 * self.counts.get(label, 0) / total:.0f}%)" for label in self.labels)
        failed = f"; {self.failures} LLM answer(s) failed (labelled {self.labels[-1]})" if self.failures else ""
        return f"gap types ({self.taxonomy} v{self.taxonomy_version}, {self.backend}): {parts}{failed}"


def gap_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The gap taxonomy: the built-in one, or an edited copy at ``path``."""
    return load_taxonomy(path or GAP_TAXONOMY)


def gap_classifier(taxonomy: Taxonomy, llm: str | None = None, examples: Sequence[Item] = (), **llm_options: Any) -> Any:
    """The classifier that sorts requests by gap type: local (offline) or through ``llm``.

    ``examples``: labelled items (``label`` one of the taxonomy's) to learn from besides the
    taxonomy's own examples (the local backend trains a logistic model once every label has 8;
    the LLM backend shows them as few-shot examples). Returns a fitted
    :class:`kiku.classify.LocalClassifier` or :class:`kiku.classify.LLMClassifier`.
    """
    from kiku.classify.backends import LLMClassifier, LocalClassifier, make_llm_client

    if llm is None:
        return LocalClassifier(taxonomy).fit(examples)
    return LLMClassifier(taxonomy, make_llm_client(llm, **llm_options)).fit(examples)


def _backend_name(classifier: Any, llm: str | None) -> str:
    return f"llm:{llm}" if llm is not None else f"local:{getattr(classifier, 'mode', 'local')}"


def classify_gaps(
    run_dir: str | Path,
    taxonomy: str | Path | None = None,
    llm: str | None = None,
    progress: Any = None,
    examples: str | Path | None = None,
    **llm_options: Any,
) -> GapSummary:
    """Sort every conversation of a run by gap type and store ``gaps.parquet``.

    The classifier reads each conversation's user turns (:func:`kiku.classify.read_items`).
    ``examples``: a file of labelled requests (JSONL ``{"text", "label"}``, or a ``kiku classify
    review`` log) to learn from. ``progress(n)`` is called as batches finish.

    >>> classify_gaps("runs/wandb").counts      # doctest: +SKIP
    {'capability': 31, 'inventory': 480, 'other': 49}
    """
    from kiku.classify.data import read_items

    run_dir = Path(run_dir)
    store = open_finished_run(run_dir, ("conversations",))
    chosen = gap_taxonomy(taxonomy)
    items = read_items(run_dir)
    labelled = read_items(examples) if examples is not None else []
    unknown = sorted({label for item in labelled for label in item.gold_labels} - set(chosen.label_names))
    if unknown:
        raise KikuError(f"{examples}: labels {', '.join(unknown)} are not in the gap taxonomy ({', '.join(chosen.label_names)})")
    classifier = gap_classifier(chosen, llm, labelled, **llm_options)
    predictions = classifier.predict(items, progress=progress)
    backend = _backend_name(classifier, llm)
    table = pa.table({
        "conversation_id": [item.id for item in items],
        "gap_type": [p.label for p in predictions],
        "confidence": [float(p.confidence) for p in predictions],
        "backend": [backend] * len(items),
    }, schema=GAP_SCHEMA)
    counts = Counter(p.label for p in predictions)
    summary = GapSummary(backend=backend, taxonomy=chosen.name, taxonomy_version=chosen.version,
                         labels=chosen.label_names, counts={label: counts.get(label, 0) for label in chosen.label_names},
                         failures=int(getattr(classifier, "failures", 0)))
    with store.lock():
        store.write_derived("gaps", table, **summary.model_dump(), taxonomy_file=str(taxonomy) if taxonomy else "built-in",
                            examples=str(examples) if examples else None, labelled_examples=len(labelled))
    return summary


def read_gaps(run_dir: str | Path) -> dict[str, str]:
    """Conversation id -> gap type, from the run's ``gaps.parquet`` (a one-line error before ``kiku gaps``)."""
    store = RunStore(run_dir)
    store.check_derived("gaps", GAP_COMMAND.replace("RUN", str(run_dir)))
    frame = read_frame(run_dir, "gaps", ["conversation_id", "gap_type"])
    return dict(zip(frame.conversation_id.astype(str), frame.gap_type.astype(str)))


def gap_labels(run_dir: str | Path) -> list[str]:
    """The gap types of the taxonomy the run's gaps were sorted with, in taxonomy order."""
    record = RunStore(run_dir).derived_record("gaps") or {}
    labels = record.get("labels")
    return list(labels) if labels else gap_taxonomy().label_names
