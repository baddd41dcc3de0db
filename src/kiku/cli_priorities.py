"""``kiku join``, ``kiku gaps`` and ``kiku report``: outcomes in, gap types, topics ranked by impact.

A thin layer over :mod:`kiku.outcomes`, :mod:`kiku.gaps` and :mod:`kiku.priorities`; registered
in ``kiku.cli`` by :func:`register`. ``kiku run … --join feedback.csv`` calls
:func:`join_after_run` once the run has finished.

Example::

    kiku join runs/wandb examples/wandb-feedback.csv
    kiku gaps runs/wandb
    kiku report runs/wandb --outcome thumbs_up --weight revenue --out priorities.csv
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kiku.cli_common import error_console, friendly_errors, new_bars, stop_bars

console = Console()


def _print_join(lines: Sequence[str]) -> None:
    for k, line in enumerate(lines):
        console.print(Text(line, style="" if k == 0 else "yellow"), highlight=False)


def join_after_run(run_dir: Path, tables: Sequence[Path], id_column: str | None = None) -> None:
    """Join each outcome table into a finished run and print what matched (``kiku run --join``)."""
    from kiku.outcomes import join_table

    for table in tables:
        _print_join(join_table(run_dir, table, id_column=id_column).lines())


@friendly_errors
def join(
    run_dir: Path = typer.Argument(..., help="run folder"),
    table: Path | None = typer.Argument(None, help="outcome table: .csv, .parquet or .jsonl with a conversation id column"),
    metadata: list[str] = typer.Option([], "--metadata", help="store this field of the input's metadata as an outcome (repeatable)"),
    id_column: str | None = typer.Option(None, "--id-column", help="the table's conversation id column (default: conversation_id, id, chat_id, query_id or session_id)"),
    column: list[str] = typer.Option([], "--column", help="join only this column (repeatable; default: every column but the id)"),
    kind: list[str] = typer.Option([], "--kind", help="NAME=binary|numeric|categorical, overriding the inferred kind (repeatable)"),
) -> None:
    """Join outcomes (thumbs up, rating, revenue, resolution) to a run by conversation id; report ids that match nothing."""
    from kiku.errors import KikuError
    from kiku.outcomes import join_metadata, join_table, parse_kinds

    kinds = parse_kinds(kind)
    if table is None and not metadata:
        raise KikuError("nothing to join: pass an outcome table (kiku join RUN feedback.csv) or --metadata FIELD")
    if table is not None:
        _print_join(join_table(run_dir, table, id_column=id_column, columns=column or None, kinds=kinds).lines())
    if metadata:
        _print_join(join_metadata(run_dir, metadata, kinds=kinds).lines())


@friendly_errors
def gaps(
    run_dir: Path | None = typer.Argument(None, help="run folder"),
    taxonomy: Path | None = typer.Option(None, "--taxonomy", help="gap taxonomy YAML (default: the built-in capability / inventory / other)"),
    llm: str | None = typer.Option(None, "--llm", help="classify through an LLM with the same taxonomy: local, or PROVIDER/MODEL"),
    examples: Path | None = typer.Option(None, "--examples", help="labelled requests (JSONL with text and label) to learn from besides the taxonomy's examples"),
    save_taxonomy: Path | None = typer.Option(None, "--save-taxonomy", help="write a copy of the built-in taxonomy here to edit, and stop"),
) -> None:
    """Sort each conversation as a capability gap, an inventory gap or other; store gaps.parquet."""
    from kiku.errors import KikuError
    from kiku.gaps import GAP_TAXONOMY, classify_gaps

    if save_taxonomy is not None:
        if save_taxonomy.exists():
            raise KikuError(f"{save_taxonomy} exists; choose another file name")
        shutil.copyfile(GAP_TAXONOMY, save_taxonomy)
        console.print(Text(f"wrote {save_taxonomy}; edit it and pass --taxonomy {save_taxonomy}"))
        return
    if run_dir is None:
        raise KikuError("pass the run folder: kiku gaps RUN")
    bars = new_bars(error_console)
    task = bars.add_task("gap types", total=None)
    bars.start()
    failed = True
    try:
        summary = classify_gaps(run_dir, taxonomy=taxonomy, llm=llm, examples=examples, progress=lambda n: bars.advance(task, n))
        failed = False
    finally:
        stop_bars(bars, failed=failed)
    console.print(Text(summary.line()), highlight=False)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rate(value: Any, measure: str) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if measure == "proportion" else f"{value:.3g}"


def report_table(report: Any, top: int | None, level: int | None) -> Table:
    """The terminal table of a :class:`kiku.priorities.PriorityReport` (``top`` rows)."""
    rows = [r for r in report.rows if level is None or r["level"] == level]
    shown = rows if top is None else rows[:top]
    what = report.outcome + (f"={report.positive}" if report.positive else "")
    base = _rate(report.baseline, report.measure)
    title = f"priorities: {what} (baseline {base} over {report.conversations} conversations" + (
        f", gap type {report.gap}" if report.gap else "") + ")"
    table = Table(title=title, show_header=True, header_style="bold")
    for name, justify in (("rank", "right"), ("level", "right"), ("topic", "left"), ("n", "right"),
                          ("rate [95% CI]", "right"), ("impact", "right"), ("flag", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    if report.gap_labels:
        table.add_column("gap mix", style="dim")
    for row in shown:
        interval = f"{_rate(row['rate'], report.measure)} [{_rate(row['ci_low'], report.measure)}-{_rate(row['ci_high'], report.measure)}]"
        flag = row["flag"] or (row["status"] if row["status"] != "judged" else "")
        style = "red" if row["flag"] == "under" else "green" if row["flag"] == "over" else "dim" if row["status"] != "judged" else ""
        cells: list[str | Text] = [_number(row["rank"]), str(row["level"]), Text(row["cluster_name"]), str(row["n"]), interval,
                 _number(row["impact"], 1), Text(flag, style=style)]
        if report.gap_labels:
            mix = " ".join(f"{label[:3]} {100 * (row.get(f'gap_{label}') or 0):.0f}%" for label in report.gap_labels)
            cells.append(mix)
        table.add_row(*cells)
    return table


@friendly_errors
def report(
    run_dir: Path = typer.Argument(..., help="run folder"),
    outcome: str = typer.Option(..., "--outcome", help="outcome to rank by: NAME (binary or numeric) or NAME=VALUE (categorical)"),
    weight: str | None = typer.Option(None, "--weight", help="numeric outcome summed as the volume of the impact (e.g. revenue)"),
    gap: str | None = typer.Option(None, "--gap", help="keep only conversations of this gap type (kiku gaps RUN first)"),
    level: int | None = typer.Option(None, "--level", help="show only this level (the --out file keeps every level)"),
    min_size: int = typer.Option(10, "--min-size", help="topics with fewer conversations with a value are too small to judge"),
    alpha: float = typer.Option(0.05, "--alpha", help="flag topics whose corrected p-value is below this"),
    correction: str = typer.Option("holm", "--correction", help="multiple-comparison correction: holm (family-wise) or bh (Benjamini-Hochberg, false discovery rate)"),
    lower_is_better: bool = typer.Option(False, "--lower-is-better", help="a lower rate is better (latency, escalations)"),
    seed: int = typer.Option(0, "--seed", help="seed of the bootstrap intervals (numeric outcomes)"),
    top: int = typer.Option(20, "--top", help="rows to print"),
    out: Path | None = typer.Option(None, "--out", help="write every row, in rank order, to .csv or .json"),
) -> None:
    """Rank topics at every level by impact (volume x shortfall against the overall rate, or the weight summed)."""
    from kiku.priorities import priority_report, write_report

    result = priority_report(run_dir, outcome, weight=weight, gap=gap, min_size=min_size, alpha=alpha,
                             correction=correction, lower_is_better=lower_is_better, seed=seed)  # type: ignore[arg-type]
    console.print(report_table(result, top, level))
    console.print(Text(result.method_line(), style="dim"), highlight=False)
    for note in result.notes:
        console.print(Text(note, style="yellow"), highlight=False)
    flagged = sum(1 for r in result.rows if r["flag"] == "under")
    small = sum(1 for r in result.rows if r["status"] != "judged")
    console.print(Text(f"{flagged} topic(s) significantly under the baseline; {small} too small to judge; "
                       f"{len(result.rows)} topic(s) in all"), highlight=False)
    if out is not None:
        write_report(result, out)
        console.print(Text(f"wrote {len(result.rows)} rows to {out}"))


def register(app: typer.Typer) -> None:
    """Add ``join``, ``gaps`` and ``report`` to the ``kiku`` app."""
    app.command("join")(join)
    app.command("gaps")(gaps)
    app.command("report")(report)
