"""Taxonomy YAML <-> pydantic, with one-line errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiku.classify.taxonomy import Label, Taxonomy, load_taxonomy, parse_taxonomy
from kiku.errors import InputError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "taxonomy-wandb.yaml"

GOOD = """\
name: support
version: 2
labels:
  - name: billing
    description: Invoices, plans and refunds.
    examples: ["How do I get a refund?"]
    negative_examples: [Reset my password]
  - name: other
    description: Anything else.
examples:
  - {text: "Where is my receipt?", label: billing}
"""


def test_parse_good_taxonomy_and_round_trip(tmp_path: Path) -> None:
    taxonomy = parse_taxonomy(GOOD)
    assert taxonomy.label_names == ["billing", "other"]
    assert taxonomy.version == "2"  # numbers are read as version text
    assert taxonomy.multi_label is False
    assert taxonomy.positive_examples() == [("How do I get a refund?", "billing"), ("Where is my receipt?", "billing")]
    assert taxonomy.label("billing").negative_examples == ["Reset my password"]
    path = taxonomy.save(tmp_path / "t.yaml")
    assert load_taxonomy(path) == taxonomy


def test_example_taxonomy_file_is_valid() -> None:
    taxonomy = load_taxonomy(EXAMPLE)
    assert taxonomy.label_names == ["artifact", "integrations", "visualisation", "other"]
    assert all(len(label.description) > 60 for label in taxonomy.labels)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (GOOD.replace("name: other", "name: Billing"), 8, "duplicate label 'Billing'"),
        (GOOD.replace("description: Anything else.", "description: '  '"), 9, "label 'other' description: description is empty"),
        (GOOD.replace("label: billing}", "label: biling}"), 11, "example for unknown label 'biling'"),
        (GOOD.replace("    examples: [\"How", "    exmples: [\"How"), 6, "unknown field 'exmples'"),
        (GOOD.replace("    description: Anything else.\n", ""), 8, "missing field 'description'"),
        (GOOD.replace("  - name: other\n    description: Anything else.\n", ""), 3, "at least two labels"),
        ("labels:\n  - name: a\n   description: x\n", 3, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a YAML mapping"),
    ],
)
def test_bad_taxonomy_gives_one_line_error_with_line(text: str, line: int, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_taxonomy(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="kiku classify init"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_python_api_validates_like_the_file() -> None:
    with pytest.raises(ValueError, match="duplicate label"):
        Taxonomy(labels=[Label(name="a", description="x"), Label(name="a", description="y")])
    with pytest.raises(ValueError, match="description is empty"):
        Label(name="a", description=" ")
