"""``kiku assign``, ``kiku compare`` and ``kiku edit``: a thin Typer layer over ``kiku.assign``,
``kiku.compare`` and ``kiku.edits`` (registered at the bottom of ``kiku.cli``).

Example::

    kiku assign runs/week1 week2.jsonl --out runs/week2
    kiku compare runs/week1 runs/week2 --out changes.csv
    kiku edit runs/week1 rename L0-003 "Card arrival"
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from kiku.cli_common import RESUME_HINT, friendly_errors

console = Console()


def _mapping(values: list[str] | None) -> dict[str, str] | None:
    from kiku.errors import KikuError

    if not values:
        return None
    out = {}
    for value in values:
        key, sep, column = value.partition("=")
        if not sep or not key or not column:
            raise KikuError(f"--map {value}: expected FIELD=COLUMN, e.g. --map text=question")
        out[key.strip()] = column.strip()
    return out


@friendly_errors(on_interrupt=RESUME_HINT)
def assign_command(
    base_run: Path = typer.Argument(..., help="the run whose topics the new conversations get"),
    input_path: Path = typer.Argument(..., help="new conversations (any format kiku run reads)"),
    out: Path = typer.Option(..., "--out", help="the new run folder"),
    quantile: float = typer.Option(0.02, "--quantile", help="share of the base run's own members its thresholds would leave unassigned"),
    format: str | None = typer.Option(None, "--format", help="input format; detected when omitted"),
    map_: list[str] | None = typer.Option(None, "--map", help="column mapping FIELD=COLUMN (default: the base run's)"),
) -> None:
    """Assign new conversations to BASE_RUN's topics (same ids, names and map); far ones become candidate new topics."""
    from kiku.assign import assign, check_assignable
    from kiku.cli import RichProgress
    from kiku.cli_common import error_console

    check_assignable(base_run, input_path, out, quantile=quantile, format=format, mapping=_mapping(map_))  # before any bar
    with RichProgress(error_console) as progress:
        run = assign(base_run, input_path, out, quantile=quantile, format=format, mapping=_mapping(map_), progress=progress)
    info = run.manifest["assign"]
    console.print(Text(
        f"{info['assigned']} of {info['conversations']} conversations assigned to {base_run}'s topics "
        f"({100 * info['assigned_share']:.1f}%); {info['unassigned']} unassigned, "
        f"{len(info['new_topics'])} candidate new topics; {info['seconds']['total']:.1f} s"))
    console.print(f"output: [bold]{escape(str(out))}[/]  {escape(f'(kiku tree {out} · kiku compare {base_run} {out})')}")


def _print_comparison(comparison, limit: int) -> None:  # noqa: ANN001 - kiku.compare.Comparison
    table = Table(title=Text(f"{comparison.label_a} ({comparison.total_a}) → {comparison.label_b} ({comparison.total_b}), "
                             f"level {comparison.level}"), header_style="bold")
    for column in ("topic", "id", "share A", "share B", "change [95% interval]", ""):
        table.add_column(column, justify="right" if column.startswith(("share", "change")) else "left")
    for row in comparison.rows[:limit]:
        flag = {"growth": "[green]▲ growth[/]", "decline": "[red]▼ decline[/]"}.get(row.direction, "")
        if row.status:
            flag = (flag + " " if flag else "") + f"[yellow]{row.status}[/]"
        if row.is_noise:
            flag = "[dim]not a topic[/]"
        table.add_row(Text(row.name[:60]), Text(row.cluster_id), f"{100 * row.share_a:.1f}%", f"{100 * row.share_b:.1f}%",
                      f"{100 * row.change:+.1f} [{100 * row.low:+.1f}, {100 * row.high:+.1f}]", flag)
    console.print(table)
    if len(comparison.rows) > limit:
        console.print(f"[dim]{limit} of {len(comparison.rows)} topics shown, largest change first (--limit)[/]")


@friendly_errors
def compare_command(
    run_a: Path = typer.Argument(..., help="run folder (the baseline)"),
    run_b: Path | None = typer.Argument(None, help="second run folder (omit with --by)"),
    by: str | None = typer.Option(None, "--by", help="compare periods of RUN_A: day, week or month"),
    level: int = typer.Option(0, "--level", help="hierarchy level to compare (0 = base topics)"),
    out: Path | None = typer.Option(None, "--out", help="also write every row to .csv or .json"),
    limit: int = typer.Option(20, "--limit", help="topics shown per table"),
) -> None:
    """Per topic: share in each run (or period), the change with a 95% interval, growth/decline flagged (BH-corrected), new and vanished."""
    from kiku.compare import compare_periods, compare_runs, write_comparisons
    from kiku.errors import KikuError

    if by is None and run_b is None:
        raise KikuError("compare needs two runs (kiku compare RUN_A RUN_B) or --by day|week|month with one run")
    if by is not None and run_b is not None:
        raise KikuError("--by compares the periods of one run; pass one run with --by, or two runs without it")
    comparisons = compare_periods(run_a, by, level) if by is not None else [compare_runs(run_a, run_b, level)]  # type: ignore[arg-type]
    for comparison in comparisons:
        _print_comparison(comparison, limit)
    if out is not None:
        rows = write_comparisons(comparisons, out)
        console.print(Text(f"wrote {rows} rows to {out}"))


EDIT_ACTIONS = ("rename", "merge", "split", "move", "undo", "list", "topics")
EDIT_USAGE = ("kiku edit RUN rename TOPIC NAME | merge KEEP OTHER... [--name N] | split TOPIC [--parts K] | "
              "move TOPIC --to PARENT | move --conversations ID... --to TOPIC | undo [SEQ] | list | topics")


@friendly_errors
def edit_command(
    run: Path = typer.Argument(..., help="run folder"),
    action: str = typer.Argument(..., help="rename, merge, split, move, undo, list or topics"),
    items: list[str] | None = typer.Argument(None, help="topic ids (and the new name for rename, the edit number for undo)"),
    name: str | None = typer.Option(None, "--name", help="merge: name of the merged topic"),
    description: str | None = typer.Option(None, "--description", help="rename: a new description too"),
    to: str | None = typer.Option(None, "--to", help="move: the new parent (a topic) or base topic (conversations)"),
    conversations: bool = typer.Option(False, "--conversations", help="move: the ids are conversation ids"),
    parts: int = typer.Option(2, "--parts", help="split: number of parts"),
    seed: int = typer.Option(0, "--seed", help="split: random seed of the k-means split"),
) -> None:
    """Curate topics by hand: rename, merge, split, move, undo (an append-only log every reader applies); list, topics."""
    from kiku import edits
    from kiku.errors import KikuError

    args = list(items or [])
    if action not in EDIT_ACTIONS:
        raise KikuError(f"unknown edit action {action!r}; use {EDIT_USAGE}")

    def need(count: int, exact: bool = True) -> None:
        if (len(args) != count) if exact else (len(args) < count):
            raise KikuError(f"{action}: wrong arguments; use {EDIT_USAGE}")

    if action == "list":
        _list_edits(run)
        return
    if action == "topics":
        _topics(run)
        return
    if action == "rename":
        need(2)
        edit = edits.rename_topic(run, args[0], args[1], description)
    elif action == "merge":
        need(2, exact=False)
        edit = edits.merge_topics(run, args[0], args[1:], name)
    elif action == "split":
        need(1)
        edit = edits.split_topic(run, args[0], parts, seed)
    elif action == "move":
        if to is None:
            raise KikuError(f"move needs --to; use {EDIT_USAGE}")
        if conversations:
            need(1, exact=False)
            edit = edits.move_conversations(run, args, to)
        else:
            need(1)
            edit = edits.move_topic(run, args[0], to)
    else:
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise KikuError(f"undo takes at most one edit number; use {EDIT_USAGE}")
        edit = edits.undo_edit(run, int(args[0]) if args else None)
        console.print(Text(f"edit #{edit.args['seq']} undone (record #{edit.seq} in {run}/edits.jsonl)"))
        return
    console.print(Text(f"edit #{edit.seq} {edit.action} {edit.target} recorded in {run}/edits.jsonl"))


def _list_edits(run: Path) -> None:
    from kiku.edits import _check_run, edit_statuses, read_edits

    _check_run(run)
    edits = {e.seq: e for e in read_edits(run)}
    if not edits:
        console.print("no edits")
        return
    for status in edit_statuses(run):
        edit = edits[status.seq]
        console.print(Text(f"{status.one_line()}  [{edit.at} by {edit.by or 'unknown'}]"))


def _topics(run: Path) -> None:
    from kiku.edits import _check_run
    from kiku.store import RunStore

    _check_run(run)
    for row in RunStore(run).read_table("clusters", columns=["cluster_id", "level", "parent_id", "name", "size"]).to_pylist():
        console.print(Text(f"{row['cluster_id']}\tlevel {row['level']}\t{row['size']}\t{row['name']}"))


def register(app: typer.Typer) -> None:
    """Add ``assign``, ``compare`` and ``edit`` to the ``kiku`` app."""
    app.command("assign")(assign_command)
    app.command("compare")(compare_command)
    app.command("edit")(edit_command)
