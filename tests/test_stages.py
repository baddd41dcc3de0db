"""The stage declaration (kiku.stages) is the one source of order, fingerprints and tables."""

from __future__ import annotations

from kiku.config import RunConfig
from kiku.pipeline import STAGES as PIPELINE_STAGES
from kiku.stages import INPUT, PIPELINE, STAGES, UNFINGERPRINTED, downstream, stage, stage_fingerprints
from kiku.store import EXPLORER_TABLES, STAGE_TABLES, TABLE_STAGE


def test_stage_names_and_order_come_from_the_declaration() -> None:
    assert PIPELINE_STAGES == STAGES == tuple(s.name for s in PIPELINE)
    seen = {INPUT}
    for declared in PIPELINE:
        assert set(declared.inputs) <= seen, f"{declared.name} reads a stage that runs after it"
        seen.add(declared.name)


def test_store_tables_come_from_the_declaration() -> None:
    assert STAGE_TABLES == {s.name: s.outputs for s in PIPELINE}
    assert set(EXPLORER_TABLES) <= set(TABLE_STAGE), "a reader needs a table no stage writes"
    assert len(TABLE_STAGE) == sum(len(s.outputs) for s in PIPELINE), "two stages write the same table"


def test_every_setting_is_fingerprinted_by_a_stage_or_declared_harmless() -> None:
    declared = {name for s in PIPELINE for name in s.settings}
    fields = set(RunConfig.model_fields)
    assert declared <= fields, declared - fields
    assert fields - declared == set(UNFINGERPRINTED), fields - declared


def test_a_setting_changes_the_fingerprint_of_its_stage_and_everything_downstream() -> None:
    base = stage_fingerprints(RunConfig(), {}, "input")
    for declared in PIPELINE:
        for name in declared.settings:
            field = RunConfig.model_fields[name]
            value = {int: 7, str: "x"}.get(type(field.default), 7) if field.default is not None else 7
            if name == "clusterer":
                value = "hdbscan"
            elif name == "mapping":
                value = {"text": "q"}
            elif name in ("format", "llm", "privacy_user_field", "embedder"):
                value = "other"
            changed = stage_fingerprints(RunConfig.model_construct(**{name: value}), {}, "input")
            differs = [s for s in STAGES if changed[s] != base[s]]
            affected = set().union(*(downstream(s.name) for s in PIPELINE if name in s.settings))
            assert differs == [s for s in STAGES if s in affected], name
    assert stage_fingerprints(RunConfig(), {}, "other input")["load"] != base["load"]
    assert stage_fingerprints(RunConfig(), {"namer": "n2"}, "input")["name"] != base["name"]


def test_the_hierarchy_reads_the_projection() -> None:
    assert "project" in stage("hierarchy").inputs
    assert downstream("project") == ("project", "hierarchy")
    assert downstream("load") == STAGES


def test_the_architecture_page_shows_the_declared_stage_table() -> None:
    from pathlib import Path

    from kiku.stages import stage_table_markdown

    page = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert stage_table_markdown() in page, "regenerate the table: python -c 'import kiku.stages as s; print(s.stage_table_markdown())'"
