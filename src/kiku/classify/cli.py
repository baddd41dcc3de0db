"""``kiku classify ...`` (a Typer sub-app) and ``kiku drift``.

Wiring in kiku's main CLI::

    from kiku.classify.cli import classify_app, drift
    app.add_typer(classify_app, name="classify")
    app.command("drift")(drift)
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from kiku.cli_common import error_console as errors
from kiku.cli_common import progress_bar, user_errors
from kiku.errors import InputError

if TYPE_CHECKING:
    from kiku.classify.backends import Classifier

classify_app = typer.Typer(help="Turn topics into classifiers: define, weak-label, review, evaluate, apply.", no_args_is_help=True)
console = Console()


class BackendName(StrEnum):
    local = "local"
    llm = "llm"


class WindowName(StrEnum):
    day = "day"
    week = "week"
    month = "month"


class MethodName(StrEnum):
    chi2 = "chi2"
    psi = "psi"


class BaselineName(StrEnum):
    first = "first"
    previous = "previous"


def build_classifier(taxonomy_path: Path, backend: BackendName, llm: str | None, few_shot: bool = True, seed: int = 0) -> Classifier:
    """A classifier for the CLI: local (MiniLM) or LLM (``--llm SPEC``, default ``local``)."""
    from kiku.classify.backends import LLMClassifier, LocalClassifier, make_llm_client
    from kiku.classify.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(taxonomy_path)
    if backend == BackendName.llm or llm:
        return LLMClassifier(taxonomy, make_llm_client(llm or "local"), few_shot=few_shot, seed=seed)
    return LocalClassifier(taxonomy, seed=seed, use_taxonomy_examples=few_shot)


def _fit_with_gold(classifier, gold: Path | None) -> None:  # noqa: ANN001
    from kiku.classify.data import read_items

    items = read_items(gold) if gold else []
    classifier.fit(items)
    mode = getattr(classifier, "mode", "llm")
    labelled = sum(1 for i in items if i.gold_labels)
    errors.print(f"classifier: {type(classifier).__name__} ({mode}), trained on {labelled} labelled items + taxonomy examples",
                 markup=False, highlight=False)


@classify_app.command("init")
def init(
    path: Path = typer.Argument(..., help="taxonomy YAML file to write"),
    from_run: Path | None = typer.Option(None, "--from-run", help="run folder whose top topics become labels"),
    top: int = typer.Option(8, "--top", help="how many topics become labels"),
    level: int | None = typer.Option(None, "--level", help="hierarchy level to take topics from (default: highest)"),
    examples: int = typer.Option(5, "--examples", help="central members per topic kept as examples"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Draft a taxonomy: from a run's top topics, or a template to edit."""
    from kiku.classify.bootstrap import taxonomy_from_run
    from kiku.classify.taxonomy import Label, Taxonomy

    with user_errors():
        if path.exists() and not force:
            raise InputError(str(path), "file exists", "pass --force to overwrite it")
        if from_run is not None:
            taxonomy = taxonomy_from_run(from_run, top_n=top, level=level, examples_per_label=examples)
        else:
            taxonomy = Taxonomy(name="my-taxonomy", labels=[
                Label(name="billing", description="Questions about invoices, plans, refunds and payments.", examples=["How do I get a refund?"]),
                Label(name="other", description="Anything that fits no other label."),
            ])
        taxonomy.save(path)
        console.print(f"wrote {path} with {len(taxonomy.labels)} labels: {', '.join(taxonomy.label_names)}", markup=False, highlight=False)
        console.print("edit the names and descriptions, then: kiku classify label DATA --taxonomy " + str(path), markup=False, highlight=False)


@classify_app.command("label")
def label(
    data: Path = typer.Argument(..., help="JSONL/JSON of conversations or queries, or a run folder"),
    taxonomy: Path = typer.Option(..., "--taxonomy", "-t", help="taxonomy YAML"),
    out: Path = typer.Option(..., "--out", "-o", help="weak-label JSONL to write"),
    backend: BackendName = typer.Option(BackendName.local, "--backend"),
    llm: str | None = typer.Option(None, "--llm", help="LLM spec for --backend llm (default: local)"),
    gold: Path | None = typer.Option(None, "--gold", help="labelled items to learn from (JSONL or review log)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Predict weak labels with a confidence for every item, for review."""
    from kiku.classify.data import read_items, write_jsonl

    with user_errors():
        classifier = build_classifier(taxonomy, backend, llm, seed=seed)
        items = read_items(data)
        _fit_with_gold(classifier, gold)
        with progress_bar(len(items), "labelling") as advance:
            predictions = classifier.predict(items, progress=advance)
        rows: list[dict[str, Any]] = [{
            "id": item.id, "text": item.text, "context": item.context,
            "created_at": item.created_at.isoformat() if item.created_at else None,
            "predicted_label": p.label, "predicted_labels": p.labels, "confidence": round(p.confidence, 4), "scores": p.scores,
        } for item, p in zip(items, predictions)]
        # review the least certain items first: they teach the most
        rows.sort(key=lambda row: row["confidence"])
        write_jsonl(out, rows)
        low = sum(1 for row in rows if row["confidence"] < 0.5)
        console.print(f"wrote {len(rows)} weak labels to {out} ({low} below confidence 0.5, listed first)", markup=False, highlight=False)
        console.print(f"review them with: kiku classify review {out}", markup=False, highlight=False)


@classify_app.command("review")
def review(
    weak: Path = typer.Argument(..., help="weak-label JSONL from kiku classify label"),
    gold: Path | None = typer.Option(None, "--gold", help="append-only gold JSONL (default: gold.jsonl next to WEAK)"),
    taxonomy: Path | None = typer.Option(None, "--taxonomy", "-t", help="taxonomy YAML (labels offered for relabelling)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8766, "--port"),
) -> None:
    """Open a review page: accept (a), reject (r), relabel (1-9), skip (s), undo (u)."""
    from kiku.classify.data import read_items
    from kiku.classify.review import ReviewSession
    from kiku.classify.taxonomy import load_taxonomy
    from kiku.web.review import serve_review

    with user_errors():
        items = read_items(weak)
        if taxonomy is not None:
            labels = load_taxonomy(taxonomy).label_names
        else:
            labels = sorted({i.predicted_label for i in items if i.predicted_label})
        if not labels:
            raise InputError(str(weak), "no predicted labels and no --taxonomy", "pass --taxonomy or a file from kiku classify label")
        session = ReviewSession(items, labels, gold or weak.with_name("gold.jsonl"))
        state = session.state()
        console.print(f"reviewing {state['total']} items ({state['done']} already done) → {session.log.path}", markup=False, highlight=False)
        console.print(f"open http://{host}:{port}/  (Ctrl+C to stop; every decision is already saved)", markup=False, highlight=False)
        serve_review(session, host=host, port=port)


@classify_app.command("eval")
def evaluate_command(
    gold: Path = typer.Argument(..., help="labelled JSONL (text + label) or a review gold log"),
    taxonomy: Path = typer.Option(..., "--taxonomy", "-t"),
    backend: BackendName = typer.Option(BackendName.local, "--backend"),
    llm: str | None = typer.Option(None, "--llm", help="LLM spec for --backend llm (default: local)"),
    compare: Path | None = typer.Option(None, "--compare", help="another taxonomy YAML, scored on the same split"),
    compare_backend: BackendName | None = typer.Option(None, "--compare-backend", help="another backend, same split"),
    test_size: float = typer.Option(0.5, "--test-size", help="share of gold items held out for testing"),
    seed: int = typer.Option(0, "--seed"),
    no_train: bool = typer.Option(False, "--no-train", help="do not learn from the dev part (taxonomy only)"),
    no_examples: bool = typer.Option(False, "--no-examples", help="ignore the taxonomy's examples (zero-shot / no few-shot)"),
    confusion_png: Path | None = typer.Option(None, "--confusion-png", help="where to save the confusion matrix (default: next to GOLD)"),
    show: int = typer.Option(20, "--show", help="misclassified items to list"),
    json_out: Path | None = typer.Option(None, "--json", help="write the results as JSON"),
) -> None:
    """Score a classifier on a seeded split of gold labels; optionally compare with another."""
    import json

    from kiku.classify.data import read_items
    from kiku.classify.evaluate import (
        comparison_table,
        confusion_table,
        evaluate,
        misclassified_table,
        save_confusion_png,
        summary_table,
    )

    with user_errors():
        items = read_items(gold)
        runs = [(taxonomy, backend)]
        if compare is not None:
            runs.append((compare, compare_backend or backend))
        elif compare_backend is not None:
            runs.append((taxonomy, compare_backend))
        results = []
        for path, which in runs:
            classifier = build_classifier(path, which, llm if which == BackendName.llm else None, few_shot=not no_examples, seed=seed)
            name = f"{path.stem} v{classifier.taxonomy.version} ({which.value})"
            with progress_bar(None, f"evaluating {name}") as advance:
                result = evaluate(classifier, items, test_size=test_size, seed=seed, train=not no_train, name=name, progress=advance)
            results.append(result)
            console.print(summary_table(result))
            if result.confusion:
                console.print(confusion_table(result))
                png = confusion_png or gold.with_name(f"{gold.stem}.confusion.png")
                if len(runs) > 1:
                    png = png.with_name(f"{png.stem}.{len(results)}{png.suffix}")
                save_confusion_png(result, png)
                console.print(f"confusion matrix saved to {png}", markup=False, highlight=False)
            if show and result.misclassified:
                console.print(misclassified_table(result, show))
        if len(results) > 1:
            console.print(comparison_table(results))
        if json_out is not None:
            json_out.write_text(json.dumps([r.model_dump() for r in results], indent=2))


@classify_app.command("apply")
def apply_command(
    data: Path = typer.Argument(..., help="JSONL/JSON of conversations or queries, or a run folder"),
    taxonomy: Path = typer.Option(..., "--taxonomy", "-t"),
    out: Path = typer.Option(..., "--out", "-o", help="labelled Parquet to write"),
    backend: BackendName = typer.Option(BackendName.local, "--backend"),
    llm: str | None = typer.Option(None, "--llm"),
    gold: Path | None = typer.Option(None, "--gold", help="labelled items to learn from (JSONL or review log)"),
    chart: Path | None = typer.Option(None, "--chart", help="distribution chart PNG (default: next to OUT)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Label every item of a dataset or run; write Parquet, show the label distribution."""
    from kiku.classify.apply import apply_classifier, distribution_table, label_distribution, save_distribution_png, write_parquet
    from kiku.classify.data import read_items

    with user_errors():
        classifier = build_classifier(taxonomy, backend, llm, seed=seed)
        items = read_items(data)
        _fit_with_gold(classifier, gold)
        with progress_bar(len(items), "applying") as advance:
            frame = apply_classifier(classifier, items, progress=advance)
        write_parquet(frame, out)
        distribution = label_distribution(frame, classifier.taxonomy.label_names)
        console.print(distribution_table(distribution, f"label distribution ({len(frame)} items)"))
        png = chart or out.with_suffix(".distribution.png")
        save_distribution_png(distribution, png, f"{classifier.taxonomy.name} v{classifier.taxonomy.version}: {len(frame)} items")
        missing_time = int(frame["created_at"].isna().sum())
        console.print(f"wrote {out} ({len(frame)} rows) and {png}", markup=False, highlight=False)
        if missing_time:
            console.print(f"note: {missing_time} items have no created_at; kiku drift cannot place them in time", markup=False, highlight=False)


def drift(
    labelled: Path = typer.Argument(..., help="labelled Parquet from kiku classify apply"),
    by: WindowName = typer.Option(WindowName.week, "--by", help="time window"),
    method: MethodName = typer.Option(MethodName.chi2, "--method", help="chi2 (p-value) or psi (stability index)"),
    threshold: float | None = typer.Option(None, "--threshold", help="drift when p < threshold (chi2, default 0.01) or PSI > threshold (psi, default 0.2)"),
    baseline: BaselineName = typer.Option(BaselineName.first, "--baseline", help="compare with the first window(s) or the previous one"),
    baseline_windows: int = typer.Option(1, "--baseline-windows", help="how many first windows form the baseline"),
    surge_ratio: float = typer.Option(2.0, "--surge-ratio", help="a label surges when its share grows this many times..."),
    surge_z: float = typer.Option(3.0, "--surge-z", help="...and a two-proportion z-test gives at least this z"),
    min_count: int = typer.Option(20, "--min-count", help="windows with fewer items are never flagged"),
    chart: Path | None = typer.Option(None, "--chart", help="chart PNG (default: next to LABELLED)"),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help="exit with status 1 when drift or a surge is flagged"),
) -> None:
    """Label shares per time window; flag windows whose label mix shifts and labels that surge."""
    from kiku.classify.drift import detect_drift, drift_table, read_labelled, save_drift_png

    with user_errors():
        frame = read_labelled(labelled)
        report = detect_drift(frame, by=by.value, method=method.value, baseline=baseline.value,
                              baseline_windows=baseline_windows, threshold=threshold, surge_ratio=surge_ratio,
                              surge_z=surge_z, min_count=min_count)
        console.print(drift_table(report))
        png = chart or labelled.with_suffix(".drift.png")
        save_drift_png(report, png)
        flagged = [w for w in report.windows if w.drifted or w.surges]
        if report.skipped_without_time:
            console.print(f"note: {report.skipped_without_time} rows without created_at are not in any window", markup=False, highlight=False)
        console.print(f"{len(flagged)} of {len(report.windows)} windows flagged; chart saved to {png}", markup=False, highlight=False)
    if fail_on_drift and flagged:
        errors.print(f"drift detected in {', '.join(w.window for w in flagged)}", markup=False, highlight=False)
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - a standalone entry for trying the sub-app
    app = typer.Typer()
    app.add_typer(classify_app, name="classify")
    app.command("drift")(drift)
    app(sys.argv[1:])
if __name__ == "__main__":  # pragma: no cover
    main()
