"""The ``kiku`` command line: a thin Typer layer over the public API.

Errors meant for users (``KikuError``, bad settings) are printed as one line and exit with
status 2 (see ``kiku.cli_common``, shared with ``kiku classify``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table
from rich.text import Text

from kiku.cli_common import RESUME_HINT, error_console, friendly_errors, new_bars, stop_bars
from kiku.config import RunConfig, check_settings
from kiku.errors import KikuError
from kiku.explore import EXPORT_CLIP
from kiku.pipeline import Progress
from kiku.store import UNSAFE_SQL_FLAG

app = typer.Typer(
    name="kiku",
    help="Listen to users at scale: describe, cluster, name and map conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
#: RunConfig fields set by an option of another name (the error wrapper names the option).
#: Every RunConfig field is a ``kiku run`` option (tests/test_cli.py checks it); these are the renamed ones.
RUN_OPTION_FIELDS = {"llm_concurrency": "concurrency", "privacy_user_field": "user_field", "mapping": "map_",
                     "engine_address": "address"}


class RichProgress(Progress):
    """Rich progress bars with ETA for every stage (a spinner where the total is unknown)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = new_bars(console)
        self.tasks: dict[str, TaskID] = {}
        self.timings: dict[str, tuple[float, bool]] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        stop_bars(self.bars, failed=exc_type is not None)

    def stage_started(self, stage: str, total: int | None) -> None:
        self.tasks[stage] = self.bars.add_task(stage, total=total)

    def advance(self, stage: str, amount: int) -> None:
        if stage in self.tasks:
            self.bars.advance(self.tasks[stage], amount)

    def stage_finished(self, stage: str, seconds: float, reused: bool) -> None:
        self.timings[stage] = (seconds, reused)
        if reused:
            reused_task = self.bars.add_task(f"{stage} (reused)", total=1)
            self.bars.update(reused_task, completed=1)  # marks it finished: no spinner, no growing clock
            return
        task = self.tasks.get(stage)
        if task is not None:
            total = self.bars.tasks[task].total
            self.bars.update(task, total=total or 1, completed=total or 1)

    def message(self, text: str) -> None:
        self.bars.console.print(Text(text, style="yellow"), highlight=False)


def _parse_mapping(items: list[str]) -> dict[str, Any] | None:
    if not items:
        return None
    mapping: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise KikuError(f"--map {item!r}: expected FIELD=COLUMN, e.g. --map text=question")
        if key == "metadata":
            mapping[key] = value.split(",")
        else:
            mapping[key] = value
    return mapping


def _setting(field: str, *flags: str, default: Any = ...) -> Any:
    """A ``kiku run`` option for a RunConfig field: its default and help come from the field.

    ``default`` overrides the field's default where the option's type differs (``--map`` takes
    a list of FIELD=COLUMN that becomes the ``mapping`` dict).
    """
    from rich.markup import escape

    info = RunConfig.model_fields[field]  # escaped: Typer's help is Rich markup, where [mpnet] would vanish
    return typer.Option(info.default if default is ... else default, *flags, help=escape(info.description or ""))


@app.command()
@friendly_errors(on_interrupt=RESUME_HINT, fields=RUN_OPTION_FIELDS)
def run(
    input_path: Path = typer.Argument(..., help="input file or folder (JSONL, JSON export, CSV, Parquet, Kura checkpoint, HF dataset)"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder to write (resumes when it exists)"),
    format: str | None = _setting("format", "--format", "-f"),
    map_: list[str] = _setting("mapping", "--map", default=[]),
    clusters: int | None = _setting("clusters", "--clusters", "-k"),
    clusterer: str = _setting("clusterer", "--clusterer"),
    min_cluster_size: int | None = _setting("min_cluster_size", "--min-cluster-size"),
    levels: int | None = _setting("levels", "--levels"),
    max_top: int | None = _setting("max_top", "--max-top"),
    seed: int = _setting("seed", "--seed"),
    facet: list[str] = typer.Option([], "--facet", help="user facet function, module:function or file.py:function"),
    embedder: str = _setting("embedder", "--embedder"),
    embed_max_tokens: int = _setting("embed_max_tokens", "--embed-max-tokens"),
    embed_batch_size: int = _setting("embed_batch_size", "--embed-batch-size"),
    project_sample_size: int = _setting("project_sample_size", "--project-sample-size"),
    remove_corpus_name: bool = _setting("remove_corpus_name", "--remove-corpus-name/--keep-corpus-name"),
    merge_pleasantries: bool = _setting("merge_pleasantries", "--merge-pleasantries/--keep-pleasantries-apart"),
    llm: str | None = _setting("llm", "--llm"),
    llm_scope: str = _setting("llm_scope", "--llm-scope"),
    dry_run: bool = typer.Option(False, "--dry-run", help="with --llm: estimate LLM calls, tokens and cost, then stop"),
    concurrency: int | None = _setting("llm_concurrency", "--concurrency"),
    llm_threads: int | None = _setting("llm_threads", "--llm-threads"),
    privacy_min_conversations: int = _setting("privacy_min_conversations", "--privacy-min-conversations"),
    privacy_min_users: int = _setting("privacy_min_users", "--privacy-min-users"),
    user_field: str | None = _setting("privacy_user_field", "--user-field"),
    chunk_rows: int = _setting("chunk_rows", "--chunk-rows"),
    engine: str = _setting("engine", "--engine"),
    address: str | None = _setting("engine_address", "--address"),
    join: list[Path] = typer.Option([], "--join", help="after the run, join this outcome table (CSV/Parquet/JSONL) by conversation id (repeatable; see kiku join)"),
) -> None:
    """Describe, embed, cluster, name and map the conversations in INPUT_PATH."""
    from kiku.describe import OfflineDescriber, load_facet_functions
    from kiku.pipeline import Components, analyze

    settings = {
        "format": format, "mapping": _parse_mapping(map_), "clusterer": clusterer, "clusters": clusters,
        "min_cluster_size": min_cluster_size, "levels": levels, "max_top": max_top, "seed": seed,
        "embedder": embedder, "embed_max_tokens": embed_max_tokens, "embed_batch_size": embed_batch_size,
        "project_sample_size": project_sample_size, "remove_corpus_name": remove_corpus_name,
        "merge_pleasantries": merge_pleasantries, "llm": llm, "llm_scope": llm_scope, "llm_concurrency": concurrency,
        "llm_threads": llm_threads, "privacy_min_conversations": privacy_min_conversations,
        "privacy_min_users": privacy_min_users, "privacy_user_field": user_field,
        "chunk_rows": chunk_rows, "engine": engine, "engine_address": address,
    }
    config = RunConfig.model_validate(settings)
    check_settings(config)
    components = Components(describer=OfflineDescriber(load_facet_functions(facet))) if facet else None
    if dry_run:
        if not llm:
            raise KikuError("--dry-run estimates LLM calls; add --llm PROVIDER/MODEL")
        from kiku.llm.estimate import dry_run_report

        console.print(Text(dry_run_report(input_path, config)), highlight=False)
        return
    start = time.perf_counter()
    with RichProgress(error_console) as progress:
        result = analyze(input_path, out, config, components=components, progress=progress)
    print_report(result.manifest, result.path, progress.timings, time.perf_counter() - start)
    if join:
        from kiku.cli_priorities import join_after_run

        join_after_run(result.path, join)


def print_report(manifest: dict[str, Any], path: Path, timings: dict[str, tuple[float, bool]], seconds: float) -> None:
    """The short end-of-run report: counts, time per stage, skipped input, where the output is."""
    counts = manifest.get("counts", {})
    levels = counts.get("clusters_by_level", {})
    table = Table(title="kiku run", show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("result", style="dim")
    for stage, (stage_seconds, reused) in timings.items():
        table.add_row(stage, "-" if reused else f"{stage_seconds:.1f}", "reused" if reused else "computed")
    table.add_row("[bold]total", f"[bold]{seconds:.1f}", "")
    console.print(table)
    level_text = ", ".join(f"level {k}: {v}" for k, v in sorted(levels.items(), key=lambda kv: int(kv[0])))
    console.print(f"conversations: [bold]{counts.get('conversations', 0)}[/]   topics: {level_text}")
    if counts.get("unclustered"):
        console.print(f"unclustered (not a topic): {counts['unclustered']}")
    if counts.get("truncated_for_embedding"):
        console.print(f"truncated for embedding: {counts['truncated_for_embedding']}")
    skipped = manifest.get("skipped", [])
    if skipped:
        console.print(f"[yellow]skipped {len(skipped)} input record(s):[/]")
        for record in skipped[:5]:
            where = record["source"] + (f":{record['line']}" if record.get("line") else "")
            console.print(Text(f"  {where}: {record['reason']}"), highlight=False)
        if len(skipped) > 5:
            console.print(Text(f"  ... {len(skipped) - 5} more in {path / 'manifest.json'} (\"skipped\")"))
    warnings = manifest.get("warnings", [])
    if warnings:
        console.print(f"[yellow]{len(warnings)} input warning(s)[/] (records kept after a repair):")
        for warning in warnings[:5]:
            console.print(Text(f"  {warning}"), highlight=False)
        if len(warnings) > 5:
            console.print(Text(f"  ... {len(warnings) - 5} more in {path / 'manifest.json'} (\"warnings\")"))
    llm_usage = manifest.get("llm") or {}
    if llm_usage.get("provider"):
        from kiku.llm.client import Usage

        usage = Usage.model_validate(llm_usage)
        console.print(Text(usage.one_line()), highlight=False)
        for name, part in usage.by_stage.items():
            console.print(Text(f"  {name}: {part.calls} calls, {part.cache_hits} cached, {part.prompt_tokens:,} + {part.completion_tokens:,} tokens"), highlight=False)
        for failure in usage.failures[:5]:
            console.print(f"  [yellow]failed[/] {escape(f'{failure.stage} {failure.item_id}: {failure.error[:160]}')}", highlight=False)
        if usage.failures:
            console.print("  run the same command again to retry the failed items (finished answers come from the cache)")
    console.print(f"output: [bold]{escape(str(path))}[/]  {escape(f'(kiku tree {path} · kiku ui {path})')}")


def _open_store(run_dir: Path):  # noqa: ANN202 - kiku.store.RunStore
    """Open a finished run for reading: a clear line when it is not a run, unfinished or damaged."""
    from kiku.store import open_finished_run

    return open_finished_run(run_dir)


@app.command()
@friendly_errors
def tree(
    run_dir: Path = typer.Argument(..., help="run folder"),
    depth: int | None = typer.Option(None, "--depth", help="levels to show below the top"),
    min_share: float = typer.Option(0.0, "--min-share", help="hide topics below this share (0-1)"),
) -> None:
    """Print the named topic hierarchy with counts and shares."""
    from kiku.explore import render_tree

    store = _open_store(run_dir)
    console.print(render_tree(store, depth=depth, min_share=min_share))


EXPORT_KINDS = ("assignments", "clusters", "html")


@app.command()
@friendly_errors
def export(
    run_dir: Path = typer.Argument(..., help="run folder"),
    kind: str = typer.Argument(..., help="assignments, clusters or html"),
    out_file: Path = typer.Argument(..., help="file to write (.csv, .parquet or .jsonl; .html for html)"),
    max_message_chars: int = typer.Option(
        EXPORT_CLIP["message"], "--max-message-chars", min=0, help="html: characters kept per user message (0 = all)"),
    max_reply_chars: int = typer.Option(
        EXPORT_CLIP["reply"], "--max-reply-chars", min=0, help="html: characters kept per assistant reply (0 = all)"),
    max_conversation_chars: int = typer.Option(
        EXPORT_CLIP["conversation"], "--max-conversation-chars", min=0,
        help="html: characters kept per conversation, all messages together (0 = all)"),
) -> None:
    """Export a run: assignments (conversation_id, level, cluster_id, cluster_name), clusters, or an HTML report.

    The HTML report holds every conversation, clipped by the --max-*-chars limits so a large run
    stays a file small enough to share; the viewer says where text was clipped.
    """
    from kiku.explore import export_table

    store = _open_store(run_dir)
    clip_given = [name for name, value, default in (
        ("--max-message-chars", max_message_chars, EXPORT_CLIP["message"]),
        ("--max-reply-chars", max_reply_chars, EXPORT_CLIP["reply"]),
        ("--max-conversation-chars", max_conversation_chars, EXPORT_CLIP["conversation"])) if value != default]
    if kind != "html" and clip_given:
        raise KikuError(f"{clip_given[0]} clips the HTML report's text; use it with 'kiku export RUN html FILE' or drop it")
    if kind == "html":
        try:
            from kiku.web import export_html
        except ImportError as exc:  # the explorer ships with kiku; this guards a broken install
            raise KikuError(f"the HTML export is unavailable: {exc}") from exc
        export_html(run_dir, out_file, max_message_chars=max_message_chars or None,
                    max_conversation_chars=max_conversation_chars or None, max_reply_chars=max_reply_chars or None)
        console.print(Text(f"wrote {out_file}"))
        return
    if kind not in EXPORT_KINDS:
        raise KikuError(f"unknown export {kind!r}; choose one of {', '.join(EXPORT_KINDS)}")
    rows = export_table(store, kind, out_file)
    console.print(Text(f"wrote {rows} rows to {out_file}"))


@app.command()
@friendly_errors
def ui(
    run_dir: Path = typer.Argument(..., help="run folder"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind; the default serves this machine only"),
    port: int = typer.Option(0, "--port", help="port to listen on (0 = any free port)"),
    open_browser: bool = typer.Option(False, "--open", help="open the explorer in the default browser"),
) -> None:
    """Explore a run in the browser: topic tree, map, topic details, conversations, filters, search, trends."""
    from kiku.web import serve

    _open_store(run_dir)
    serve(run_dir, host=host, port=port, open_browser=open_browser)


@app.command()
@friendly_errors
def sql(
    run_dir: Path = typer.Argument(..., help="run folder"),
    query: str = typer.Argument(..., help="DuckDB SQL; tables: conversations, facets, clusters, assignments, projection, embeddings"),
    output: Path | None = typer.Option(None, "--output", help="write the result to .csv/.parquet/.jsonl instead of printing"),
    limit: int = typer.Option(50, "--limit", help="rows to print"),
    unsafe_full_duckdb: bool = typer.Option(False, UNSAFE_SQL_FLAG, help="run any DuckDB statement (COPY, ATTACH, INSTALL, CREATE...) with full file and network access; by default queries only read the run"),
) -> None:
    """Query the run's Parquet files in place with DuckDB (read-only: SELECT, EXPLAIN, DESCRIBE, SHOW)."""
    import duckdb

    from kiku.store import check_read_only

    store = _open_store(run_dir)
    connection = store.connect(read_only=not unsafe_full_duckdb)
    try:
        if not unsafe_full_duckdb:
            check_read_only(connection, query)
        relation = connection.sql(query)
    except duckdb.PermissionException as error:
        message = str(error).splitlines()[0]
        raise KikuError(f"kiku sql reads only this run's tables ({message}); pass {UNSAFE_SQL_FLAG} for full DuckDB") from None
    except duckdb.Error as error:
        message = str(error).splitlines()[0]
        raise KikuError(f"SQL error: {message}") from None
    if relation is None:
        console.print("ok")
        return
    if output is not None:
        from kiku.explore import write_frame

        frame = relation.df()
        write_frame(frame, output)
        console.print(Text(f"wrote {len(frame)} rows to {output}"))
        return
    frame = relation.limit(limit).df()
    table = Table(show_header=True, header_style="bold")
    for column in frame.columns:
        table.add_column(Text(str(column)), overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(Text(_cell(v)) for v in row))
    console.print(table)
    total = relation.shape[0]
    if total > limit:
        console.print(f"[dim]{limit} of {total} rows shown (--limit)[/]")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)[:200]
    text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


from kiku.classify.cli import classify_app  # noqa: E402 - sub-app wiring
from kiku.classify.cli import drift as _drift_command

app.add_typer(classify_app, name="classify")
app.command("drift")(_drift_command)
from kiku.cli_living import register as _register_living  # noqa: E402 - assign, compare, edit

_register_living(app)
from kiku.cli_priorities import register as _register_priorities  # noqa: E402 - join, gaps, report

_register_priorities(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
