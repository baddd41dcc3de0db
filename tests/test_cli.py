"""The real `kiku` CLI in a subprocess: run, tree, export, sql, and one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cli_helpers import kiku


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, small_input: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    result = kiku("run", small_input, "--out", out, "--clusters", "12")
    assert result.returncode == 0, result.stderr
    assert "conversations: 200" in result.stdout
    assert "output:" in result.stdout
    for stage in ("load", "describe", "embed", "project", "cluster", "name", "hierarchy"):
        assert stage in result.stdout
    return out


def test_tree_prints_named_topics_with_counts_and_shares(cli_run: Path) -> None:
    result = kiku("tree", cli_run)
    assert result.returncode == 0, result.stderr
    assert "200 conversations" in result.stdout
    assert "%" in result.stdout


def test_export_assignments_csv(cli_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "assignments.csv"
    result = kiku("export", cli_run, "assignments", out)
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["conversation_id", "level", "cluster_id", "cluster_name"]
    levels = {r["level"] for r in rows}
    assert len(rows) == 200 * len(levels)
    assert len({r["cluster_id"] for r in rows if r["level"] == "0"}) == 12
    assert all(r["cluster_name"] for r in rows)


def test_sql_prints_a_table_and_bad_sql_is_one_line(cli_run: Path) -> None:
    ok = kiku("sql", cli_run, "select count(*) as n from conversations")
    assert ok.returncode == 0 and "200" in ok.stdout
    bad = kiku("sql", cli_run, "select nope from clusters")
    assert bad.returncode == 2
    assert "SQL error" in bad.stderr and "Traceback" not in bad.stderr


def test_rerun_reuses_stages(cli_run: Path, small_input: Path) -> None:
    result = kiku("run", small_input, "--out", cli_run, "--clusters", "12")
    assert result.returncode == 0
    assert result.stdout.count("reused") >= 7


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "no such file"),
        ("", [], "empty"),
        ("hello,world\n", ["--format", "nonsense"], "nonsense"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, content: str | None, args: list[str], message: str) -> None:
    path = tmp_path / "input.jsonl"
    if content is not None:
        path.write_text(content)
    result = kiku("run", path, "--out", tmp_path / "run", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0].lower(), result.stderr


def test_commands_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = kiku("tree", tmp_path)
    assert result.returncode == 2 and "not a kiku run" in result.stderr


def test_every_run_setting_is_a_kiku_run_option_with_its_default_and_help() -> None:
    """RunConfig is the one configuration model: `kiku run` offers each field once, as declared."""
    import typer.main
    from rich.text import Text

    from kiku.cli import RUN_OPTION_FIELDS, app
    from kiku.config import RunConfig

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = {p.name: p for p in command.params}
    list_options = {"mapping"}  # --map FIELD=COLUMN ..., parsed into the mapping dict
    for name, info in RunConfig.model_fields.items():
        param = params.get(RUN_OPTION_FIELDS.get(name, name))
        assert param is not None, f"RunConfig.{name} has no kiku run option"
        assert Text.from_markup(param.help or "").plain == info.description, name  # help is Rich markup: as shown
        if name not in list_options:
            assert param.default == info.default, (name, param.default, info.default)


@pytest.mark.parametrize(("args", "message"), [
    (["--clusterer", "hdbscan", "--clusters", "5"], "--clusters sets the number of k-means clusters"),
    (["--min-cluster-size", "5"], "--min-cluster-size is an HDBSCAN setting"),
    (["--concurrency", "2"], "--concurrency sets LLM requests in flight; add --llm"),
    (["--llm-threads", "2"], "--llm-threads sets the local model's CPU threads"),
    (["--llm", "openai/gpt-4o-mini", "--llm-threads", "2"], "--llm-threads sets the local model's CPU threads"),
    (["--privacy-min-users", "3"], "--privacy-min-users counts distinct users; add --user-field"),
    (["--user-field", "user"], "--user-field is read by --privacy-min-users"),
    (["--embedder", "bert"], "unknown embedder 'bert'; choose one of: minilm"),
    (["--clusterer", "dbscan"], "--clusterer dbscan: expected 'kmeans' or 'hdbscan'"),
])
def test_options_the_mode_would_ignore_are_refused_in_one_line(small_input: Path, tmp_path: Path,
                                                               args: list[str], message: str) -> None:
    result = kiku("run", small_input, "--out", tmp_path / "run", *args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()
