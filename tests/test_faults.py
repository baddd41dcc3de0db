"""Every fault gets a clear answer: the run folder, the store and the CLI, as a user meets them.

The real `kiku` CLI in subprocesses over one real offline run (200 W&B queries); damaged,
locked and killed runs are made from copies of it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli_helpers import kiku, kiku_command, kiku_env
from conftest import write_jsonl

STAGE_FILES = ("conversations", "facets", "embeddings", "projection", "cluster_labels", "base_clusters", "clusters",
               "assignments")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, small_input: Path) -> Path:
    out = tmp_path_factory.mktemp("faults") / "run"
    result = kiku("run", small_input, "--out", out, "--clusters", "8")
    assert result.returncode == 0, result.stderr
    return out


def copy_run(run: Path, where: Path) -> Path:
    target = where / "copy"
    shutil.copytree(run, target)
    return target


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The non-empty stderr lines; a clear answer is exactly one, starting ``error:``."""
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = error_lines(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def wait_for(condition, timeout: float = 120.0, what: str = "condition") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


# --- 1. an --out that cannot be a folder -----------------------------------------------------


@pytest.mark.parametrize(("out", "reason"), [("/proc/x", "No such file"), ("/dev/null/x", "Not a directory")])
def test_an_out_that_cannot_be_created_is_one_line(small_input: Path, out: str, reason: str) -> None:
    result = kiku("run", small_input, "--out", out)
    assert_one_error(result, out, "cannot create the run folder", reason, "choose another --out")


# --- 2. two runs into one folder ---------------------------------------------------------------


def test_a_second_run_into_a_busy_folder_is_refused_and_a_killed_run_reads_as_unfinished(
        finished_run: Path, small_input: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path)
    before = manifest(run)["stages"]["load"]["fingerprint"]
    # same ids, different text: the run that owns the folder must never pass off the old results
    rows = [json.loads(line) for line in small_input.read_text().splitlines()]
    for row in rows:
        for message in row["messages"]:
            message["content"] = "a different question: " + message["content"]
    other = write_jsonl(tmp_path / "other.jsonl", rows)
    first = subprocess.Popen(kiku_command("run", other, "--out", run, "--clusters", "8"), env=kiku_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (manifest(run)["stages"].get("load") or {}).get("fingerprint") not in (None, before),
                 what="the first run to load its input")
        second = kiku("run", small_input, "--out", run, "--clusters", "8")
        assert_one_error(second, f"{run} is being written by another kiku run (pid {first.pid})",
                         "wait or use another --out")
        busy = kiku("tree", run)
        assert_one_error(busy, f"being written by another kiku run (pid {first.pid})")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed run finished no topics for the new input, and the old ones are not shown as its
    killed = kiku("tree", run)
    assert_one_error(killed, "the last kiku run stopped before finishing", "kiku run")
    assert "Traceback" not in killed.stderr


# --- 3. a damaged stage file -----------------------------------------------------------------


def test_readers_refuse_a_truncated_file_and_a_rerun_rebuilds_it(finished_run: Path, small_input: Path,
                                                                  tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path)
    clusters = run / "clusters.parquet"
    clusters.write_bytes(clusters.read_bytes()[: clusters.stat().st_size // 2])
    expected = (f"{clusters} is damaged (size/checksum mismatch)", f"--out {run}` again to rebuild it")
    for command in (["tree", run], ["export", run, "clusters", tmp_path / "c.csv"],
                    ["sql", run, "select count(*) from clusters"], ["ui", run, "--port", "0"]):
        assert_one_error(kiku(*command, timeout=120), *expected)

    again = kiku("run", small_input, "--out", run, "--clusters", "8")
    assert again.returncode == 0, again.stderr
    assert f"{clusters} is damaged (size/checksum mismatch); rebuilding it" in again.stderr
    rows = {line.split("│")[1].strip(): line for line in again.stdout.splitlines() if line.count("│") >= 4}
    assert all("reused" in rows[s] for s in ("load", "describe", "embed", "project", "cluster", "name")), again.stdout
    assert "computed" in rows["hierarchy"]
    tree = kiku("tree", run)
    assert tree.returncode == 0 and "200 conversations" in tree.stdout, tree.stderr


def test_a_changed_byte_of_the_same_size_is_caught_by_the_checksum(finished_run: Path, tmp_path: Path) -> None:
    run = copy_run(finished_run, tmp_path)
    embeddings = run / "embeddings.parquet"
    data = bytearray(embeddings.read_bytes())
    data[len(data) // 2] ^= 0xFF
    embeddings.write_bytes(bytes(data))
    result = kiku("sql", run, "select count(*) from clusters")
    assert_one_error(result, f"{embeddings} is damaged (size/checksum mismatch)")


def test_the_manifest_records_each_stage_file_size_and_sha256(finished_run: Path) -> None:
    from kiku.store import file_fingerprint

    stages = manifest(finished_run)["stages"]
    recorded = {name: record for stage in stages.values() for name, record in stage["files"].items()}
    assert set(recorded) == {f"{name}.parquet" for name in STAGE_FILES}
    for name, record in recorded.items():
        digest, size = file_fingerprint(finished_run / name)
        assert record == {"bytes": size, "sha256": digest}


# --- 4. temporary files of a killed run --------------------------------------------------------


def test_temporary_files_of_a_run_killed_during_load_are_removed_by_the_next_run(example_rows: list[dict],
                                                                                 tmp_path: Path) -> None:
    rows = [dict(row, id=f"{i}-{row.get('id', '')}") for i in range(150) for row in example_rows[:400]]
    big = write_jsonl(tmp_path / "big.jsonl", rows)
    run = tmp_path / "run"
    process = subprocess.Popen(kiku_command("run", big, "--out", run), env=kiku_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(run.glob(".conversations.parquet.tmp-*")), what="load to start writing")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert list(run.glob(".conversations.parquet.tmp-*"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = kiku("run", empty, "--out", run)
    assert_one_error(result, "empty")  # the input's own error: the killed run's lock did not outlive it
    assert not list(run.glob(".*.tmp-*"))


# --- 5. the embedding progress bar -----------------------------------------------------------


class RecordingProgress:
    """A pipeline Progress that remembers totals and advances."""

    def __init__(self) -> None:
        self.totals: dict[str, int | None] = {}
        self.advances: dict[str, list[int]] = {}

    def stage_started(self, stage: str, total: int | None) -> None:
        self.totals[stage] = total
        self.advances[stage] = []

    def advance(self, stage: str, amount: int) -> None:
        self.advances[stage].append(amount)

    def stage_finished(self, stage: str, seconds: float, reused: bool) -> None: ...

    def message(self, text: str) -> None: ...


def test_embed_progress_counts_texts_up_to_its_total(finished_run: Path, tmp_path: Path) -> None:
    from kiku.embed import MiniLMEmbedder
    from kiku.pipeline import RunConfig, stage_embed
    from kiku.store import RunStore

    store = RunStore(copy_run(finished_run, tmp_path))
    del store.manifest["stages"]["embed"]  # no cache: every distinct text is embedded
    progress = RecordingProgress()
    stage_embed(store, MiniLMEmbedder(batch_size=16, max_tokens=48), RunConfig(), progress)
    amounts = progress.advances["embed"]
    assert sum(amounts) == progress.totals["embed"] and 0 < progress.totals["embed"] <= 200
    assert max(amounts) <= 16 and len(amounts) > 5

    again = RecordingProgress()  # everything cached now: nothing to embed, nothing to count
    store.manifest["stages"]["embed"] = {"embedder": stage_embed(store, MiniLMEmbedder(batch_size=16, max_tokens=48),
                                                                 RunConfig(), RecordingProgress())["embedder"]}
    stage_embed(store, MiniLMEmbedder(batch_size=16, max_tokens=48), RunConfig(), again)
    assert again.totals["embed"] == 0 and sum(again.advances["embed"]) == 0


# --- 6-9. the command line ---------------------------------------------------------------------


@pytest.fixture
def without_openai(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import openai`` fails, as when the extra is not installed."""
    shadow = tmp_path / "shadow"
    (shadow / "openai").mkdir(parents=True)
    (shadow / "openai" / "__init__.py").write_text("raise ImportError('openai is not installed here')\n")
    return kiku_env(extra_path=shadow)


def test_missing_extra_hint_keeps_its_brackets(small_input: Path, tmp_path: Path, without_openai: dict) -> None:
    result = kiku("run", small_input, "--out", tmp_path / "run", "--llm", "openai/gpt-4o-mini", env=without_openai)
    assert_one_error(result, "pip install 'kiku[openai]'")


def test_dry_run_needs_no_provider_sdk(small_input: Path, tmp_path: Path, without_openai: dict) -> None:
    result = kiku("run", small_input, "--out", tmp_path / "run", "--llm", "openai/gpt-4o-mini", "--dry-run",
                  env=without_openai)
    assert result.returncode == 0, result.stderr
    assert "dry run: ~" in result.stdout and "no LLM call was made" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--clusters", "0"], "--clusters 0: must be at least 2"),
    (["--clusters", "1"], "--clusters 1: must be at least 2"),
    (["--concurrency", "0"], "--concurrency 0: must be at least 1"),
    (["--embed-max-tokens", "9999"], "--embed-max-tokens 9999: must be at most 512"),
])
def test_bad_settings_name_the_option(small_input: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = kiku("run", small_input, "--out", tmp_path / "run", *args)
    assert_one_error(result, message)
    assert "pydantic" not in result.stderr and "Traceback" not in result.stderr


def test_user_text_is_printed_literally_in_errors(tmp_path: Path) -> None:
    strange = tmp_path / "[bold]chats[/bold].jsonl"
    result = kiku("run", strange, "--out", tmp_path / "run")
    assert_one_error(result, "[bold]chats[/bold].jsonl")
    classify = kiku("classify", "label", strange, "--taxonomy", tmp_path / "t[openai].yaml", "--out", tmp_path / "w.jsonl")
    assert_one_error(classify, "t[openai].yaml")


def test_help_shows_no_value_after_flags() -> None:
    for command in (["run", "--help"], ["sql", "--help"], ["classify", "init", "--help"]):
        result = kiku(*command)
        assert result.returncode == 0
        assert "<bool>" not in result.stdout, result.stdout
    assert "--unsafe-full-duckdb" in kiku("sql", "--help").stdout


def test_report_table_names_every_column(finished_run: Path, small_input: Path) -> None:
    result = kiku("run", small_input, "--out", finished_run, "--clusters", "8")
    header = next(line for line in result.stdout.splitlines() if "stage" in line and "seconds" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == ["stage", "seconds", "result"]


def test_ctrl_c_in_classify_is_one_line(example_rows: list[dict], tmp_path: Path) -> None:
    rows = [dict(row, id=f"{i}-{row.get('id', '')}") for i in range(150) for row in example_rows]  # ~84k rows: labelling outlasts the 0.5 s wait on an idle machine
    data = write_jsonl(tmp_path / "queries.jsonl", rows)
    taxonomy = tmp_path / "taxonomy.yaml"
    assert kiku("classify", "init", taxonomy).returncode == 0
    # A shell without job control starts background jobs with SIGINT ignored, and a child inherits
    # that (Python then never installs its handler): give kiku the default a terminal user has.
    process = subprocess.Popen(kiku_command("classify", "label", data, "--taxonomy", taxonomy, "--out", tmp_path / "w.jsonl"),
                               env=kiku_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = process.stderr.readline()  # "classifier: ..." comes just before the labelling bar
    assert first.startswith("classifier:"), first
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    assert [line for line in rest.splitlines() if line.strip()] == ["interrupted"]


# --- 10. kiku sql is read-only -----------------------------------------------------------------


@pytest.mark.parametrize(("query", "keyword"), [
    ("copy clusters to '{run}/clusters.parquet'", "COPY"),
    ("attach '{tmp}/other.db' as other", "ATTACH"),
    ("install httpfs", "INSTALL"),
    ("load httpfs", "LOAD"),
    ("create table t as select 1", "CREATE"),
    ("export database '{tmp}/dump'", "EXPORT"),
    ("select 1; copy clusters to '{tmp}/c.csv'", "COPY"),
    ("explain analyze copy clusters to '{run}/x.parquet'", "COPY"),
    ("set enable_external_access = true", "SET"),
])
def test_sql_refuses_statements_that_write_or_reach_out(finished_run: Path, tmp_path: Path, query: str,
                                                        keyword: str) -> None:
    before = {p.name: p.read_bytes() for p in finished_run.iterdir() if p.is_file()}
    result = kiku("sql", finished_run, query.format(run=finished_run, tmp=tmp_path))
    assert_one_error(result, f"kiku sql is read-only over the run: {keyword} statements are refused",
                     "--unsafe-full-duckdb")
    assert {p.name: p.read_bytes() for p in finished_run.iterdir() if p.is_file()} == before
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("query", ["select * from read_csv('/etc/passwd')", "select * from read_text('/etc/hostname')",
                                   "select * from read_parquet('https://example.com/x.parquet')"])
def test_sql_reads_no_file_outside_the_run(finished_run: Path, query: str) -> None:
    assert_one_error(kiku("sql", finished_run, query), "kiku sql reads only this run's tables", "--unsafe-full-duckdb")


def test_sql_reads_and_the_unsafe_flag_gives_full_duckdb(finished_run: Path, tmp_path: Path) -> None:
    for query in ("select count(*) as n from conversations", "describe clusters", "show tables",
                  "explain select * from clusters", "pragma table_info('clusters')",
                  "with t as (select level from clusters) select count(*) from t"):
        result = kiku("sql", finished_run, query)
        assert result.returncode == 0, (query, result.stderr)
    target = tmp_path / "clusters.csv"
    full = kiku("sql", finished_run, f"copy (select cluster_id, name from clusters) to '{target}'", "--unsafe-full-duckdb")
    assert full.returncode == 0, full.stderr
    assert target.read_text().startswith("cluster_id,name")
